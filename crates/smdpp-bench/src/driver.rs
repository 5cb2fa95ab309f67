//! One virtual device's loop: take a MatchingID from the shared queue, run the complete
//! download with the euicc-sim LPA ([`Lpa::download_with`]), time each ES9+ call through the
//! LPA's [`DownloadHooks`], repeat until the queue is empty.
//!
//! The hooks fire just before each message is sent, so the time of an ES9+ call is measured
//! from the hook before it to the hook after it:
//!
//! | call | from | to |
//! |---|---|---|
//! | InitiateAuthentication | `initiate_authentication` | `authenticate_server` |
//! | AuthenticateClient | `authenticate_client` | `prepare_download` |
//! | GetBoundProfilePackage | `get_bound_profile_package` | `load_bound_profile_package` |
//! | HandleNotification (the PIR) | `handle_notification` | the download returning |
//!
//! That is the client-side wall time of the HTTP exchange (TCP connect, TLS handshake,
//! request, response) plus the LPA's JSON/DER decoding of the response (microseconds); the
//! eUICC's own work (ES10b functions) falls between the intervals and is not counted. Under
//! CPU contention the figure also contains the time the task waited to be scheduled, which
//! is what a client would see.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use euicc_sim::Euicc;
use euicc_sim::lpa::{DownloadHooks, DownloadOptions, Flow, Lpa, LpaError};
use rsp_asn1::auth::AuthenticateServerRequest;
use rsp_asn1::download::PrepareDownloadRequest;
use smdpp_core::es9_json::{self as es9, Es9Function};

use crate::stats::ErrorTally;

/// The four ES9+ calls of one download, in order.
pub const CALLS: [&str; 4] = [
    Es9Function::InitiateAuthentication.name(),
    Es9Function::AuthenticateClient.name(),
    Es9Function::GetBoundProfilePackage.name(),
    Es9Function::HandleNotification.name(),
];

/// MatchingIDs shared by every device: each is downloaded exactly once.
#[derive(Debug)]
pub struct Queue {
    ids: Vec<String>,
    next: AtomicUsize,
}

impl Queue {
    /// A queue over `ids`.
    pub fn new(ids: Vec<String>) -> Queue {
        Queue {
            ids,
            next: AtomicUsize::new(0),
        }
    }

    /// The next MatchingID, or `None` when all are taken.
    pub fn pop(&self) -> Option<&str> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.ids.get(i).map(String::as_str)
    }
}

/// Timestamps of the calls of one download.
#[derive(Debug, Default)]
struct CallTimer {
    started: [Option<Instant>; 4],
    took: [Option<Duration>; 4],
}

impl CallTimer {
    fn start(&mut self, i: usize) -> Flow {
        self.started[i] = Some(Instant::now());
        Flow::Continue
    }
    fn end(&mut self, i: usize) -> Flow {
        if let Some(s) = self.started[i] {
            self.took[i] = Some(s.elapsed());
        }
        Flow::Continue
    }
    /// The call that was started and has not ended (where a transport error happened).
    fn in_flight(&self) -> Option<&'static str> {
        (0..4)
            .rev()
            .find(|&i| self.started[i].is_some() && self.took[i].is_none())
            .map(|i| CALLS[i])
    }
}

impl DownloadHooks for CallTimer {
    fn initiate_authentication(&mut self, _: &mut es9::InitiateAuthenticationRequest) -> Flow {
        self.start(0)
    }
    fn authenticate_server(&mut self, _: &mut AuthenticateServerRequest) -> Flow {
        self.end(0)
    }
    fn authenticate_client(&mut self, _: &mut es9::AuthenticateClientRequest) -> Flow {
        self.start(1)
    }
    fn prepare_download(&mut self, _: &mut PrepareDownloadRequest) -> Flow {
        self.end(1)
    }
    fn get_bound_profile_package(&mut self, _: &mut es9::GetBoundProfilePackageRequest) -> Flow {
        self.start(2)
    }
    fn load_bound_profile_package(&mut self, _: &mut Vec<u8>) -> Flow {
        self.end(2)
    }
    fn handle_notification(&mut self, _: &mut es9::HandleNotificationRequest) -> Flow {
        self.start(3)
    }
}

/// Drops the parenthesized free-text message that ends an error's text, if any.
fn strip_message(s: &str) -> &str {
    match s.find(" (") {
        Some(i) => &s[..i],
        None => s,
    }
}

/// A short, stable key for a failed download: `function: subjectCode/reasonCode` for an
/// SM-DP+ `Failed`, `function: HTTP status`, `call: transport/<stage>` for connection, TLS
/// and timeout problems, and the LPA error kind otherwise.
pub fn error_key(e: &LpaError, in_flight: Option<&str>) -> String {
    let call = in_flight.unwrap_or("?");
    match e {
        LpaError::Server(s) => format!(
            "{}: {}/{}",
            s.function.name(),
            s.subject_code,
            s.reason_code
        ),
        LpaError::Http {
            function, status, ..
        } => format!("{}: HTTP {status}", function.name()),
        LpaError::Transport(t) => {
            let stage = if t.ends_with("timed out") {
                "timeout"
            } else if t.starts_with("connecting") {
                "connect"
            } else if t.starts_with("TLS") {
                "tls"
            } else if t.starts_with("HTTP") {
                "http"
            } else if t.starts_with("reading") {
                "read"
            } else {
                "other"
            };
            format!("{call}: transport/{stage}")
        }
        LpaError::Protocol { function, .. } => format!("{}: bad response", function.name()),
        LpaError::Euicc { step, code, .. } => match code {
            Some(c) => format!("eUICC {step:?}: code {c}"),
            None => format!("eUICC {step:?}"),
        },
        LpaError::InstallFailed {
            bpp_command_id,
            error_reason,
            ..
        } => format!("install: bppCommandId {bpp_command_id} errorReason {error_reason}"),
        LpaError::ConfirmationCodeRequired => "confirmation code required".into(),
        LpaError::InvalidInput(m) => format!("LPA: {}", strip_message(m)),
        LpaError::Stopped { step, .. } => format!("stopped before {step:?}"),
    }
}

/// What one device measured.
#[derive(Debug, Default)]
pub struct DeviceResult {
    /// Complete downloads (profile installed and the PIR acknowledged).
    pub completed: u64,
    /// Per call (index as [`CALLS`]), the successful calls' durations.
    pub calls: [Vec<Duration>; 4],
    /// Whole downloads that completed.
    pub downloads: Vec<Duration>,
    /// Failures by key.
    pub errors: ErrorTally,
}

/// Runs downloads on `euicc` until `queue` is empty.
pub async fn run_device(
    lpa: Lpa,
    mut euicc: Euicc,
    smdp_address: Arc<str>,
    queue: Arc<Queue>,
) -> DeviceResult {
    let opts = DownloadOptions::default();
    let mut out = DeviceResult::default();
    while let Some(mid) = queue.pop() {
        let ac = smdpp_service::assembly::activation_code(&smdp_address, mid, false);
        let mut timer = CallTimer::default();
        let began = Instant::now();
        let result = lpa.download_with(&mut euicc, &ac, &opts, &mut timer).await;
        match result {
            Ok(o) if o.notification_sent => {
                timer.end(3);
                out.completed += 1;
                out.downloads.push(began.elapsed());
                for (i, t) in timer.took.iter().enumerate() {
                    if let Some(t) = t {
                        out.calls[i].push(*t);
                    }
                }
            }
            Ok(o) => {
                let what = o.notification_error.as_deref().unwrap_or("not sent");
                *out.errors
                    .entry(format!("PIR not acknowledged: {}", strip_message(what)))
                    .or_default() += 1;
            }
            Err(e) => {
                *out.errors
                    .entry(error_key(&e, timer.in_flight()))
                    .or_default() += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use euicc_sim::lpa::ServerError;
    use smdpp_core::status::ExecutionStatus;

    #[test]
    fn queue_hands_out_each_id_once() {
        let q = Queue::new(vec!["A".into(), "B".into()]);
        assert_eq!(q.pop(), Some("A"));
        assert_eq!(q.pop(), Some("B"));
        assert_eq!(q.pop(), None);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn error_keys() {
        let e = LpaError::Server(ServerError {
            function: Es9Function::AuthenticateClient,
            status: ExecutionStatus::Failed,
            subject_code: "8.2.6".into(),
            reason_code: "3.8".into(),
            subject_identifier: None,
            message: Some("x".into()),
        });
        assert_eq!(error_key(&e, None), "AuthenticateClient: 8.2.6/3.8");
        let t = LpaError::Transport("connecting to 127.0.0.1:1: refused".into());
        assert_eq!(
            error_key(&t, Some("InitiateAuthentication")),
            "InitiateAuthentication: transport/connect"
        );
        let t = LpaError::Transport("127.0.0.1:1/gsma/rsp2/es9plus/x: timed out".into());
        assert_eq!(error_key(&t, None), "?: transport/timeout");
    }

    #[test]
    fn timer_reports_the_call_in_flight() {
        let mut t = CallTimer::default();
        t.start(0);
        t.end(0);
        t.start(1);
        assert_eq!(t.in_flight(), Some("AuthenticateClient"));
        t.end(1);
        assert_eq!(t.in_flight(), None);
    }
}
