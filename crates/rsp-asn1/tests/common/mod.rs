//! Sample values shared by the integration tests: one rich value per message type,
//! built with this crate's types (certificates from the SGP.26 test files).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rsp_asn1::Codec;
use rsp_asn1::DecodeError;
use rsp_asn1::auth::*;
use rsp_asn1::cancel::*;
use rsp_asn1::codec::{BitString, Certificate, Extensions, Signed, TaggedChoiceForm};
use rsp_asn1::common::*;
use rsp_asn1::download::*;
use rsp_asn1::es10c::*;
use rsp_asn1::euicc_info::*;
use rsp_asn1::notification::*;
use rsp_asn1::prim::Oid;

pub fn cert() -> Certificate {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/certs/sgp26/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"
    );
    let der = std::fs::read(path).expect("read SGP.26 certificate");
    Certificate::from_der(&der).expect("certificate shape")
}

pub fn cert_path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/certs/sgp26/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"
    )
    .to_string()
}

fn tid() -> TransactionId {
    TransactionId::new(&[0xA1, 0xB2, 0xC3, 0xD4, 0xE5]).unwrap()
}
fn o16(b: u8) -> Octet16 {
    Octet16::new(&[b; 16]).unwrap()
}
fn v(a: u8, b: u8, c: u8) -> VersionType {
    VersionType::from_parts(a, b, c)
}
fn ski(b: u8) -> SubjectKeyIdentifier {
    SubjectKeyIdentifier::new(&[b; 20]).unwrap()
}
fn iccid() -> Iccid {
    Iccid::from_digits("8949449999999990023").unwrap()
}
fn oid() -> Oid {
    Oid::from_dotted("2.999.12.3").unwrap()
}

pub fn euicc_info1() -> EuiccInfo1 {
    EuiccInfo1 {
        svn: v(2, 2, 1),
        ci_pkid_list_for_verification: vec![ski(1), ski(2)],
        ci_pkid_list_for_signing: vec![ski(1)],
        ci_pkid_list_for_signing_v3: None,
        rsp_capability: None,
        highest_svn: None,
        extensions: Extensions::default(),
    }
}

pub fn euicc_info2() -> EuiccInfo2 {
    EuiccInfo2 {
        profile_version: v(2, 3, 1),
        svn: v(2, 2, 1),
        euicc_firmware_ver: v(1, 0, 9),
        ext_card_resource: vec![0x81, 0x01, 0x00, 0x82, 0x04, 0x00, 0x04, 0x00, 0x00],
        uicc_capability: BitString::from_bits(&[0, 1, 2, 4, 7, 16]),
        javacard_version: Some(v(3, 0, 5)),
        globalplatform_version: Some(v(2, 3, 1)),
        rsp_capability: BitString::from_bits(&[0, 2, 3]),
        ci_pkid_list_for_verification: vec![ski(1), ski(2)],
        ci_pkid_list_for_signing: vec![ski(1)],
        euicc_category: Some(EuiccCategory::BasicEuicc),
        forbidden_profile_policy_rules: Some(BitString::from_bits(&[1])),
        pp_version: v(1, 0, 0),
        sas_acreditation_number: "XX-YY-UP-1234".into(),
        certification_data_object: Some(CertificationDataObject {
            platform_label: "PL".into(),
            discovery_base_url: "https://dloa.example".into(),
        }),
        tre_properties: None,
        tre_product_reference: None,
        additional_profile_package_versions: None,
        lpa_mode: None,
        ci_pkid_list_for_signing_v3: None,
        additional_euicc_info: None,
        highest_svn: None,
        extensions: Extensions::default(),
    }
}

pub fn device_info() -> DeviceInfo {
    DeviceInfo {
        tac: vec![0x35, 0x29, 0x06, 0x11, 0, 0, 0, 0],
        device_capabilities: DeviceCapabilities {
            gsm_supported_release: Some(v(13, 0, 0)),
            eutran_supported_release: Some(v(15, 0, 0)),
            rsp_crl_supported_version: Some(v(2, 1, 0)),
            ..Default::default()
        },
        imei: Some(vec![0x35, 0x29, 0x06, 0x11, 0x12, 0x34, 0x56, 0x78]),
        preferred_languages: None,
        device_test_mode: false,
        lpa_rsp_capability: None,
        extensions: Extensions::default(),
    }
}

pub fn ctx_params1() -> CtxParams1 {
    CtxParams1::CommonAuthentication(Box::new(CtxParamsForCommonAuthentication {
        matching_id: Some("ABC-123".into()),
        device_info: device_info(),
        operation_type: None,
        iccid: None,
        matching_id_source: None,
        extensions: Extensions::default(),
    }))
}

pub fn server_signed1() -> ServerSigned1 {
    ServerSigned1 {
        transaction_id: tid(),
        euicc_challenge: o16(0x11),
        server_address: "smdp.example.com".into(),
        server_challenge: o16(0x22),
    }
}

pub fn euicc_signed1() -> EuiccSigned1 {
    EuiccSigned1 {
        transaction_id: tid(),
        server_address: "smdp.example.com".into(),
        server_challenge: o16(0x22),
        euicc_info2: euicc_info2(),
        ctx_params1: ctx_params1(),
        extensions: Extensions::default(),
    }
}

pub fn auth_server_request() -> AuthenticateServerRequest {
    AuthenticateServerRequest {
        server_signed1: Signed::new(server_signed1()),
        server_signature1: vec![0x5A; 64],
        euicc_ci_pkid_to_be_used: ski(1),
        server_certificate: cert(),
        ctx_params1: ctx_params1(),
    }
}

pub fn auth_server_response_ok() -> AuthenticateServerResponse {
    AuthenticateServerResponse::Ok(Box::new(AuthenticateResponseOk {
        euicc_signed1: Signed::new(euicc_signed1()),
        euicc_signature1: vec![0x33; 64],
        euicc_certificate: cert(),
        eum_certificate: cert(),
    }))
}

pub fn auth_server_response_err() -> AuthenticateServerResponse {
    AuthenticateServerResponse::Error(AuthenticateResponseError {
        transaction_id: tid(),
        authenticate_error_code: AuthenticateErrorCode::CiPkUnknown,
    })
}

pub fn smdp_signed2() -> SmdpSigned2 {
    SmdpSigned2 {
        transaction_id: tid(),
        cc_required_flag: true,
        bpp_euicc_otpk: Some(vec![4; 65]),
    }
}

pub fn prepare_download_request() -> PrepareDownloadRequest {
    PrepareDownloadRequest {
        smdp_signed2: Signed::new(smdp_signed2()),
        smdp_signature2: vec![0x44; 64],
        hash_cc: Some(Octet32::new(&[0x55; 32]).unwrap()),
        smdp_certificate: cert(),
    }
}

pub fn euicc_signed2() -> EuiccSigned2 {
    EuiccSigned2 {
        transaction_id: tid(),
        euicc_otpk: vec![4; 65],
        hash_cc: Some(Octet32::new(&[0x55; 32]).unwrap()),
        extensions: Extensions::default(),
    }
}

pub fn prepare_download_response_ok() -> PrepareDownloadResponse {
    PrepareDownloadResponse::Ok(PrepareDownloadResponseOk {
        euicc_signed2: Signed::new(euicc_signed2()),
        euicc_signature2: vec![0x66; 64],
    })
}

pub fn prepare_download_response_err() -> PrepareDownloadResponse {
    PrepareDownloadResponse::Error(PrepareDownloadResponseError {
        transaction_id: tid(),
        download_error_code: DownloadErrorCode::InvalidTransactionId,
    })
}

pub fn notification_metadata() -> NotificationMetadata {
    NotificationMetadata {
        seq_number: 42,
        profile_management_operation: BitString::from_bits(&[notification_event::INSTALL]),
        notification_address: "smdp.example.com".into(),
        iccid: Some(iccid()),
        extensions: Extensions::default(),
    }
}

pub fn pir_data_ok() -> ProfileInstallationResultData {
    ProfileInstallationResultData {
        transaction_id: tid(),
        notification_metadata: notification_metadata(),
        smdp_oid: Some(oid()),
        final_result: FinalResult::Success(SuccessResult {
            aid: vec![0xA0, 0, 0, 5, 0x59, 0x10, 0x10, 0xFF],
            sima_response: vec![0x30, 0x00],
        }),
        extensions: Extensions::default(),
    }
}

pub fn pir_ok() -> ProfileInstallationResult {
    ProfileInstallationResult {
        profile_installation_result_data: Signed::new(pir_data_ok()),
        euicc_sign_pir: vec![0x77; 64],
    }
}

pub fn pir_err() -> ProfileInstallationResult {
    let mut d = pir_data_ok();
    d.smdp_oid = None;
    d.final_result = FinalResult::Error(ErrorResult {
        bpp_command_id: BppCommandId::LoadProfileElements,
        error_reason: ErrorReason::InstallFailedDueToPeProcessingError,
        sima_response: Some(vec![0x30, 0x00]),
    });
    ProfileInstallationResult {
        profile_installation_result_data: Signed::new(d),
        euicc_sign_pir: vec![1; 64],
    }
}

pub fn other_signed_notification() -> OtherSignedNotification {
    let mut nm = notification_metadata();
    nm.profile_management_operation = BitString::from_bits(&[notification_event::DELETE]);
    OtherSignedNotification {
        tbs_other_notification: Signed::new(nm),
        euicc_notification_signature: vec![0x12; 64],
        euicc_certificate: cert(),
        eum_certificate: cert(),
    }
}

pub fn cancel_session_response_ok() -> CancelSessionResponse {
    CancelSessionResponse::Ok(CancelSessionResponseOk {
        euicc_cancel_session_signed: Signed::new(EuiccCancelSessionSigned {
            transaction_id: tid(),
            smdp_oid: oid(),
            reason: CancelSessionReason::Postponed,
            extensions: Extensions::default(),
        }),
        euicc_cancel_session_signature: vec![0x21; 64],
    })
}

pub fn profile_info() -> ProfileInfo {
    ProfileInfo {
        iccid: Some(iccid()),
        isdp_aid: Some(OctetTo16::new(&[0xA0, 0, 0, 5, 0x59, 0x10, 0x10]).unwrap()),
        profile_state: Some(ProfileState::Enabled),
        profile_nickname: Some("nick".into()),
        service_provider_name: Some("Operator".into()),
        profile_name: Some("Profile".into()),
        icon_type: Some(IconType::Png),
        icon: Some(vec![0x89, 0x50, 0x4E, 0x47]),
        profile_class: Some(ProfileClass::Test),
        notification_configuration_info: Some(vec![NotificationConfigurationInformation {
            profile_management_operation: BitString::from_bits(&[0, 3]),
            notification_address: "smdp.example.com".into(),
        }]),
        profile_owner: Some(OperatorId {
            mcc_mnc: [0x00, 0xF1, 0x10],
            gid1: Some(vec![1]),
            gid2: None,
        }),
        dp_proprietary_data: Some(DpProprietaryData {
            dp_oid: oid(),
            extensions: Extensions::default(),
        }),
        profile_policy_rules: Some(BitString::from_bits(&[1, 2])),
        extensions: Extensions::default(),
    }
}

/// A hand-built `StoreMetadataRequest` (BF25 { 5A iccid, 91 spn, 92 name }).
pub fn store_metadata_raw() -> Vec<u8> {
    let mut inner = vec![0x5A, 10];
    inner.extend_from_slice(&iccid().0);
    inner.extend_from_slice(&[0x91, 2, b'O', b'p', 0x92, 1, b'P']);
    let mut out = vec![0xBF, 0x25, inner.len() as u8];
    out.extend_from_slice(&inner);
    out
}

type Rt = fn(&[u8]) -> Result<Vec<u8>, DecodeError>;

fn rt<T: Codec>(b: &[u8]) -> Result<Vec<u8>, DecodeError> {
    Ok(T::decode(b)?.encode())
}

/// asn1tools type name -> decode+re-encode with this crate.
pub fn roundtrip_for(type_name: &str) -> Option<Rt> {
    use rsp_asn1::bpp;
    Some(match type_name {
        "ConfigureISDPRequest" => |b| Ok(bpp::ConfigureIsdpRequest::decode(b)?.encode()),
        "StoreMetadataRequest" => |b| Ok(bpp::StoreMetadataRequest::decode(b)?.encode()),
        "ReplaceSessionKeysRequest" => |b| Ok(bpp::ReplaceSessionKeysRequest::decode(b)?.encode()),
        "InitialiseSecureChannelRequest" => {
            |b| Ok(bpp::InitialiseSecureChannelRequest::decode(b)?.encode())
        }
        "BoundProfilePackage" => |b| Ok(bpp::BoundProfilePackage::decode(b)?.encode()),
        "GetEuiccInfo1Request" => rt::<GetEuiccInfo1Request>,
        "GetEuiccInfo2Request" => rt::<GetEuiccInfo2Request>,
        "EUICCInfo1" => rt::<EuiccInfo1>,
        "EUICCInfo2" => rt::<EuiccInfo2>,
        "DeviceInfo" => rt::<DeviceInfo>,
        "DeviceCapabilities" => rt::<DeviceCapabilities>,
        "CertificationDataObject" => rt::<CertificationDataObject>,
        "CtxParams1" => rt::<CtxParams1>,
        "GetEuiccChallengeRequest" => rt::<GetEuiccChallengeRequest>,
        "GetEuiccChallengeResponse" => rt::<GetEuiccChallengeResponse>,
        "ServerSigned1" => rt::<ServerSigned1>,
        "AuthenticateServerRequest" => rt::<AuthenticateServerRequest>,
        "AuthenticateServerResponse" => rt::<AuthenticateServerResponse>,
        "EuiccSigned1" => rt::<EuiccSigned1>,
        "SmdpSigned2" => rt::<SmdpSigned2>,
        "PrepareDownloadRequest" => rt::<PrepareDownloadRequest>,
        "PrepareDownloadResponse" => rt::<PrepareDownloadResponse>,
        "EUICCSigned2" => rt::<EuiccSigned2>,
        "NotificationMetadata" => rt::<NotificationMetadata>,
        "ProfileInstallationResultData" => rt::<ProfileInstallationResultData>,
        "ProfileInstallationResult" => rt::<ProfileInstallationResult>,
        "OtherSignedNotification" => rt::<OtherSignedNotification>,
        "PendingNotification" => rt::<PendingNotification>,
        "CancelSessionRequest" => rt::<CancelSessionRequest>,
        "EuiccCancelSessionSigned" => rt::<EuiccCancelSessionSigned>,
        "CancelSessionResponse" => rt::<CancelSessionResponse>,
        "CancelSessionRequestEs9" => rt::<CancelSessionRequestEs9>,
        "CancelSessionResponseEs9" => rt::<CancelSessionResponseEs9>,
        "GetEuiccDataRequest" => rt::<GetEuiccDataRequest>,
        "GetEuiccDataResponse" => rt::<GetEuiccDataResponse>,
        "EuiccConfiguredAddressesRequest" => rt::<EuiccConfiguredAddressesRequest>,
        "EuiccConfiguredAddressesResponse" => rt::<EuiccConfiguredAddressesResponse>,
        "ListNotificationRequest" => rt::<ListNotificationRequest>,
        "ListNotificationResponse" => rt::<ListNotificationResponse>,
        "RetrieveNotificationsListRequest" => rt::<RetrieveNotificationsListRequest>,
        "RetrieveNotificationsListResponse" => rt::<RetrieveNotificationsListResponse>,
        "NotificationSentRequest" => rt::<NotificationSentRequest>,
        "NotificationSentResponse" => rt::<NotificationSentResponse>,
        "HandleNotification" => rt::<HandleNotification>,
        "ProfileInfoListRequest" => rt::<ProfileInfoListRequest>,
        "ProfileInfo" => rt::<ProfileInfo>,
        "ProfileInfoListResponse" => rt::<ProfileInfoListResponse>,
        "EnableProfileRequest" => rt::<EnableProfileRequest>,
        "EnableProfileResponse" => rt::<EnableProfileResponse>,
        "DisableProfileRequest" => rt::<DisableProfileRequest>,
        "DisableProfileResponse" => rt::<DisableProfileResponse>,
        "DeleteProfileRequest" => rt::<DeleteProfileRequest>,
        "DeleteProfileResponse" => rt::<DeleteProfileResponse>,
        "SetNicknameRequest" => rt::<SetNicknameRequest>,
        "SetNicknameResponse" => rt::<SetNicknameResponse>,
        "EuiccMemoryResetRequest" => rt::<EuiccMemoryResetRequest>,
        "EuiccMemoryResetResponse" => rt::<EuiccMemoryResetResponse>,
        "OperatorID" => rt::<OperatorId>,
        "NotificationConfigurationInformation" => rt::<NotificationConfigurationInformation>,
        "InitiateAuthenticationRequest" => rt::<InitiateAuthenticationRequest>,
        "InitiateAuthenticationResponse" => rt::<InitiateAuthenticationResponse>,
        "AuthenticateClientRequest" => rt::<AuthenticateClientRequest>,
        "AuthenticateClientResponseEs9" => rt::<AuthenticateClientResponseEs9>,
        "GetBoundProfilePackageRequest" => rt::<GetBoundProfilePackageRequest>,
        "GetBoundProfilePackageResponse" => rt::<GetBoundProfilePackageResponse>,
        // v3 module (RPM).
        "v3.RpmPackage" => rt::<rsp_asn1::rpm::RpmPackage>,
        "v3.RpmCommand" => rt::<rsp_asn1::rpm::RpmCommand>,
        "v3.SmdpSigned3" => rt::<rsp_asn1::rpm::SmdpSigned3>,
        "v3.AuthenticateClientOkRpm" => rt::<rsp_asn1::rpm::AuthenticateClientOkRpm>,
        "v3.AuthenticateClientResponseEs9" => rt::<AuthenticateClientResponseEs9>,
        "v3.LoadRpmPackageRequest" => rt::<rsp_asn1::rpm::LoadRpmPackageRequest>,
        "v3.LoadRpmPackageResult" => rt::<rsp_asn1::rpm::LoadRpmPackageResult>,
        "v3.PendingNotification" => rt::<PendingNotification>,
        "v3.HandleNotification" => rt::<HandleNotification>,
        "v3.UpdateMetadataRequest" => rt::<rsp_asn1::rpm::UpdateMetadataRequest>,
        "v3.CtxParamsForCommonAuthentication" => rt::<CtxParamsForCommonAuthentication>,
        "v3.RpmCommandResult" => rt::<rsp_asn1::rpm::RpmCommandResult>,
        _ => return None,
    })
}

/// (asn1tools type name, label, our DER). Tagged-CHOICE components use the nested form
/// (asn1tools' form) so asn1tools can read them; the implicit form is tested separately.
pub fn our_samples() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let nested = TaggedChoiceForm::Nested;
    vec![
        (
            "GetEuiccInfo1Request",
            "empty",
            GetEuiccInfo1Request.encode(),
        ),
        (
            "GetEuiccInfo2Request",
            "empty",
            GetEuiccInfo2Request.encode(),
        ),
        ("EUICCInfo1", "full", euicc_info1().encode()),
        ("EUICCInfo2", "full", euicc_info2().encode()),
        ("DeviceInfo", "full", device_info().encode()),
        (
            "DeviceCapabilities",
            "full",
            device_info().device_capabilities.encode(),
        ),
        ("CtxParams1", "full", ctx_params1().encode()),
        (
            "GetEuiccChallengeRequest",
            "empty",
            GetEuiccChallengeRequest.encode(),
        ),
        (
            "GetEuiccChallengeResponse",
            "full",
            GetEuiccChallengeResponse {
                euicc_challenge: o16(9),
            }
            .encode(),
        ),
        ("ServerSigned1", "full", server_signed1().encode()),
        (
            "AuthenticateServerRequest",
            "full",
            auth_server_request().encode(),
        ),
        (
            "AuthenticateServerResponse",
            "ok",
            auth_server_response_ok().encode(),
        ),
        (
            "AuthenticateServerResponse",
            "error",
            auth_server_response_err().encode(),
        ),
        ("EuiccSigned1", "full", euicc_signed1().encode()),
        ("SmdpSigned2", "full", smdp_signed2().encode()),
        (
            "PrepareDownloadRequest",
            "full",
            prepare_download_request().encode(),
        ),
        (
            "PrepareDownloadResponse",
            "ok",
            prepare_download_response_ok().encode(),
        ),
        (
            "PrepareDownloadResponse",
            "error",
            prepare_download_response_err().encode(),
        ),
        ("EUICCSigned2", "full", euicc_signed2().encode()),
        (
            "NotificationMetadata",
            "full",
            notification_metadata().encode(),
        ),
        (
            "ProfileInstallationResultData",
            "ok",
            pir_data_ok().encode(),
        ),
        ("ProfileInstallationResult", "ok", pir_ok().encode()),
        ("ProfileInstallationResult", "error", pir_err().encode()),
        (
            "OtherSignedNotification",
            "full",
            other_signed_notification().encode(),
        ),
        (
            "PendingNotification",
            "pir",
            PendingNotification::ProfileInstallationResult(Box::new(pir_ok())).encode(),
        ),
        (
            "PendingNotification",
            "other",
            PendingNotification::OtherSignedNotification(Box::new(other_signed_notification()))
                .encode(),
        ),
        (
            "CancelSessionRequest",
            "full",
            CancelSessionRequest {
                transaction_id: tid(),
                reason: CancelSessionReason::Timeout,
            }
            .encode(),
        ),
        (
            "CancelSessionResponse",
            "ok",
            cancel_session_response_ok().encode(),
        ),
        (
            "CancelSessionResponse",
            "error",
            CancelSessionResponse::Error(CancelSessionResponseError::UndefinedError).encode(),
        ),
        (
            "CancelSessionRequestEs9",
            "ok-nested",
            CancelSessionRequestEs9 {
                transaction_id: tid(),
                cancel_session_response: cancel_session_response_ok(),
                form: nested,
            }
            .encode(),
        ),
        (
            "CancelSessionResponseEs9",
            "ok",
            CancelSessionResponseEs9::Ok.encode(),
        ),
        (
            "CancelSessionResponseEs9",
            "error",
            CancelSessionResponseEs9::Error(CancelSessionEs9Error::EuiccSignatureInvalid).encode(),
        ),
        (
            "GetEuiccDataRequest",
            "full",
            GetEuiccDataRequest {
                tag_list: Octet1::new(&[0x5A]).unwrap(),
            }
            .encode(),
        ),
        (
            "GetEuiccDataResponse",
            "full",
            GetEuiccDataResponse {
                eid_value: Eid([0x89; 16]),
            }
            .encode(),
        ),
        (
            "EuiccConfiguredAddressesRequest",
            "empty",
            EuiccConfiguredAddressesRequest.encode(),
        ),
        (
            "EuiccConfiguredAddressesResponse",
            "full",
            EuiccConfiguredAddressesResponse {
                default_dp_address: Some("dp.example".into()),
                root_ds_address: "ds.example".into(),
            }
            .encode(),
        ),
        (
            "ListNotificationRequest",
            "full",
            ListNotificationRequest {
                profile_management_operation: Some(BitString::from_bits(&[1])),
            }
            .encode(),
        ),
        (
            "ListNotificationResponse",
            "list",
            ListNotificationResponse::List(vec![notification_metadata(), notification_metadata()])
                .encode(),
        ),
        (
            "RetrieveNotificationsListRequest",
            "seq",
            RetrieveNotificationsListRequest {
                search_criteria: Some(NotificationSearchCriteria::SeqNumber(3)),
            }
            .encode(),
        ),
        (
            "RetrieveNotificationsListResponse",
            "list",
            RetrieveNotificationsListResponse::List(vec![
                PendingNotification::ProfileInstallationResult(Box::new(pir_ok())),
                PendingNotification::OtherSignedNotification(Box::new(other_signed_notification())),
            ])
            .encode(),
        ),
        (
            "RetrieveNotificationsListResponse",
            "error",
            RetrieveNotificationsListResponse::Error(
                NotificationsListResultError::NoResultAvailable,
            )
            .encode(),
        ),
        (
            "NotificationSentRequest",
            "full",
            NotificationSentRequest { seq_number: 200 }.encode(),
        ),
        (
            "NotificationSentResponse",
            "full",
            NotificationSentResponse {
                delete_notification_status: DeleteNotificationStatus::Ok,
            }
            .encode(),
        ),
        (
            "HandleNotification",
            "other",
            HandleNotification {
                pending_notification: PendingNotification::OtherSignedNotification(Box::new(
                    other_signed_notification(),
                )),
            }
            .encode(),
        ),
        (
            "ProfileInfoListRequest",
            "iccid",
            ProfileInfoListRequest {
                search_criteria: Some(ProfileSearchCriteria::Iccid(iccid())),
                tag_list: Some(vec![0x5A, 0x92]),
            }
            .encode(),
        ),
        ("ProfileInfo", "full", profile_info().encode()),
        (
            "ProfileInfoListResponse",
            "ok",
            ProfileInfoListResponse::Ok(vec![profile_info(), ProfileInfo::default()]).encode(),
        ),
        (
            "EnableProfileRequest",
            "iccid",
            EnableProfileRequest {
                profile_identifier: ProfileIdentifier::Iccid(iccid()),
                refresh_flag: true,
            }
            .encode(),
        ),
        (
            "EnableProfileResponse",
            "full",
            EnableProfileResponse {
                enable_result: EnableResult::CatBusy,
            }
            .encode(),
        ),
        (
            "DisableProfileRequest",
            "aid",
            DisableProfileRequest {
                profile_identifier: ProfileIdentifier::IsdpAid(
                    OctetTo16::new(&[0xA0, 0, 0, 5, 0x59]).unwrap(),
                ),
                refresh_flag: false,
            }
            .encode(),
        ),
        (
            "DisableProfileResponse",
            "full",
            DisableProfileResponse {
                disable_result: DisableResult::Ok,
            }
            .encode(),
        ),
        (
            "DeleteProfileRequest",
            "iccid",
            DeleteProfileRequest(ProfileIdentifier::Iccid(iccid())).encode(),
        ),
        (
            "DeleteProfileResponse",
            "full",
            DeleteProfileResponse {
                delete_result: DeleteResult::Unknown(9),
            }
            .encode(),
        ),
        (
            "SetNicknameRequest",
            "full",
            SetNicknameRequest {
                iccid: iccid(),
                profile_nickname: "home".into(),
            }
            .encode(),
        ),
        (
            "EuiccMemoryResetRequest",
            "full",
            EuiccMemoryResetRequest {
                reset_options: BitString::from_bits(&[1]),
            }
            .encode(),
        ),
        (
            "InitiateAuthenticationRequest",
            "full",
            InitiateAuthenticationRequest {
                euicc_challenge: o16(1),
                smdp_address: "smdp.example.com".into(),
                euicc_info1: euicc_info1(),
            }
            .encode(),
        ),
        (
            "InitiateAuthenticationResponse",
            "ok",
            InitiateAuthenticationResponse::Ok(Box::new(InitiateAuthenticationOkEs9 {
                transaction_id: tid(),
                server_signed1: Signed::new(server_signed1()),
                server_signature1: vec![1; 64],
                euicc_ci_pkid_to_be_used: ski(1),
                server_certificate: cert(),
            }))
            .encode(),
        ),
        (
            "AuthenticateClientRequest",
            "ok-nested",
            AuthenticateClientRequest {
                transaction_id: tid(),
                authenticate_server_response: auth_server_response_ok(),
                form: nested,
            }
            .encode(),
        ),
        (
            "AuthenticateClientResponseEs9",
            "ok",
            AuthenticateClientResponseEs9::Ok(Box::new(AuthenticateClientOk {
                transaction_id: tid(),
                profile_metadata: store_metadata_raw(),
                prepare_download_request: prepare_download_request(),
                v22_flat: false,
            }))
            .encode(),
        ),
        (
            "AuthenticateClientResponseEs9",
            "error",
            AuthenticateClientResponseEs9::Error(AuthenticateClientError::NoEligibleProfile)
                .encode(),
        ),
        (
            "GetBoundProfilePackageRequest",
            "ok-nested",
            GetBoundProfilePackageRequest {
                transaction_id: tid(),
                prepare_download_response: prepare_download_response_ok(),
                form: nested,
            }
            .encode(),
        ),
        (
            "GetBoundProfilePackageResponse",
            "error",
            GetBoundProfilePackageResponse::Error(
                GetBoundProfilePackageError::InvalidTransactionId,
            )
            .encode(),
        ),
        (
            "ConfigureISDPRequest",
            "dp-data",
            rsp_asn1::bpp::ConfigureIsdpRequest {
                dp_proprietary_data: Some(rsp_asn1::bpp::DpProprietaryData {
                    dp_oid: oid(),
                    extensions: Default::default(),
                }),
            }
            .encode(),
        ),
        (
            "StoreMetadataRequest",
            "full",
            store_metadata_full().encode(),
        ),
    ]
}

/// The v3 RPM samples: (asn1tools type name with the "v3." prefix, label, our DER).
/// `listProfileInfoResult` is sent in asn1tools' nested form (`BF2D BF2D`); the X.680
/// single-`BF2D` form is tested in `tests/rpm_v3.rs`.
pub fn our_v3_samples() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use rsp_asn1::rpm::*;
    let tid = TransactionId::new(&(0u8..16).collect::<Vec<_>>()).unwrap();
    let iccid = Iccid([0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14]);
    let cmd = |c: bool, details: RpmCommandDetails| RpmCommand {
        continue_on_failure: c,
        details,
    };
    let package = RpmPackage(vec![
        cmd(false, RpmCommandDetails::Disable { iccid }),
        cmd(true, RpmCommandDetails::Enable { iccid }),
        cmd(false, RpmCommandDetails::Delete { iccid }),
        cmd(
            true,
            RpmCommandDetails::ListProfileInfo {
                criteria: ListProfileInfoCriteria::ProfileOwnerOid(
                    Oid::from_dotted("2.999.1").unwrap(),
                ),
                tag_list: Some(vec![0x5A, 0x9F, 0x70]),
            },
        ),
        cmd(
            false,
            RpmCommandDetails::ListProfileInfo {
                criteria: ListProfileInfoCriteria::Iccid(iccid),
                tag_list: None,
            },
        ),
        cmd(
            false,
            RpmCommandDetails::UpdateMetadata {
                iccid,
                request: UpdateMetadataRequest {
                    service_provider_name: Some("Op".into()),
                    profile_name: Some("New".into()),
                    icon_type: Some(1),
                    icon: Some(vec![0x89, 0x50, 0x4E, 0x47]),
                    profile_policy_rules: Some(vec![1]),
                    // notificationConfigurationInfo {rpmEnable} and hriServerAddress.
                    other: vec![
                        hex::decode("b612301080020308810a646d2e6578616d706c65").unwrap(),
                        hex::decode("9b0b6872692e6578616d706c65").unwrap(),
                    ],
                },
            },
        ),
        cmd(
            false,
            RpmCommandDetails::ContactPcmp {
                iccid,
                dpi_rpm: Some("dpi".into()),
            },
        ),
    ]);
    let signed3 = SmdpSigned3 {
        transaction_id: tid.clone(),
        rpm_package: package.clone(),
        rpm_pending: true,
    };
    let ok_rpm = AuthenticateClientOkRpm {
        transaction_id: tid.clone(),
        smdp_signed3: Signed::new(signed3.clone()),
        smdp_signature3: vec![0x33; 64],
    };
    let mut load = LoadRpmPackageRequest::from_authenticate_client_ok_rpm(&ok_rpm, Some(1));
    load.smdp_signature3 = vec![0x44; 64];
    let nm = NotificationMetadata {
        seq_number: 5,
        profile_management_operation: BitString::from_bits(&[
            notification_event::LOAD_RPM_PACKAGE_RESULT,
        ]),
        notification_address: "dp.example".into(),
        iccid: Some(iccid),
        extensions: Extensions::default(),
    };
    let pinfo = ProfileInfo {
        iccid: Some(iccid),
        profile_state: Some(ProfileState::Enabled),
        service_provider_name: Some("Op".into()),
        ..ProfileInfo::default()
    };
    let result = |i: Option<Iccid>, data: RpmCommandResultData| RpmCommandResult { iccid: i, data };
    let results = vec![
        result(Some(iccid), RpmCommandResultData::Disable(0)),
        result(Some(iccid), RpmCommandResultData::Enable(9)),
        result(Some(iccid), RpmCommandResultData::Delete(3)),
        result(Some(iccid), RpmCommandResultData::UpdateMetadata(14)),
        result(
            Some(iccid),
            RpmCommandResultData::contact_pcmp_from(&ContactPcmpResponse::Ok {
                pcmp_address: "pcmp.example".into(),
            }),
        ),
        result(
            Some(iccid),
            RpmCommandResultData::contact_pcmp_from(&ContactPcmpResponse::Error(
                ContactPcmpError::NoLprConfiguration,
            )),
        ),
        result(
            None,
            RpmCommandResultData::list_profile_info_from(
                &ProfileInfoListResponse::Ok(vec![pinfo]),
                TaggedChoiceForm::Nested,
            ),
        ),
        result(
            None,
            RpmCommandResultData::list_profile_info_from(
                &ProfileInfoListResponse::Error(ProfileInfoListError::ProfileChangeOngoing),
                TaggedChoiceForm::Nested,
            ),
        ),
        result(None, RpmCommandResultData::Terminated(5)),
    ];
    let data = LoadRpmPackageResultDataSigned {
        transaction_id: tid.clone(),
        notification_metadata: nm,
        smdp_oid: Oid::from_dotted("2.999.10").unwrap(),
        final_result: RpmFinalResult::ExecutionResults(results.clone()),
    };
    let mut data_err = data.clone();
    data_err.final_result = RpmFinalResult::ErrorCode(2);
    let signed =
        LoadRpmPackageResultSigned::from_parts(data.clone(), vec![0x55; 64], ResultForm::Automatic);
    let signed_err =
        LoadRpmPackageResultSigned::from_parts(data_err, vec![0x56; 64], ResultForm::Automatic);
    let dev = DeviceInfo {
        tac: vec![0x35, 0x29, 0x06, 0x11],
        device_capabilities: DeviceCapabilities::default(),
        imei: None,
        preferred_languages: None,
        device_test_mode: false,
        lpa_rsp_capability: None,
        extensions: Extensions::default(),
    };
    let ctx = |op: Option<&[u32]>, i: Option<Iccid>, src: Option<MatchingIdSource>| {
        CtxParamsForCommonAuthentication {
            matching_id: Some("MID1".into()),
            device_info: dev.clone(),
            operation_type: op.map(BitString::from_bits),
            iccid: i,
            matching_id_source: src,
            extensions: Extensions::default(),
        }
        .encode()
    };
    let mut out = vec![
        ("v3.RpmPackage", "all-commands", package.encode()),
        ("v3.RpmPackage", "empty", RpmPackage::default().encode()),
        ("v3.SmdpSigned3", "full", signed3.encode()),
        ("v3.AuthenticateClientOkRpm", "full", ok_rpm.encode()),
        (
            "v3.AuthenticateClientResponseEs9",
            "ok-rpm",
            AuthenticateClientResponseEs9::OkRpm(Box::new(ok_rpm.clone())).encode(),
        ),
        ("v3.LoadRpmPackageRequest", "full", load.encode()),
        (
            "v3.LoadRpmPackageResult",
            "signed-results",
            LoadRpmPackageResult::Signed(Box::new(signed.clone())).encode(),
        ),
        (
            "v3.LoadRpmPackageResult",
            "signed-error",
            LoadRpmPackageResult::Signed(Box::new(signed_err)).encode(),
        ),
        (
            "v3.LoadRpmPackageResult",
            "not-signed",
            LoadRpmPackageResult::NotSigned {
                transaction_id: tid.clone(),
                error_code: 4,
            }
            .encode(),
        ),
        (
            "v3.PendingNotification",
            "rpm-result",
            signed.clone().into_pending_notification().encode(),
        ),
        (
            "v3.HandleNotification",
            "rpm-result",
            HandleNotification {
                pending_notification: signed.into_pending_notification(),
            }
            .encode(),
        ),
        (
            "v3.UpdateMetadataRequest",
            "empty",
            UpdateMetadataRequest::default().encode(),
        ),
        (
            "v3.CtxParamsForCommonAuthentication",
            "rpm-smds",
            ctx(
                Some(&[1]),
                None,
                Some(MatchingIdSource::SmdsOid(
                    Oid::from_dotted("2.999.20").unwrap(),
                )),
            ),
        ),
        (
            "v3.CtxParamsForCommonAuthentication",
            "rpm-poll",
            ctx(Some(&[1]), Some(iccid), Some(MatchingIdSource::None)),
        ),
        (
            "v3.CtxParamsForCommonAuthentication",
            "both-ac",
            ctx(Some(&[0, 1]), None, Some(MatchingIdSource::ActivationCode)),
        ),
        (
            "v3.CtxParamsForCommonAuthentication",
            "v2-shape",
            ctx(None, None, None),
        ),
    ];
    for r in &results {
        out.push(("v3.RpmCommandResult", r.data.name(), r.encode()));
    }
    for c in &package.0 {
        out.push(("v3.RpmCommand", c.details.name(), c.encode()));
    }
    out
}

/// A StoreMetadataRequest with every optional component present.
pub fn store_metadata_full() -> rsp_asn1::bpp::StoreMetadataRequest {
    use rsp_asn1::bpp::{NotificationConfigurationInformation, OperatorId};
    rsp_asn1::bpp::StoreMetadataRequest {
        iccid: iccid().0,
        service_provider_name: "Operator".into(),
        profile_name: "Test profile".into(),
        icon_type: Some(1),
        icon: Some(vec![0x89, 0x50, 0x4E, 0x47, 1, 2, 3]),
        profile_class: Some(2),
        notification_configuration_info: Some(vec![NotificationConfigurationInformation {
            profile_management_operation: rsp_asn1::BitString::from_bits(&[0, 3]),
            notification_address: "smdp.example.com".into(),
        }]),
        profile_owner: Some(OperatorId {
            mcc_mnc: [0x00, 0xF1, 0x10],
            gid1: Some(vec![1]),
            gid2: None,
        }),
        profile_policy_rules: Some(vec![1]),
        extensions: Vec::new(),
    }
}
