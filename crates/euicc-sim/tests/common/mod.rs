//! Test support: a generated test PKI, eUICCs made from it, and a minimal in-test SM-DP+
//! (built directly from rsp-asn1 / rsp-crypto) reachable in-process or over HTTPS.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use euicc_sim::{Euicc, EuiccState};
use rsp_asn1::auth::{
    AuthenticateServerRequest, AuthenticateServerResponse, CtxParams1,
    CtxParamsForCommonAuthentication, ServerSigned1, SignatureTlv, SkiTlv,
};
use rsp_asn1::common::{Octet16, SubjectKeyIdentifier, TransactionId};
use rsp_asn1::download::{PrepareDownloadRequest, PrepareDownloadResponse, SmdpSigned2};
use rsp_asn1::euicc_info::{DeviceCapabilities, DeviceInfo};
use rsp_asn1::tlv::write_tlv;
use rsp_asn1::{Certificate, Codec, Extensions, Signed};
use rsp_crypto::KeyCustody;
use rsp_crypto::bpp::{BppParams, ProfileProtection, build_bpp};
use rsp_pki::{DpRole, PkiOptions, TestPki};
use smdpp_core::es9_json as es9;
use smdpp_core::status::{Es9Error, StatusCode};

pub fn pki() -> TestPki {
    rsp_pki::generate(PkiOptions::default()).expect("test PKI")
}

/// A test PKI whose CERT.DP.TLS names 127.0.0.1 (an iPAddress entry), for the HTTPS tests
/// that dial the loopback address: the LPA checks the iPAddress SAN of IP-literal servers.
pub fn loopback_pki() -> TestPki {
    rsp_pki::generate(PkiOptions {
        smdp_address: "127.0.0.1".into(),
        ..Default::default()
    })
    .expect("test PKI")
}

pub fn euicc_for(pki: &TestPki) -> Euicc {
    let st = EuiccState::from_parts(
        &pki.eid,
        pki.euicc.der.clone(),
        &pki.euicc.key,
        pki.eum.der.clone(),
        vec![pki.ci.der.clone()],
    );
    Euicc::from_state(st).expect("euicc")
}

pub fn ci_ski(pki: &TestPki) -> Vec<u8> {
    pki.ci.cert().unwrap().ski().unwrap().to_vec()
}

pub fn sig_tlv(sig: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_tlv(&mut v, rsp_asn1::common::TAG_SIGNATURE, sig);
    v
}

/// A DP certificate of `role` issued by the PKI's CI with another SM-DP+ OID.
pub fn dp_cert_with_oid(
    pki: &TestPki,
    role: DpRole,
    oid: &str,
) -> (Vec<u8>, rsp_crypto::SoftwareKey) {
    let key = rsp_crypto::SoftwareKey::generate(pki.options.curve).unwrap();
    let der = rsp_pki::dp_template(
        &pki.ci.cert().unwrap(),
        role,
        pki.options.curve,
        key.public_key(),
        &pki.options.smdp_address,
        oid,
    )
    .unwrap()
    .sign(&pki.ci.key)
    .unwrap();
    (der, key)
}

pub fn ctx_params(matching_id: &str) -> CtxParams1 {
    CtxParams1::CommonAuthentication(Box::new(CtxParamsForCommonAuthentication {
        operation_type: None,
        iccid: None,
        matching_id_source: None,
        matching_id: Some(matching_id.to_owned()),
        device_info: DeviceInfo {
            tac: vec![0x35, 0x29, 0x06, 0x11],
            device_capabilities: DeviceCapabilities::default(),
            imei: None,
            preferred_languages: None,
            device_test_mode: false,
            lpa_rsp_capability: None,
            extensions: Extensions(Vec::new()),
        },
        extensions: Extensions(Vec::new()),
    }))
}

/// An AuthenticateServerRequest signed by `key` with `cert`.
pub fn auth_request(
    pki: &TestPki,
    tid: &[u8],
    challenge: &[u8],
    address: &str,
    cert: &[u8],
    key: &dyn KeyCustody,
) -> AuthenticateServerRequest {
    let ss1 = Signed::new(ServerSigned1 {
        transaction_id: TransactionId::new(tid).unwrap(),
        euicc_challenge: Octet16::new(challenge).unwrap(),
        server_address: address.to_owned(),
        server_challenge: Octet16::new(&[0x55; 16]).unwrap(),
    });
    let sig = key.sign(ss1.raw()).unwrap().to_vec();
    AuthenticateServerRequest {
        server_signed1: ss1,
        server_signature1: sig,
        euicc_ci_pkid_to_be_used: SubjectKeyIdentifier::new(&ci_ski(pki)).unwrap(),
        server_certificate: Certificate::from_der(cert).unwrap(),
        ctx_params1: ctx_params("MATCHING-1"),
    }
}

/// PrepareDownloadRequest signed by `key` over smdpSigned2 || euiccSignature1.
pub fn prepare_request(
    tid: &[u8],
    euicc_signature1: &[u8],
    cc_required: bool,
    hash_cc: Option<[u8; 32]>,
    cert: &[u8],
    key: &dyn KeyCustody,
    bpp_euicc_otpk: Option<Vec<u8>>,
) -> PrepareDownloadRequest {
    let s2 = Signed::new(SmdpSigned2 {
        transaction_id: TransactionId::new(tid).unwrap(),
        cc_required_flag: cc_required,
        bpp_euicc_otpk,
    });
    let mut msg = s2.raw().to_vec();
    msg.extend_from_slice(&sig_tlv(euicc_signature1));
    let sig = key.sign(&msg).unwrap().to_vec();
    PrepareDownloadRequest {
        smdp_signed2: s2,
        smdp_signature2: sig,
        hash_cc: hash_cc.map(|h| rsp_asn1::common::Octet32::new(&h).unwrap()),
        smdp_certificate: Certificate::from_der(cert).unwrap(),
    }
}

pub fn store_metadata(iccid: &str, notif_address: &str) -> Vec<u8> {
    rsp_asn1::bpp::StoreMetadataRequest {
        iccid: rsp_asn1::common::Iccid::from_digits(iccid).unwrap().0,
        service_provider_name: "Test Operator".into(),
        profile_name: "Test Profile".into(),
        icon_type: None,
        icon: None,
        profile_class: Some(2),
        notification_configuration_info: Some(vec![
            rsp_asn1::bpp::NotificationConfigurationInformation {
                profile_management_operation: rsp_asn1::BitString::from_bits(&[0, 1, 2, 3]),
                notification_address: notif_address.to_owned(),
            },
        ]),
        profile_owner: None,
        profile_policy_rules: None,
        extensions: Vec::new(),
    }
    .encode()
}

pub fn eid_bytes(eid: &str) -> [u8; 16] {
    rsp_asn1::common::Eid::from_digits(eid).unwrap().0
}

/// The package [`make_bpp`] binds: 3000 bytes that are not a SAIP package.
pub fn junk_upp() -> Vec<u8> {
    (0..3000u32).map(|i| (i % 251) as u8).collect()
}

pub fn make_bpp(
    pki: &TestPki,
    tid: &[u8],
    euicc_otpk: &[u8],
    eid: &str,
    iccid: &str,
    notif_address: &str,
) -> Vec<u8> {
    make_bpp_with_upp(pki, tid, euicc_otpk, eid, iccid, notif_address, &junk_upp())
}

/// [`make_bpp`] with a given UPP.
pub fn make_bpp_with_upp(
    pki: &TestPki,
    tid: &[u8],
    euicc_otpk: &[u8],
    eid: &str,
    iccid: &str,
    notif_address: &str,
    upp: &[u8],
) -> Vec<u8> {
    let cfg = rsp_asn1::bpp::ConfigureIsdpRequest::default().encode();
    let meta = store_metadata(iccid, notif_address);
    let eid = eid_bytes(eid);
    build_bpp(
        &BppParams {
            dp_pb: &pki.dppb.key,
            transaction_id: tid,
            euicc_otpk,
            eid: &eid,
            host_id: b"euicc-sim-test",
            configure_isdp: &cfg,
            store_metadata: &meta,
        },
        ProfileProtection::SessionKeys { upp },
        None,
    )
    .unwrap()
    .der
}

/// AuthenticateServer + PrepareDownload in-process; returns (tid, otPK.EUICC).
pub fn authenticate_and_prepare(
    pki: &TestPki,
    euicc: &mut Euicc,
    tid: &[u8],
    addr: &str,
) -> Vec<u8> {
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(pki, tid, &ch, addr, &pki.dpauth.der, &pki.dpauth.key);
    let AuthenticateServerResponse::Ok(ok) = euicc.authenticate_server(&req, Some(addr)) else {
        panic!("authenticate_server failed")
    };
    let pd = prepare_request(
        tid,
        &ok.euicc_signature1,
        false,
        None,
        &pki.dppb.der,
        &pki.dppb.key,
        None,
    );
    let PrepareDownloadResponse::Ok(pok) = euicc.prepare_download(&pd) else {
        panic!("prepare_download failed")
    };
    pok.euicc_signed2.value().euicc_otpk.clone()
}

// ---------------------------------------------------------------------------------------------
// A minimal SM-DP+ over ES9+ JSON

pub struct Order {
    pub iccid: String,
    pub cc: Option<String>,
}

struct DpSession {
    challenge: Vec<u8>,
    address: String,
    matching_id: Option<String>,
    euicc_public_key: Option<Vec<u8>>,
    eid: String,
    smdp_signature2: Option<Vec<u8>>,
    cc_required: bool,
    done: bool,
}

pub struct MiniDp {
    pub pki: Arc<TestPki>,
    pub orders: HashMap<String, Order>,
    /// The UPP bound for a matching ID ([`junk_upp`] when absent).
    pub upps: HashMap<String, Vec<u8>>,
    sessions: HashMap<Vec<u8>, DpSession>,
    pub notifications: Vec<Vec<u8>>,
    pub cancels: Vec<Vec<u8>>,
    /// RPM packages waiting, by ICCID (digits), served in order.
    pub rpm: Vec<(String, rsp_asn1::rpm::RpmPackage)>,
    /// The X-Admin-Protocol header of every request.
    pub admin_protocols: Vec<String>,
    counter: u64,
}

fn fail(code: StatusCode, msg: &str) -> Es9Error {
    Es9Error::new(code, msg)
}

impl MiniDp {
    pub fn new(pki: Arc<TestPki>) -> MiniDp {
        MiniDp {
            pki,
            orders: HashMap::new(),
            upps: HashMap::new(),
            sessions: HashMap::new(),
            notifications: Vec::new(),
            cancels: Vec::new(),
            rpm: Vec::new(),
            admin_protocols: Vec::new(),
            counter: 0,
        }
    }

    pub fn initiate(
        &mut self,
        req: &es9::InitiateAuthenticationRequest,
    ) -> Result<es9::InitiateAuthenticationResponse, Es9Error> {
        use smdpp_core::status::*;
        self.counter += 1;
        let mut tid = vec![0xA5; 8];
        tid.extend_from_slice(&self.counter.to_be_bytes());
        let ss1 = Signed::new(ServerSigned1 {
            transaction_id: TransactionId::new(&tid).unwrap(),
            euicc_challenge: Octet16::new(&req.euicc_challenge)
                .map_err(|_| fail(PROTOCOL_FORMAT_INVALID, "challenge"))?,
            server_address: req.smdp_address.clone(),
            server_challenge: Octet16::new(&[7; 16]).unwrap(),
        });
        let sig = self.pki.dpauth.key.sign(ss1.raw()).unwrap();
        self.sessions.insert(
            tid.clone(),
            DpSession {
                challenge: req.euicc_challenge.clone(),
                address: req.smdp_address.clone(),
                matching_id: None,
                euicc_public_key: None,
                eid: String::new(),
                smdp_signature2: None,
                cc_required: false,
                done: false,
            },
        );
        Ok(es9::InitiateAuthenticationResponse {
            transaction_id: es9::TransactionId::from_bytes(&tid).unwrap(),
            server_signed1: ss1.raw().to_vec(),
            server_signature1: SignatureTlv(sig.to_vec()).encode(),
            euicc_ci_pkid_to_be_used: SkiTlv(
                SubjectKeyIdentifier::new(&ci_ski(&self.pki)).unwrap(),
            )
            .encode(),
            server_certificate: self.pki.dpauth.der.clone(),
        })
    }

    pub fn authenticate_client(
        &mut self,
        req: &es9::AuthenticateClientRequest,
    ) -> Result<es9::AuthenticateClientResponse, Es9Error> {
        use smdpp_core::status::*;
        let tid = req.transaction_id.as_bytes().to_vec();
        let asr = AuthenticateServerResponse::decode(&req.authenticate_server_response)
            .map_err(|_| fail(PROTOCOL_FORMAT_INVALID, "authenticateServerResponse"))?;
        let s = self
            .sessions
            .get_mut(&tid)
            .ok_or_else(|| fail(TRANSACTION_ID_UNKNOWN, "unknown transactionId"))?;
        let AuthenticateServerResponse::Ok(ok) = asr else {
            return Err(fail(EUICC_VERIFICATION_FAILED, "eUICC returned an error"));
        };
        let v = rsp_pki::validate_euicc_chain(
            &self.pki.trust_store().unwrap(),
            ok.eum_certificate.as_der(),
            ok.euicc_certificate.as_der(),
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|_| fail(EUICC_CERTIFICATE_INVALID, "chain"))?;
        rsp_crypto::ecdsa::verify_raw(
            v.curve,
            &v.public_key,
            ok.euicc_signed1.raw(),
            &ok.euicc_signature1,
        )
        .map_err(|_| fail(EUICC_VERIFICATION_FAILED, "euiccSignature1"))?;
        let signed = ok.euicc_signed1.value();
        if signed.transaction_id.as_bytes() != tid.as_slice() {
            return Err(fail(TRANSACTION_ID_UNKNOWN, "tid mismatch"));
        }
        let mid = match &signed.ctx_params1 {
            CtxParams1::CommonAuthentication(c) => c.matching_id.clone().unwrap_or_default(),
            CtxParams1::Unknown(_) => String::new(),
        };
        let order = self
            .orders
            .get(&mid)
            .ok_or_else(|| fail(MATCHING_ID_REFUSED, "unknown matching ID"))?;
        s.matching_id = Some(mid.clone());
        s.euicc_public_key = Some(v.public_key.clone());
        s.eid = v.eid.clone();
        s.cc_required = order.cc.is_some();
        let s2 = Signed::new(SmdpSigned2 {
            transaction_id: TransactionId::new(&tid).unwrap(),
            cc_required_flag: s.cc_required,
            bpp_euicc_otpk: None,
        });
        let mut msg = s2.raw().to_vec();
        msg.extend_from_slice(&sig_tlv(&ok.euicc_signature1));
        let sig2 = self.pki.dppb.key.sign(&msg).unwrap().to_vec();
        s.smdp_signature2 = Some(sig2.clone());
        Ok(es9::AuthenticateClientResponse {
            transaction_id: req.transaction_id.clone(),
            profile_metadata: store_metadata(&order.iccid, &s.address),
            smdp_signed2: s2.raw().to_vec(),
            smdp_signature2: SignatureTlv(sig2).encode(),
            smdp_certificate: self.pki.dppb.der.clone(),
        })
    }

    /// authenticateClient answering RPM requests (operationType {rpm}) from [`MiniDp::rpm`]
    /// (`8.2.6/3.8` when none waits for the ICCID), download requests as before.
    pub fn authenticate_client_any(
        &mut self,
        req: &es9::AuthenticateClientRequest,
    ) -> Result<es9::AuthenticateClientAnswer, Es9Error> {
        use smdpp_core::status::*;
        let asr = AuthenticateServerResponse::decode(&req.authenticate_server_response)
            .map_err(|_| fail(PROTOCOL_FORMAT_INVALID, "authenticateServerResponse"))?;
        let rpm_ctx = match &asr {
            AuthenticateServerResponse::Ok(ok) => match &ok.euicc_signed1.value().ctx_params1 {
                CtxParams1::CommonAuthentication(c) if c.asks_rpm() => Some((
                    c.iccid().map(|i| i.to_digits()),
                    ok.euicc_signature1.clone(),
                )),
                _ => None,
            },
            AuthenticateServerResponse::Error(_) => None,
        };
        let Some((iccid, sig1)) = rpm_ctx else {
            return self.authenticate_client(req).map(Into::into);
        };
        let tid = req.transaction_id.as_bytes().to_vec();
        if !self.sessions.contains_key(&tid) {
            return Err(fail(TRANSACTION_ID_UNKNOWN, "unknown transactionId"));
        }
        let Some(pos) = self
            .rpm
            .iter()
            .position(|(i, _)| Some(i.as_str()) == iccid.as_deref())
        else {
            return Err(fail(MATCHING_ID_REFUSED, "no RPM pending"));
        };
        let (i, package) = self.rpm.remove(pos);
        let s3 = rsp_asn1::rpm::SmdpSigned3 {
            transaction_id: TransactionId::new(&tid).unwrap(),
            rpm_package: package,
            rpm_pending: self.rpm.iter().any(|(j, _)| *j == i),
        };
        let raw = s3.encode();
        let sig3 = self
            .pki
            .dpauth
            .key
            .sign(&rsp_asn1::rpm::smdp_signed3_tbs(&raw, &sig1))
            .unwrap()
            .to_vec();
        Ok(es9::AuthenticateClientAnswer::Rpm(
            es9::AuthenticateClientRpmResponse {
                transaction_id: req.transaction_id.clone(),
                smdp_signed3: raw,
                smdp_signature3: SignatureTlv(sig3).encode(),
            },
        ))
    }

    pub fn get_bpp(
        &mut self,
        req: &es9::GetBoundProfilePackageRequest,
    ) -> Result<es9::GetBoundProfilePackageResponse, Es9Error> {
        use smdpp_core::status::*;
        let tid = req.transaction_id.as_bytes().to_vec();
        let s = self
            .sessions
            .get_mut(&tid)
            .ok_or_else(|| fail(TRANSACTION_ID_UNKNOWN, "unknown transactionId"))?;
        if s.done {
            return Err(fail(TRANSACTION_ID_UNKNOWN, "session already used"));
        }
        let (Some(pk), Some(sig2), Some(mid)) =
            (&s.euicc_public_key, &s.smdp_signature2, &s.matching_id)
        else {
            return Err(fail(TRANSACTION_ID_UNKNOWN, "out of order"));
        };
        let PrepareDownloadResponse::Ok(ok) =
            PrepareDownloadResponse::decode(&req.prepare_download_response)
                .map_err(|_| fail(PROTOCOL_FORMAT_INVALID, "prepareDownloadResponse"))?
        else {
            return Err(fail(EUICC_VERIFICATION_FAILED, "eUICC error"));
        };
        let mut msg = ok.euicc_signed2.raw().to_vec();
        msg.extend_from_slice(&sig_tlv(sig2));
        let curve = self.pki.options.curve;
        rsp_crypto::ecdsa::verify_raw(curve, pk, &msg, &ok.euicc_signature2)
            .map_err(|_| fail(EUICC_VERIFICATION_FAILED, "euiccSignature2"))?;
        let order = &self.orders[mid];
        if let Some(cc) = &order.cc {
            let want = euicc_sim::util::hash_confirmation_code(cc, &tid);
            match &ok.euicc_signed2.value().hash_cc {
                None => return Err(fail(CONFIRMATION_CODE_MISSING, "cc missing")),
                Some(h) if h.as_bytes() != want.as_slice() => {
                    return Err(fail(CONFIRMATION_CODE_REFUSED, "cc refused"));
                }
                Some(_) => {}
            }
        }
        s.done = true;
        let eid = s.eid.clone();
        let upp = self.upps.get(mid).cloned().unwrap_or_else(junk_upp);
        let bpp = make_bpp_with_upp(
            &self.pki,
            &tid,
            &ok.euicc_signed2.value().euicc_otpk,
            &eid,
            &order.iccid,
            &s.address,
            &upp,
        );
        Ok(es9::GetBoundProfilePackageResponse {
            transaction_id: req.transaction_id.clone(),
            bound_profile_package: bpp,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HTTPS wrapper

fn json_response<T: serde::Serialize>(r: Result<T, Es9Error>) -> Vec<u8> {
    match r {
        Ok(b) => serde_json::to_vec(&es9::ResponseMessage::success(b)).unwrap(),
        Err(e) => serde_json::to_vec(&es9::ResponseMessage::<es9::EmptyBody>::failed(&e)).unwrap(),
    }
}

fn handle(dp: &Mutex<MiniDp>, path: &str, body: &[u8], admin: &str) -> (u16, Vec<u8>) {
    let mut dp = dp.lock().unwrap();
    dp.admin_protocols.push(admin.to_owned());
    match path {
        "/gsma/rsp2/es9plus/initiateAuthentication" => {
            let r = es9::parse_request(body).and_then(|q| dp.initiate(&q));
            (200, json_response(r))
        }
        "/gsma/rsp2/es9plus/authenticateClient" => {
            let r = es9::parse_request(body).and_then(|q| dp.authenticate_client_any(&q));
            (200, json_response(r))
        }
        "/gsma/rsp2/es9plus/getBoundProfilePackage" => {
            let r = es9::parse_request(body).and_then(|q| dp.get_bpp(&q));
            (200, json_response(r))
        }
        "/gsma/rsp2/es9plus/handleNotification" => {
            let q: es9::HandleNotificationRequest = es9::parse_request(body).unwrap();
            dp.notifications.push(q.pending_notification);
            (204, Vec::new())
        }
        "/gsma/rsp2/es9plus/cancelSession" => {
            let q: es9::CancelSessionRequest = es9::parse_request(body).unwrap();
            dp.cancels.push(q.cancel_session_response);
            (200, json_response::<es9::EmptyBody>(Ok(es9::EmptyBody {})))
        }
        _ => (404, Vec::new()),
    }
}

/// Serve the mini SM-DP+ on 127.0.0.1 (HTTPS with CERT.DP.TLS, or plain HTTP).
pub async fn serve(dp: Arc<Mutex<MiniDp>>, tls: bool) -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = if tls {
        let pki = dp.lock().unwrap().pki.clone();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key =
            rustls_pki_types::PrivateKeyDer::Pkcs8(pki.dptls.key.to_pkcs8_der().to_vec().into());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.dptls.der.clone().into()], key)
            .unwrap();
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    } else {
        None
    };
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let dp = dp.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let dp = dp.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let admin = req
                                .headers()
                                .get("X-Admin-Protocol")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await?.to_bytes();
                            let (status, out) = handle(&dp, &path, &body, &admin);
                            let resp = hyper::Response::builder()
                                .status(status)
                                .header("Content-Type", "application/json")
                                .body(Full::new(Bytes::from(out)))
                                .unwrap();
                            Ok::<_, hyper::Error>(resp)
                        }
                    },
                );
                let b = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(tcp).await {
                            let _ = b.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = b.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    addr
}
