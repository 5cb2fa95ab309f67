#!/usr/bin/env python3
"""asn1tools interoperability harness for the rsp-asn1 crate.

Usage: interop.py ASN1_DIR CERT_DER < request.json > response.json

ASN1_DIR holds RSPDefinitions-v2.asn, PKIX1Explicit88.asn and PKIX1Implicit88.asn; they
are compiled with asn1tools' 'der' codec. RSPDefinitions-v3.asn (with
PE_Definitions-3.3.1.asn for its UICCCapability import) is compiled as a second schema for
the v3 RPM types; a type name with the prefix "v3." (e.g. "v3.LoadRpmPackageResult") is
looked up in it. CERT_DER is an X.509 certificate used for the
Certificate-typed fields of this script's own samples.

Request (stdin): {"cases": [{"type": "EUICCInfo1", "hex": "bf20..."}, ...]}
Response (stdout):
  {"reencoded": [{"type": ..., "hex": ... | null, "error": null | "..."}, ...],
   "samples":   [{"type": ..., "label": ..., "hex": ...}, ...]}

For every case the bytes produced by the Rust encoder are decoded by asn1tools and
re-encoded; the Rust test asserts they come back identical. The samples are values
defined below, encoded by asn1tools; the Rust test decodes and re-encodes each one and
asserts identical bytes.

Tagged CHOICE components (CancelSessionRequestEs9.cancelSessionResponse,
AuthenticateClientRequest.authenticateServerResponse,
GetBoundProfilePackageRequest.prepareDownloadResponse): asn1tools keeps the CHOICE's own
tag inside the component tag (the "nested" form). rsp-asn1 encodes the X.680 31.2.7
implicit form by default and accepts both; the Rust test sends the nested form here.
The same holds for RpmCommandResult.listProfileInfoResult ([45] over the [45] CHOICE
ProfileInfoListResponse): asn1tools writes BF2D BF2D, X.680 a single BF2D.
"""

import json
import os
import sys

import asn1tools


def compile_schema(asn1_dir):
    files = [
        os.path.join(asn1_dir, name)
        for name in ("RSPDefinitions-v2.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
    ]
    return asn1tools.compile_files(files, "der")


def compile_schema_v3(asn1_dir):
    """The v3 module (RPM types); it imports UICCCapability from PEDefinitions."""
    files = [
        os.path.join(asn1_dir, name)
        for name in ("RSPDefinitions-v3.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn",
                     "PE_Definitions-3.3.1.asn")
    ]
    return asn1tools.compile_files(files, "der")


V3 = "v3."


def samples_v3():
    """RPM samples, encoded with the v3 module. Type names carry the "v3." prefix."""
    tid = bytes(range(16))
    iccid = bytes.fromhex("98001032547698103214")
    oid_dp = "2.999.10"
    disable = {"rpmCommandDetails": ("disable", {"iccid": iccid})}
    enable = {"continueOnFailure": None, "rpmCommandDetails": ("enable", {"iccid": iccid})}
    delete = {"rpmCommandDetails": ("delete", {"iccid": iccid})}
    lpi_owner = {"continueOnFailure": None,
                 "rpmCommandDetails": ("listProfileInfo", {"searchCriteria": ("profileOwnerOid", "2.999.1"),
                                                           "tagList": bytes.fromhex("5a9f70")})}
    lpi_iccid = {"rpmCommandDetails": ("listProfileInfo", {"searchCriteria": ("iccid", iccid)})}
    umr_full = {"serviceProviderName": "Op", "profileName": "New", "iconType": 1, "icon": b"\x89PNG",
                "profilePolicyRules": bits(1),
                "notificationConfigurationInfo": [
                    {"profileManagementOperation": bits(4, 5, 6), "notificationAddress": "dp.example"}],
                "tagsForDeletion": bytes.fromhex("9b"),
                "rpmConfiguration": {"managingDpList": [{"managingDpOid": oid_dp, "rpmType": bits(0, 1, 2)}],
                                     "pollingAddress": "poll.example", "profileOwnerOid": "2.999.1"},
                "hriServerAddress": "hri.example",
                "lprConfiguration": {"pcmpAddress": "pcmp.example"}}
    upd = {"rpmCommandDetails": ("updateMetadata", {"iccid": iccid, "updateMetadataRequest": {"profileName": "New"}})}
    upd_full = {"rpmCommandDetails": ("updateMetadata", {"iccid": iccid, "updateMetadataRequest": umr_full})}
    pcmp = {"rpmCommandDetails": ("contactPcmp", {"iccid": iccid, "dpiRpm": "dpi"})}
    package = [disable, enable, delete, lpi_owner, lpi_iccid, upd, upd_full, pcmp]
    signed3 = {"transactionId": tid, "rpmPackage": package, "rpmPending": None}
    signed3_min = {"transactionId": b"\x01", "rpmPackage": []}
    sig = bytes(range(64))
    nm = {"seqNumber": 5, "profileManagementOperation": bits(7), "notificationAddress": "dp.example",
          "iccid": iccid}
    results = [
        {"iccid": iccid, "rpmCommandResultData": ("disableResult", {"disableResult": 0})},
        {"iccid": iccid, "rpmCommandResultData": ("enableResult", {"enableResult": 9})},
        {"iccid": iccid, "rpmCommandResultData": ("deleteResult", {"deleteResult": 3})},
        {"iccid": iccid, "rpmCommandResultData": ("updateMetadataResult", 14)},
        {"iccid": iccid, "rpmCommandResultData": ("contactPcmpResult",
                                                  ("contactPcmpResponseOk", {"pcmpAddress": "pcmp.example"}))},
        {"iccid": iccid, "rpmCommandResultData": ("contactPcmpResult", ("contactPcmpResponseError", 13))},
        {"rpmCommandResultData": ("listProfileInfoResult",
                                  ("profileInfoListOk", [{"iccid": iccid, "profileState": 1,
                                                          "serviceProviderName": "Op"}]))},
        {"rpmCommandResultData": ("listProfileInfoResult", ("profileInfoListError", 11))},
        {"rpmCommandResultData": ("rpmProcessingTerminated", 5)},
    ]
    data_ok = {"transactionId": tid, "notificationMetadata": nm, "smdpOid": oid_dp,
               "finalResult": ("rpmPackageExecutionResult", results)}
    data_err = {"transactionId": tid, "notificationMetadata": nm, "smdpOid": oid_dp,
                "finalResult": ("loadRpmPackageErrorCodeSigned", 2)}
    rs_ok = {"loadRpmPackageResultDataSigned": data_ok, "euiccSignRPR": sig}
    rs_err = {"loadRpmPackageResultDataSigned": data_err, "euiccSignRPR": sig}
    dev = {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}}
    out = [
        ("RpmPackage", "all-commands", package),
        ("RpmPackage", "empty", []),
        ("SmdpSigned3", "full", signed3),
        ("SmdpSigned3", "minimal", signed3_min),
        ("AuthenticateClientResponseEs9", "ok-rpm",
         ("authenticateClientOkRpm", {"transactionId": tid, "smdpSigned3": signed3, "smdpSignature3": sig})),
        ("AuthenticateClientResponseEs9", "error-v3", ("authenticateClientError", 13)),
        ("LoadRpmPackageRequest", "full", {"smdpSigned3": signed3, "smdpSignature3": sig, "targetEsimPort": 1}),
        ("LoadRpmPackageRequest", "minimal", {"smdpSigned3": signed3_min, "smdpSignature3": sig}),
        ("LoadRpmPackageResult", "signed-results", ("loadRpmPackageResultSigned", rs_ok)),
        ("LoadRpmPackageResult", "signed-error", ("loadRpmPackageResultSigned", rs_err)),
        ("LoadRpmPackageResult", "not-signed",
         ("loadRpmPackageResultNotSigned", {"transactionId": tid, "loadRpmPackageErrorCodeNotSigned": 4})),
        ("PendingNotification", "rpm-result", ("loadRpmPackageResultSigned", rs_ok)),
        ("HandleNotification", "rpm-result", {"pendingNotification": ("loadRpmPackageResultSigned", rs_err)}),
        ("UpdateMetadataRequest", "empty", {}),
        ("UpdateMetadataRequest", "full", umr_full),
        ("CtxParamsForCommonAuthentication", "rpm-smds",
         {"matchingId": "MID1", "deviceInfo": dev, "operationType": bits(1),
          "matchingIdSource": ("smdsOid", "2.999.20")}),
        ("CtxParamsForCommonAuthentication", "rpm-poll",
         {"deviceInfo": dev, "operationType": bits(1), "iccid": iccid, "matchingIdSource": ("none", None)}),
        ("CtxParamsForCommonAuthentication", "download-ac",
         {"matchingId": "AC", "deviceInfo": dev, "operationType": bits(0, 1),
          "matchingIdSource": ("activationCode", None)}),
        ("CtxParamsForCommonAuthentication", "v2-shape", {"deviceInfo": dev}),
    ]
    for i, r in enumerate(results):
        out.append(("RpmCommandResult", "%s-%d" % (r["rpmCommandResultData"][0], i), r))
    return [(V3 + t, label, value) for (t, label, value) in out]


def bits(*positions):
    """A named-bit BIT STRING value in DER form (trailing zero bits removed)."""
    if not positions:
        return (b"", 0)
    n = max(positions) + 1
    data = bytearray((n + 7) // 8)
    for p in positions:
        data[p // 8] |= 0x80 >> (p % 8)
    return (bytes(data), n)


def samples(cert):
    tid = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")
    ch16 = bytes(range(16))
    ch16b = bytes(range(16, 32))
    iccid = bytes.fromhex("98944499999999092013")
    h32 = bytes(range(32))
    otpk = b"\x04" + bytes(range(64))
    sig = bytes(range(64))
    ski = bytes.fromhex("F54172BDF98A95D65CBEB88A38A1C11D800A85C3")
    ski2 = bytes.fromhex("C0BC70BA36929D43B467FF57570530E57AB8FCD8")
    oid = "2.999.10"

    dev_caps_full = {
        "gsmSupportedRelease": b"\x0d\x00\x00",
        "utranSupportedRelease": b"\x0d\x00\x00",
        "cdma2000onexSupportedRelease": b"\x01\x00\x00",
        "cdma2000hrpdSupportedRelease": b"\x01\x00\x00",
        "cdma2000ehrpdSupportedRelease": b"\x01\x00\x00",
        "eutranSupportedRelease": b"\x0f\x00\x00",
        "contactlessSupportedRelease": b"\x09\x00\x00",
        "rspCrlSupportedVersion": b"\x02\x01\x00",
        "rspRpmSupportedVersion": b"\x02\x02\x00",
    }
    device_info = {"tac": b"\x35\x29\x06\x11\x00\x00\x00\x00", "deviceCapabilities": dev_caps_full,
                   "imei": b"\x35\x29\x06\x11\x12\x34\x56\x78"}
    device_info_min = {"tac": b"\x35\x29\x06\x11\x00\x00\x00\x00", "deviceCapabilities": {}}
    ctx = ("ctxParamsForCommonAuthentication", {"matchingId": "MATCHING-ID-1", "deviceInfo": device_info})
    ctx_min = ("ctxParamsForCommonAuthentication", {"deviceInfo": device_info_min})

    info1 = {"svn": b"\x02\x02\x00", "euiccCiPKIdListForVerification": [ski, ski2],
             "euiccCiPKIdListForSigning": [ski]}
    info2 = {
        "profileVersion": b"\x02\x01\x00", "svn": b"\x02\x02\x00", "euiccFirmwareVer": b"\x04\x01\x00",
        "extCardResource": bytes.fromhex("810100820400035D408303011E00"),
        "uiccCapability": bits(0, 1, 2, 4, 6, 7, 10, 14, 16, 17, 18),
        "javacardVersion": b"\x03\x00\x04", "globalplatformVersion": b"\x02\x03\x00",
        "rspCapability": bits(0, 1, 2, 3),
        "euiccCiPKIdListForVerification": [ski, ski2], "euiccCiPKIdListForSigning": [ski],
        "euiccCategory": 2, "forbiddenProfilePolicyRules": bits(1),
        "ppVersion": b"\x00\x00\x01", "sasAcreditationNumber": "GI-BA-UP-0419",
        "certificationDataObject": {"platformLabel": "1.2.3", "discoveryBaseURL": "https://dloa.example"},
    }
    info2_min = {
        "profileVersion": b"\x02\x01\x00", "svn": b"\x02\x02\x00", "euiccFirmwareVer": b"\x04\x01\x00",
        "extCardResource": b"", "uiccCapability": bits(1), "rspCapability": bits(),
        "euiccCiPKIdListForVerification": [], "euiccCiPKIdListForSigning": [],
        "ppVersion": b"\x00\x00\x01", "sasAcreditationNumber": "",
    }
    server_signed1 = {"transactionId": tid, "euiccChallenge": ch16, "serverAddress": "smdp.example.com",
                      "serverChallenge": ch16b}
    euicc_signed1 = {"transactionId": tid, "serverAddress": "smdp.example.com", "serverChallenge": ch16b,
                     "euiccInfo2": info2, "ctxParams1": ctx}
    auth_ok = {"euiccSigned1": euicc_signed1, "euiccSignature1": sig, "euiccCertificate": cert,
               "eumCertificate": cert}
    auth_err = {"transactionId": tid, "authenticateErrorCode": 127}
    smdp_signed2 = {"transactionId": tid, "ccRequiredFlag": True, "bppEuiccOtpk": otpk}
    pdr = {"smdpSigned2": smdp_signed2, "smdpSignature2": sig, "hashCc": h32, "smdpCertificate": cert}
    pdr_min = {"smdpSigned2": {"transactionId": b"\x01", "ccRequiredFlag": False}, "smdpSignature2": sig,
               "smdpCertificate": cert}
    euicc_signed2 = {"transactionId": tid, "euiccOtpk": otpk, "hashCc": h32}
    pd_ok = ("downloadResponseOk", {"euiccSigned2": euicc_signed2, "euiccSignature2": sig})
    pd_err = ("downloadResponseError", {"transactionId": tid, "downloadErrorCode": 5})
    nm = {"seqNumber": 7, "profileManagementOperation": bits(0), "notificationAddress": "smdp.example.com",
          "iccid": iccid}
    nm_min = {"seqNumber": 300, "profileManagementOperation": bits(3), "notificationAddress": "x"}
    pird_ok = {"transactionId": tid, "notificationMetadata": nm, "smdpOid": oid,
               "finalResult": ("successResult", {"aid": bytes.fromhex("A0000005591010FFFFFFFF8900001100"),
                                                 "simaResponse": bytes.fromhex("3007A0053003800100")})}
    pird_err = {"transactionId": tid, "notificationMetadata": nm_min,
                "finalResult": ("errorResult", {"bppCommandId": 3, "errorReason": 8,
                                                "simaResponse": b"\x30\x00"})}
    pir = {"profileInstallationResultData": pird_ok, "euiccSignPIR": sig}
    pir_err = {"profileInstallationResultData": pird_err, "euiccSignPIR": sig}
    osn = {"tbsOtherNotification": {"seqNumber": 8, "profileManagementOperation": bits(1),
                                    "notificationAddress": "smdp.example.com", "iccid": iccid},
           "euiccNotificationSignature": sig, "euiccCertificate": cert, "eumCertificate": cert}
    ecss = {"transactionId": tid, "smdpOid": oid, "reason": 1}
    cs_ok = ("cancelSessionResponseOk", {"euiccCancelSessionSigned": ecss, "euiccCancelSessionSignature": sig})
    cs_err = ("cancelSessionResponseError", 5)
    pinfo = {
        "iccid": iccid, "isdpAid": bytes.fromhex("A0000005591010FFFFFFFF8900001100"), "profileState": 1,
        "profileNickname": "My profile", "serviceProviderName": "Operator", "profileName": "Test profile",
        "iconType": 1, "icon": b"\x89PNG....", "profileClass": 0,
        "notificationConfigurationInfo": [
            {"profileManagementOperation": bits(0, 1, 2, 3), "notificationAddress": "smdp.example.com"}],
        "profileOwner": {"mccMnc": b"\x00\xf1\x10", "gid1": b"\x01", "gid2": b"\x02\x03"},
        "dpProprietaryData": {"dpOid": oid}, "profilePolicyRules": bits(1, 2),
    }
    pinfo_min = {"iccid": iccid, "profileState": 0}
    store_metadata = {"iccid": iccid, "serviceProviderName": "Operator", "profileName": "Test profile"}
    store_metadata_full = {
        "iccid": iccid, "serviceProviderName": "Operator", "profileName": "Test profile",
        "iconType": 1, "icon": b"\x89PNG" + bytes(range(40)), "profileClass": 2,
        "notificationConfigurationInfo": [
            {"profileManagementOperation": bits(0, 3), "notificationAddress": "smdp.example.com"},
            {"profileManagementOperation": bits(1, 2), "notificationAddress": "other.example.com"},
        ],
        "profileOwner": {"mccMnc": b"\x00\xf1\x10", "gid1": b"\x01", "gid2": b"\x02\x03"},
        "profilePolicyRules": bits(1),
    }
    iscr = {"remoteOpId": 1, "transactionId": tid,
            "controlRefTemplate": {"keyType": b"\x88", "keyLen": b"\x10", "hostId": b"\x80" * 8},
            "smdpOtpk": otpk, "smdpSign": sig}
    bpp_ext = [
        ("ConfigureISDPRequest", "empty", {}),
        ("ConfigureISDPRequest", "dp-data", {"dpProprietaryData": {"dpOid": oid}}),
        ("StoreMetadataRequest", "minimal", store_metadata),
        ("StoreMetadataRequest", "full", store_metadata_full),
        ("ReplaceSessionKeysRequest", "full",
         {"initialMacChainingValue": ch16, "ppkEnc": ch16b, "ppkCmac": bytes(16)}),
        ("InitialiseSecureChannelRequest", "full", iscr),
        ("BoundProfilePackage", "no-ppk",
         {"initialiseSecureChannelRequest": iscr, "firstSequenceOf87": [bytes(range(24))],
          "sequenceOf88": [bytes(range(30)), bytes(range(12))], "sequenceOf86": [bytes(range(50)), b"\x01" * 9]}),
        ("BoundProfilePackage", "ppk",
         {"initialiseSecureChannelRequest": iscr, "firstSequenceOf87": [bytes(range(24))],
          "sequenceOf88": [bytes(range(30))], "secondSequenceOf87": [bytes(range(56))],
          "sequenceOf86": [bytes(range(50))]}),
    ]

    out = [
        ("GetEuiccInfo1Request", "empty", {}),
        ("GetEuiccInfo2Request", "empty", {}),
        ("EUICCInfo1", "full", info1),
        ("EUICCInfo2", "full", info2),
        ("EUICCInfo2", "minimal", info2_min),
        ("DeviceInfo", "full", device_info),
        ("DeviceInfo", "minimal", device_info_min),
        ("DeviceCapabilities", "full", dev_caps_full),
        ("CertificationDataObject", "full", info2["certificationDataObject"]),
        ("CtxParams1", "full", ctx),
        ("CtxParams1", "minimal", ctx_min),
        ("GetEuiccChallengeRequest", "empty", {}),
        ("GetEuiccChallengeResponse", "full", {"euiccChallenge": ch16}),
        ("ServerSigned1", "full", server_signed1),
        ("AuthenticateServerRequest", "full",
         {"serverSigned1": server_signed1, "serverSignature1": sig, "euiccCiPKIdToBeUsed": ski,
          "serverCertificate": cert, "ctxParams1": ctx}),
        ("AuthenticateServerResponse", "ok", ("authenticateResponseOk", auth_ok)),
        ("AuthenticateServerResponse", "error", ("authenticateResponseError", auth_err)),
        ("EuiccSigned1", "full", euicc_signed1),
        ("SmdpSigned2", "full", smdp_signed2),
        ("PrepareDownloadRequest", "full", pdr),
        ("PrepareDownloadRequest", "minimal", pdr_min),
        ("PrepareDownloadResponse", "ok", pd_ok),
        ("PrepareDownloadResponse", "error", pd_err),
        ("EUICCSigned2", "full", euicc_signed2),
        ("NotificationMetadata", "full", nm),
        ("NotificationMetadata", "minimal", nm_min),
        ("ProfileInstallationResultData", "success", pird_ok),
        ("ProfileInstallationResult", "success", pir),
        ("ProfileInstallationResult", "error", pir_err),
        ("OtherSignedNotification", "full", osn),
        ("PendingNotification", "pir", ("profileInstallationResult", pir)),
        ("PendingNotification", "other", ("otherSignedNotification", osn)),
        ("CancelSessionRequest", "full", {"transactionId": tid, "reason": 2}),
        ("EuiccCancelSessionSigned", "full", ecss),
        ("CancelSessionResponse", "ok", cs_ok),
        ("CancelSessionResponse", "error", cs_err),
        ("CancelSessionRequestEs9", "ok-nested", {"transactionId": tid, "cancelSessionResponse": cs_ok}),
        ("CancelSessionRequestEs9", "error-nested", {"transactionId": tid, "cancelSessionResponse": cs_err}),
        ("CancelSessionResponseEs9", "ok", ("cancelSessionOk", {})),
        ("CancelSessionResponseEs9", "error", ("cancelSessionError", 2)),
        ("GetEuiccDataRequest", "full", {"tagList": b"\x5a"}),
        ("GetEuiccDataResponse", "full", {"eidValue": bytes.fromhex("89049032123451234512345678901235")}),
        ("EuiccConfiguredAddressesRequest", "empty", {}),
        ("EuiccConfiguredAddressesResponse", "full",
         {"defaultDpAddress": "smdp.example.com", "rootDsAddress": "lpa.ds.gsma.com"}),
        ("EuiccConfiguredAddressesResponse", "minimal", {"rootDsAddress": "lpa.ds.gsma.com"}),
        ("ListNotificationRequest", "full", {"profileManagementOperation": bits(2)}),
        ("ListNotificationRequest", "empty", {}),
        ("ListNotificationResponse", "list", ("notificationMetadataList", [nm, nm_min])),
        ("ListNotificationResponse", "error", ("listNotificationsResultError", 127)),
        ("RetrieveNotificationsListRequest", "seq", {"searchCriteria": ("seqNumber", 5)}),
        ("RetrieveNotificationsListRequest", "op", {"searchCriteria": ("profileManagementOperation", bits(0))}),
        ("RetrieveNotificationsListRequest", "empty", {}),
        ("RetrieveNotificationsListResponse", "list",
         ("notificationList", [("profileInstallationResult", pir), ("otherSignedNotification", osn)])),
        ("RetrieveNotificationsListResponse", "error", ("notificationsListResultError", 1)),
        ("NotificationSentRequest", "full", {"seqNumber": 65536}),
        ("NotificationSentResponse", "full", {"deleteNotificationStatus": 1}),
        ("HandleNotification", "pir", {"pendingNotification": ("profileInstallationResult", pir)}),
        ("HandleNotification", "other", {"pendingNotification": ("otherSignedNotification", osn)}),
        ("ProfileInfoListRequest", "iccid", {"searchCriteria": ("iccid", iccid), "tagList": b"\x5a\x9f\x70"}),
        ("ProfileInfoListRequest", "aid", {"searchCriteria": ("isdpAid", b"\xa0\x00\x00\x05\x59")}),
        ("ProfileInfoListRequest", "class", {"searchCriteria": ("profileClass", 1)}),
        ("ProfileInfoListRequest", "empty", {}),
        ("ProfileInfo", "full", pinfo),
        ("ProfileInfo", "minimal", pinfo_min),
        ("ProfileInfoListResponse", "ok", ("profileInfoListOk", [pinfo, pinfo_min])),
        ("ProfileInfoListResponse", "error", ("profileInfoListError", 1)),
        ("EnableProfileRequest", "iccid", {"profileIdentifier": ("iccid", iccid), "refreshFlag": True}),
        ("EnableProfileRequest", "aid", {"profileIdentifier": ("isdpAid", b"\xa0\x00\x00\x05\x59"),
                                          "refreshFlag": False}),
        ("EnableProfileResponse", "full", {"enableResult": 2}),
        ("DisableProfileRequest", "iccid", {"profileIdentifier": ("iccid", iccid), "refreshFlag": True}),
        ("DisableProfileResponse", "full", {"disableResult": 127}),
        ("DeleteProfileRequest", "iccid", ("iccid", iccid)),
        ("DeleteProfileRequest", "aid", ("isdpAid", b"\xa0\x00\x00\x05\x59\x10")),
        ("DeleteProfileResponse", "full", {"deleteResult": 0}),
        ("SetNicknameRequest", "full", {"iccid": iccid, "profileNickname": "Work"}),
        ("SetNicknameResponse", "full", {"setNicknameResult": 1}),
        ("EuiccMemoryResetRequest", "full", {"resetOptions": bits(0, 2)}),
        ("EuiccMemoryResetResponse", "full", {"resetResult": 0}),
        ("OperatorID", "full", pinfo["profileOwner"]),
        ("NotificationConfigurationInformation", "full", pinfo["notificationConfigurationInfo"][0]),
        ("InitiateAuthenticationRequest", "full",
         {"euiccChallenge": ch16, "smdpAddress": "smdp.example.com", "euiccInfo1": info1}),
        ("InitiateAuthenticationResponse", "ok",
         ("initiateAuthenticationOk", {"transactionId": tid, "serverSigned1": server_signed1,
                                       "serverSignature1": sig, "euiccCiPKIdToBeUsed": ski,
                                       "serverCertificate": cert})),
        ("InitiateAuthenticationResponse", "error", ("initiateAuthenticationError", 3)),
        ("AuthenticateClientRequest", "ok-nested",
         {"transactionId": tid, "authenticateServerResponse": ("authenticateResponseOk", auth_ok)}),
        ("AuthenticateClientRequest", "error-nested",
         {"transactionId": tid, "authenticateServerResponse": ("authenticateResponseError", auth_err)}),
        ("AuthenticateClientResponseEs9", "ok",
         ("authenticateClientOk", {"transactionId": tid, "profileMetaData": store_metadata,
                                   "prepareDownloadRequest": pdr})),
        ("AuthenticateClientResponseEs9", "error", ("authenticateClientError", 8)),
        ("GetBoundProfilePackageRequest", "ok-nested", {"transactionId": tid, "prepareDownloadResponse": pd_ok}),
        ("GetBoundProfilePackageRequest", "error-nested",
         {"transactionId": tid, "prepareDownloadResponse": pd_err}),
        ("GetBoundProfilePackageResponse", "error", ("getBoundProfilePackageError", 95)),
    ] + bpp_ext
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec = compile_schema(sys.argv[1])
    spec3 = compile_schema_v3(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        cert = spec.decode("Certificate", f.read())
    request = json.load(sys.stdin)

    def pick(type_name):
        if type_name.startswith(V3):
            return spec3, type_name[len(V3):]
        return spec, type_name

    reencoded = []
    for case in request.get("cases", []):
        try:
            sp, name = pick(case["type"])
            value = sp.decode(name, bytes.fromhex(case["hex"]))
            again = sp.encode(name, value)
            reencoded.append({"type": case["type"], "hex": again.hex(), "error": None})
        except Exception as e:  # report, the Rust side asserts
            reencoded.append({"type": case["type"], "hex": None, "error": repr(e)})

    out_samples = []
    for type_name, label, value in samples(cert) + samples_v3():
        try:
            sp, name = pick(type_name)
            out_samples.append({"type": type_name, "label": label,
                                "hex": sp.encode(name, value).hex(), "error": None})
        except Exception as e:
            out_samples.append({"type": type_name, "label": label, "hex": None, "error": repr(e)})

    json.dump({"reencoded": reencoded, "samples": out_samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
