//! The ES9+ service interface the HTTP layer calls: one method per function.

use std::future::Future;

use smdpp_core::es9_json::{
    AuthenticateClientAnswer, AuthenticateClientRequest, CancelSessionRequest,
    GetBoundProfilePackageRequest, GetBoundProfilePackageResponse, HandleNotificationRequest,
    InitiateAuthenticationRequest, InitiateAuthenticationResponse,
};
use smdpp_core::status::Es9Error;

/// The SM-DP+ side of ES9+ (SGP.22 section 5.6), free of HTTP.
///
/// The HTTP layer has already checked the transport (headers, size, JSON shape, base64, field
/// bounds) and passes typed requests. An `Err` is reported to the LPA as HTTP 200 with
/// `functionExecutionStatus.status = "Failed"` and the error's code and message (so the message
/// must never carry secrets).
///
/// The service is shared as `Arc<Self>` across all connections; calls run concurrently, each in
/// its own task and bounded by the router's request time-out (the future is dropped when it
/// expires, so implementations must be cancel-safe at await points). A panic inside a call is
/// caught and reported as `1.2/4.2`.
pub trait Es9Service: Send + Sync + 'static {
    /// `ES9+.InitiateAuthentication` (section 5.6.1).
    fn initiate_authentication(
        &self,
        request: InitiateAuthenticationRequest,
    ) -> impl Future<Output = Result<InitiateAuthenticationResponse, Es9Error>> + Send;

    /// `ES9+.AuthenticateClient` (section 5.6.3).
    fn authenticate_client(
        &self,
        request: AuthenticateClientRequest,
    ) -> impl Future<Output = Result<AuthenticateClientAnswer, Es9Error>> + Send;

    /// `ES9+.GetBoundProfilePackage` (section 5.6.2).
    fn get_bound_profile_package(
        &self,
        request: GetBoundProfilePackageRequest,
    ) -> impl Future<Output = Result<GetBoundProfilePackageResponse, Es9Error>> + Send;

    /// `ES9+.HandleNotification` (section 5.6.4). `Ok` is answered with 204 No Content.
    ///
    /// An `Err` is answered with HTTP 200 and a `Failed` status, which an LPA also takes as an
    /// acknowledgement (lpac checks only for 2xx) and then deletes the notification; so return
    /// such errors only for notifications that can never be processed. For a transient failure
    /// (e.g. the store is down) return [`FUNCTION_PROVIDER_INACCESSIBLE`] (`1.2/5.1`): it is
    /// answered HTTP 503 so that the LPA keeps the notification and retries later.
    ///
    /// [`FUNCTION_PROVIDER_INACCESSIBLE`]: smdpp_core::status::FUNCTION_PROVIDER_INACCESSIBLE
    fn handle_notification(
        &self,
        request: HandleNotificationRequest,
    ) -> impl Future<Output = Result<(), Es9Error>> + Send;

    /// `ES9+.CancelSession` (section 5.6.5). `Ok` is answered with a header-only
    /// `Executed-Success` response.
    fn cancel_session(
        &self,
        request: CancelSessionRequest,
    ) -> impl Future<Output = Result<(), Es9Error>> + Send;
}
