//! The console's routes and pages (listed in the crate docs).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use smdpp_core::ActivationCode;
use smdpp_core::es2_json::{
    CancelOrderRequest, ConfirmOrderRequest, ConfirmationCode, DownloadOrderRequest, Eid, Es2Error,
    Es2Request, Es2RequestHeader, FinalProfileStatusIndicator, Iccid, ReleaseProfileRequest,
};
use smdpp_core::rpm_json::{DeactivateRequest, DeactivationMode, DeactivationReason};
use smdpp_store::{OutboxRow, OutboxState, Profile, ProfileFilter, ProfileState, now_ms};

use crate::Console;
use crate::auth::{self, COOKIE, LoginError, SessionCheck, Viewer};
use crate::html::{csrf_field, esc, options, page, table, url_arg, when};

type Shared = State<Arc<Console>>;
type FormData = Form<HashMap<String, String>>;

/// The console's routes over `console`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(dashboard))
        .route("/profiles", get(profiles))
        .route("/profiles/{iccid}", get(profile))
        .route("/orders", get(orders).post(create_order))
        .route("/orders/{iccid}", get(order))
        .route("/orders/{iccid}/qr.png", get(order_qr))
        .route("/orders/{iccid}/{action}", post(order_action))
        .route("/outbox", get(outbox))
        .route("/outbox/{id}/retry", post(outbox_retry))
        .route("/types", get(types))
        .route("/keys", get(keys))
        .route("/console/api/dashboard", get(api_dashboard))
        .route("/console/api/profiles", get(api_profiles))
        .route("/console/api/profiles/{iccid}", get(api_profile))
        .route("/openapi.json", get(crate::openapi::document))
        .with_state(console)
}

// ------------------------------------------------------------------------ responses

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                     img-src 'self'; frame-ancestors 'none'; form-action 'self'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn error_page(status: StatusCode, viewer: Option<&Viewer>, title: &str, message: &str) -> Response {
    html(
        status,
        page(
            title,
            viewer,
            &format!("<p class=\"error\">{}</p>", esc(message)),
        ),
    )
}

fn not_found(v: &Viewer) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        Some(v),
        "Not found",
        "no such profile",
    )
}

fn unavailable(v: Option<&Viewer>) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        v,
        "Unavailable",
        "the database is not reachable; retry later",
    )
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        v.to_string(),
    )
        .into_response()
}

// ------------------------------------------------------------------------ sessions

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| auth::cookie_value(h, COOKIE).map(str::to_owned))
}

/// The logged-in user, or the response that sends the browser to the log-in page (or, for
/// the JSON API, a 401).
async fn viewer(c: &Console, headers: &HeaderMap, api: bool) -> Result<Viewer, Response> {
    let token = cookie_token(headers);
    match auth::check_session(&c.store, token.as_deref()).await {
        Ok(SessionCheck::Live(v)) => Ok(v),
        Ok(SessionCheck::Expired) if api => Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "session_expired", "message": "session expired; log in again"}),
        )),
        Ok(SessionCheck::None) if api => Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "unauthenticated", "message": "log in first"}),
        )),
        Ok(SessionCheck::Expired) => Err(redirect("/login?expired=1")),
        Ok(SessionCheck::None) => Err(redirect("/login")),
        Err(()) => Err(unavailable(None)),
    }
}

/// The user of a state-changing request: logged in, with the session's CSRF token, and (when
/// `act`) allowed to act.
async fn actor(
    c: &Console,
    headers: &HeaderMap,
    form: &FormData,
    act: bool,
) -> Result<Viewer, Response> {
    let v = viewer(c, headers, false).await?;
    if !auth::csrf_ok(&v, form.get("csrf").map(String::as_str)) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            Some(&v),
            "Refused",
            "missing or wrong CSRF token; reload the page and try again",
        ));
    }
    if act && !v.may_act() {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            Some(&v),
            "Refused",
            "your role is read-only",
        ));
    }
    Ok(v)
}

fn session_cookie(c: &Console, token: &str, max_age_secs: i64) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{}",
        if c.secure_cookie { "; Secure" } else { "" }
    )
}

// ------------------------------------------------------------------------ log-in

async fn login_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let note = if q.contains_key("expired") {
        "<p class=\"error\">session expired; log in again</p>"
    } else {
        ""
    };
    html(StatusCode::OK, page("Log in", None, &login_form(note)))
}

fn login_form(note: &str) -> String {
    format!(
        "{note}<form id=\"login\" method=\"post\" action=\"/login\">\
         <p><label>Username <input name=\"username\" autocomplete=\"username\" required></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button id=\"login-submit\" type=\"submit\">Log in</button></p></form>"
    )
}

async fn login(State(c): Shared, Form(f): FormData) -> Response {
    let username = f.get("username").map(String::as_str).unwrap_or("");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    match auth::log_in(&c.store, username, password, c.session_ttl_ms).await {
        Ok(token) => {
            let entry = smdpp_store::AuditEntry::new(
                format!("console:{username}"),
                "console.login",
                username,
            );
            if let Err(e) = c.store.append_audit(&entry).await {
                tracing::error!(error = %e, "cannot write the audit record of a console log-in");
            }
            let mut r = redirect("/");
            // The cookie outlives the session by the day the server keeps an expired session
            // (the store purges them a day late), so that the browser still presents it and
            // is told "session expired"; validity is decided by the server, not the cookie.
            let max_age = c.session_ttl_ms / 1000 + 86_400;
            if let Ok(v) = HeaderValue::from_str(&session_cookie(&c, &token, max_age)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(LoginError::Wrong) => {
            tracing::info!(username = %username.chars().take(64).collect::<String>(), "console log-in refused");
            html(
                StatusCode::UNAUTHORIZED,
                page(
                    "Log in",
                    None,
                    &login_form("<p class=\"error\">wrong username or password</p>"),
                ),
            )
        }
        Err(LoginError::Unavailable) => unavailable(None),
    }
}

async fn logout(State(c): Shared, headers: HeaderMap, form: FormData) -> Response {
    let v = match actor(&c, &headers, &form, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let _ = c.store.delete_console_session(&v.token_sha256).await;
    let mut r = redirect("/login");
    if let Ok(h) = HeaderValue::from_str(&session_cookie(&c, "", 0)) {
        r.headers_mut().insert(header::SET_COOKIE, h);
    }
    r
}

// ------------------------------------------------------------------------ dashboard

async fn dashboard_data(c: &Console, v: &Viewer) -> Result<Value, ()> {
    let since = now_ms() - 60 * 60_000;
    let scope = v.operator_id.as_deref();
    let installed = c
        .store
        .transitions_per_minute(ProfileState::Installed, since, scope)
        .await
        .map_err(|_| ())?;
    let errors = c
        .store
        .transitions_per_minute(ProfileState::Error, since, scope)
        .await
        .map_err(|_| ())?;
    let mut minutes: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for (m, n) in installed {
        minutes.entry(m).or_default().0 = n;
    }
    for (m, n) in errors {
        minutes.entry(m).or_default().1 = n;
    }
    let per_minute: Vec<Value> = minutes
        .iter()
        .rev()
        .map(|(m, (ok, failed))| json!({"minute": when(*m), "downloads": ok, "failed": failed}))
        .collect();
    let mut states: std::collections::BTreeMap<String, i64> = Default::default();
    for (state, _, n) in c.store.profile_counts(scope).await.map_err(|_| ())? {
        *states.entry(state.as_str().to_owned()).or_default() += n;
    }
    // Process-wide figures (not split by operator): only for users of all operators.
    let (failures, outbox) = if v.operator_id.is_none() {
        let f: Vec<Value> = smdpp_server::metrics::global()
            .failures_by_code()
            .into_iter()
            .map(|(i, f, s, r, n)| {
                json!({"interface": i, "function": f, "subjectCode": s, "reasonCode": r, "count": n})
            })
            .collect();
        let o = c.store.outbox_stats().await.map_err(|_| ())?;
        (
            Value::Array(f),
            json!({"pending": o.pending, "failed": o.failed,
                "oldestPendingAgeSeconds": o.oldest_pending_at.map(|t| (now_ms() - t) / 1000)}),
        )
    } else {
        (Value::Array(Vec::new()), Value::Null)
    };
    Ok(json!({
        "perMinute": per_minute,
        "profilesByState": states,
        "failuresByCode": failures,
        "outbox": outbox,
    }))
}

fn dashboard_tables(d: &Value) -> String {
    let mut rows = String::new();
    for m in d["perMinute"].as_array().into_iter().flatten() {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(m["minute"].as_str().unwrap_or("")),
            m["downloads"],
            m["failed"]
        );
    }
    let mut fails = String::new();
    for f in d["failuresByCode"].as_array().into_iter().flatten() {
        let _ = write!(
            fails,
            "<tr><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
            esc(f["interface"].as_str().unwrap_or("")),
            esc(f["function"].as_str().unwrap_or("")),
            esc(f["subjectCode"].as_str().unwrap_or("")),
            esc(f["reasonCode"].as_str().unwrap_or("")),
            f["count"]
        );
    }
    let mut states = String::new();
    for (s, n) in d["profilesByState"].as_object().into_iter().flatten() {
        let _ = write!(states, "<tr><td>{}</td><td>{n}</td></tr>", esc(s));
    }
    let outbox = match d["outbox"].as_object() {
        Some(o) => format!(
            "<p id=\"outbox-depth\">Outbox: {} pending, {} failed{}</p>",
            o.get("pending").cloned().unwrap_or(Value::Null),
            o.get("failed").cloned().unwrap_or(Value::Null),
            o.get("oldestPendingAgeSeconds")
                .and_then(Value::as_i64)
                .map(|s| format!(", oldest pending {s} s"))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    format!(
        "<h2>Downloads per minute (last hour, all nodes)</h2>{}\
         <h2>Failures by SGP.22 code (this node, since start)</h2>{}\
         <h2>Profiles by state</h2>{}{outbox}",
        table(
            "downloads-per-minute",
            &["minute (UTC)", "installed", "failed"],
            &rows
        ),
        table(
            "failures-by-code",
            &["interface", "function", "subjectCode/reasonCode", "count"],
            &fails
        ),
        table("profiles-by-state", &["state", "profiles"], &states),
    )
}

async fn dashboard(State(c): Shared, headers: HeaderMap) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(d) = dashboard_data(&c, &v).await else {
        return unavailable(Some(&v));
    };
    // Live: the tables are re-rendered from the JSON API every 5 s (same markup).
    let script = "<script>setInterval(async()=>{try{const r=await fetch('/',\
        {credentials:'same-origin',headers:{'X-Fragment':'1'}});if(r.ok){document.getElementById('live').innerHTML=\
        await r.text();}}catch(e){}},5000);</script>";
    if headers.get("x-fragment").is_some() {
        return html(StatusCode::OK, dashboard_tables(&d));
    }
    html(
        StatusCode::OK,
        page(
            "Dashboard",
            Some(&v),
            &format!("<div id=\"live\">{}</div>{script}", dashboard_tables(&d)),
        ),
    )
}

async fn api_dashboard(State(c): Shared, headers: HeaderMap) -> Response {
    let v = match viewer(&c, &headers, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match dashboard_data(&c, &v).await {
        Ok(d) => json_response(StatusCode::OK, &d),
        Err(()) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "unavailable", "message": "retry later"}),
        ),
    }
}

// ------------------------------------------------------------------------ inventory

/// The profiles a search finds, within the user's scope.
async fn search(c: &Console, v: &Viewer, q: &HashMap<String, String>) -> Result<Vec<Profile>, ()> {
    let text = q.get("q").map(|s| s.trim()).unwrap_or("");
    let state = q
        .get("state")
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse::<ProfileState>().ok());
    let mut filter = ProfileFilter {
        state,
        profile_type: q.get("type").filter(|s| !s.is_empty()).cloned(),
        operator_id: v
            .operator_id
            .clone()
            .or_else(|| q.get("operator").filter(|s| !s.is_empty()).cloned()),
        limit: Some(200),
        ..ProfileFilter::default()
    };
    let digits = text.strip_suffix(['F', 'f']).unwrap_or(text);
    let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let one = |p: Option<Profile>| {
        p.into_iter()
            .filter(|p| {
                v.may_see(p.operator_id.as_deref())
                    && filter.state.is_none_or(|s| s == p.state)
                    && filter
                        .profile_type
                        .as_ref()
                        .is_none_or(|t| p.profile_type.as_ref() == Some(t))
                    && filter
                        .operator_id
                        .as_ref()
                        .is_none_or(|o| p.operator_id.as_ref() == Some(o))
            })
            .collect()
    };
    if text.is_empty() {
        c.store.list_profiles(&filter).await.map_err(|_| ())
    } else if all_digits && matches!(digits.len(), 18..=20) {
        Ok(one(c.store.get_profile(digits).await.map_err(|_| ())?))
    } else if all_digits && digits.len() == 32 {
        filter.eid = Some(digits.to_owned());
        c.store.list_profiles(&filter).await.map_err(|_| ())
    } else if all_digits && matches!(digits.len(), 5..=15) {
        match c.store.iccid_by_imsi(digits).await.map_err(|_| ())? {
            Some(iccid) => Ok(one(c.store.get_profile(&iccid).await.map_err(|_| ())?)),
            None => Ok(Vec::new()),
        }
    } else {
        Ok(Vec::new())
    }
}

fn profile_json(p: &Profile) -> Value {
    json!({
        "iccid": p.iccid,
        "state": p.state.as_str(),
        "profileType": p.profile_type,
        "operator": p.operator_id,
        "eid": p.eid,
        "downloadAttempts": p.download_attempts,
        "errorCause": p.error_cause,
        "updatedAt": when(p.updated_at),
    })
}

async fn profiles(
    State(c): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(found) = search(&c, &v, &q).await else {
        return unavailable(Some(&v));
    };
    let mut rows = String::new();
    for p in &found {
        let _ = write!(
            rows,
            "<tr data-iccid=\"{i}\"><td><a class=\"profile-link\" href=\"/profiles/{i}\">{i}</a></td>\
             <td class=\"state\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p.state.as_str()),
            esc(p.profile_type.as_deref().unwrap_or("")),
            esc(p.operator_id.as_deref().unwrap_or("")),
            esc(p.eid.as_deref().unwrap_or("")),
            when(p.updated_at),
            i = esc(&p.iccid)
        );
    }
    let states: Vec<&str> = std::iter::once("")
        .chain(ProfileState::ALL.iter().map(|s| s.as_str()))
        .collect();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let body = format!(
        "<form id=\"search\" method=\"get\" action=\"/profiles\">\
         <label>ICCID, EID or IMSI <input name=\"q\" value=\"{}\" size=\"34\"></label> \
         <label>State <select name=\"state\">{}</select></label> \
         <label>Type <input name=\"type\" value=\"{}\" size=\"12\"></label> \
         {}<button type=\"submit\">Search</button></form><p>{} profile(s){}</p>{}",
        esc(get("q")),
        options(&states, get("state")),
        esc(get("type")),
        if v.operator_id.is_none() {
            format!(
                "<label>Operator <input name=\"operator\" value=\"{}\" size=\"12\"></label> ",
                esc(get("operator"))
            )
        } else {
            String::new()
        },
        found.len(),
        if found.len() >= 200 {
            " (first 200)"
        } else {
            ""
        },
        table(
            "profiles",
            &["ICCID", "state", "type", "operator", "EID", "updated (UTC)"],
            &rows
        )
    );
    html(StatusCode::OK, page("Inventory", Some(&v), &body))
}

async fn api_profiles(
    State(c): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&c, &headers, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match search(&c, &v, &q).await {
        Ok(found) => json_response(
            StatusCode::OK,
            &Value::Array(found.iter().map(profile_json).collect()),
        ),
        Err(()) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "unavailable", "message": "retry later"}),
        ),
    }
}

/// The profile at `iccid` if the user may see it (`Ok(None)` otherwise, like an unknown one).
async fn visible(c: &Console, v: &Viewer, iccid: &str) -> Result<Option<Profile>, ()> {
    let Some(i) = Iccid::parse(iccid) else {
        return Ok(None);
    };
    Ok(c.store
        .get_profile(i.as_str())
        .await
        .map_err(|_| ())?
        .filter(|p| v.may_see(p.operator_id.as_deref())))
}

/// [`visible`] for a page: 404 when the user may not see it, 503 when the database fails.
async fn page_profile(c: &Console, v: &Viewer, iccid: &str) -> Result<Profile, Response> {
    match visible(c, v, iccid).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(not_found(v)),
        Err(()) => Err(unavailable(Some(v))),
    }
}

fn outbox_rows(rows: &[OutboxRow], v: &Viewer, with_iccid: bool) -> String {
    let mut out = String::new();
    for r in rows {
        let retry = if r.state == OutboxState::Failed && v.may_act() {
            format!(
                "<form class=\"retry inline\" method=\"post\" action=\"/outbox/{}/retry\">{}\
                 <button type=\"submit\">Retry</button></form>",
                url_arg(&r.id),
                csrf_field(v)
            )
        } else {
            String::new()
        };
        let iccid = if with_iccid {
            format!(
                "<td>{}</td>",
                r.iccid
                    .as_deref()
                    .map(|i| format!("<a href=\"/profiles/{}\">{}</a>", esc(i), esc(i)))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr class=\"callback\" data-id=\"{}\"><td>{}</td>{iccid}<td class=\"callback-state outbox-state\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{retry}</td></tr>",
            esc(&r.id),
            esc(r.kind.as_str()),
            esc(r.state.as_str()),
            r.attempts,
            esc(r.last_error.as_deref().unwrap_or("")),
            when(r.created_at),
            r.finished_at.map(when).unwrap_or_default(),
        );
    }
    out
}

async fn profile(State(c): Shared, headers: HeaderMap, Path(iccid): Path<String>) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match page_profile(&c, &v, &iccid).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (Ok(events), Ok(calls)) = (
        c.store.events_for(&p.iccid).await,
        c.store.outbox_for_iccid(&p.iccid, 500).await,
    ) else {
        return unavailable(Some(&v));
    };
    let mut rows = String::new();
    for e in &events {
        let _ = write!(
            rows,
            "<tr class=\"event\"><td>{}</td><td>{}</td><td class=\"to-state\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(e.at),
            esc(e.from_state.map(|s| s.as_str()).unwrap_or("")),
            esc(e.to_state.as_str()),
            esc(e.cause.as_deref().unwrap_or("")),
            esc(e.detail.as_deref().unwrap_or("")),
            esc(&e.actor),
        );
    }
    let body = format!(
        "<p>State <strong id=\"profile-state\">{}</strong> · type {} · operator {} · EID {} · \
         download attempts {}{} · <a href=\"/orders/{}\">order actions</a></p>\
         <h2>Timeline</h2>{}<h2>Outbound calls (callbacks, core network, webhooks)</h2>{}",
        esc(p.state.as_str()),
        esc(p.profile_type.as_deref().unwrap_or("-")),
        esc(p.operator_id.as_deref().unwrap_or("-")),
        esc(p.eid.as_deref().unwrap_or("-")),
        p.download_attempts,
        p.error_cause
            .as_deref()
            .map(|e| format!(" · error: {}", esc(e)))
            .unwrap_or_default(),
        esc(&p.iccid),
        table(
            "timeline",
            &["at (UTC)", "from", "to", "cause", "detail", "actor"],
            &rows
        ),
        table(
            "callbacks",
            &[
                "kind",
                "state",
                "attempts",
                "last error",
                "queued",
                "finished",
                ""
            ],
            &outbox_rows(&calls, &v, false)
        ),
    );
    html(
        StatusCode::OK,
        page(&format!("Profile {}", p.iccid), Some(&v), &body),
    )
}

async fn api_profile(State(c): Shared, headers: HeaderMap, Path(iccid): Path<String>) -> Response {
    let v = match viewer(&c, &headers, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let unavailable = || {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "unavailable", "message": "retry later"}),
        )
    };
    let p = match visible(&c, &v, &iccid).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "not_found", "message": "no such profile"}),
            );
        }
        Err(()) => return unavailable(),
    };
    let (Ok(events), Ok(calls)) = (
        c.store.events_for(&p.iccid).await,
        c.store.outbox_for_iccid(&p.iccid, 500).await,
    ) else {
        return unavailable();
    };
    let mut out = profile_json(&p);
    out["timeline"] = events
        .iter()
        .map(|e| {
            json!({"at": when(e.at), "from": e.from_state.map(|s| s.as_str()),
                "to": e.to_state.as_str(), "cause": e.cause, "detail": e.detail, "actor": e.actor})
        })
        .collect();
    out["outbound"] = calls
        .iter()
        .map(|r| {
            json!({"id": r.id, "kind": r.kind.as_str(), "state": r.state.as_str(),
                "attempts": r.attempts, "lastError": r.last_error})
        })
        .collect();
    json_response(StatusCode::OK, &out)
}

// ------------------------------------------------------------------------ orders

fn header_for(operator: &str) -> Es2RequestHeader {
    Es2RequestHeader {
        function_requester_identifier: operator.to_owned(),
        function_call_identifier: format!("console-{}", auth::random_hex(8)),
    }
}

fn es2_message(e: &Es2Error) -> String {
    format!("{}/{}: {}", e.code.subject(), e.code.reason(), e.message)
}

fn orders_form(v: &Viewer, note: &str) -> String {
    let operator = if v.operator_id.is_none() {
        "<p><label>Operator <input name=\"operator\" required></label></p>"
    } else {
        ""
    };
    format!(
        "{note}<p>ES2+ DownloadOrder: reserve a profile of a type (or a given ICCID), \
         optionally for one EID.</p>\
         <form id=\"create-order\" method=\"post\" action=\"/orders\">{}{operator}\
         <p><label>Profile type <input name=\"profile_type\"></label></p>\
         <p><label>or ICCID <input name=\"iccid\" size=\"22\"></label></p>\
         <p><label>EID (optional) <input name=\"eid\" size=\"34\"></label></p>\
         <p><button type=\"submit\">Create order</button></p></form>\
         <p>Orders in progress: <a href=\"/profiles?state=allocated\">allocated</a>, \
         <a href=\"/profiles?state=linked\">linked</a>, <a href=\"/profiles?state=confirmed\">confirmed</a>, \
         <a href=\"/profiles?state=released\">released</a>.</p>",
        csrf_field(v)
    )
}

async fn orders(State(c): Shared, headers: HeaderMap) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    html(
        StatusCode::OK,
        page("Orders", Some(&v), &orders_form(&v, "")),
    )
}

fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    f.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

async fn create_order(State(c): Shared, headers: HeaderMap, form: FormData) -> Response {
    let v = match actor(&c, &headers, &form, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let refuse = |m: &str| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            page(
                "Orders",
                Some(&v),
                &orders_form(&v, &format!("<p class=\"error\">{}</p>", esc(m))),
            ),
        )
    };
    let Some(operator) = v
        .operator_id
        .clone()
        .or_else(|| field(&form, "operator").map(str::to_owned))
    else {
        return refuse("an operator is required");
    };
    let iccid = match field(&form, "iccid").map(Iccid::parse) {
        None => None,
        Some(Some(i)) => Some(i),
        Some(None) => return refuse("ICCID must be 19 or 20 digits (optionally with F)"),
    };
    let eid = match field(&form, "eid").map(Eid::parse) {
        None => None,
        Some(Some(e)) => Some(e),
        Some(None) => return refuse("EID must be 32 digits"),
    };
    let req = DownloadOrderRequest {
        header: header_for(&operator),
        eid,
        iccid,
        profile_type: field(&form, "profile_type").map(str::to_owned),
    };
    if let Err(e) = req.validate() {
        return refuse(&es2_message(&e));
    }
    match c.es2.download_order(&operator, &req).await {
        Ok(r) => {
            tracing::info!(username = %v.username, iccid = %r.iccid, "console: DownloadOrder");
            c.es2
                .audit_order(
                    &format!("console:{}", v.username),
                    &operator,
                    "order.download",
                    r.iccid.as_str(),
                    smdpp_service::es2::download_details(&req),
                )
                .await;
            redirect(&format!("/orders/{}", r.iccid.as_str()))
        }
        Err(e) => refuse(&es2_message(&e)),
    }
}

/// The Activation Code of an order in a state that has one (SGP.22 4.1).
fn activation_code(c: &Console, p: &Profile) -> Option<String> {
    if !matches!(
        p.state,
        ProfileState::Confirmed | ProfileState::Released | ProfileState::Downloaded
    ) {
        return None;
    }
    Some(smdpp_service::assembly::activation_code(
        &c.smdp_address,
        p.matching_id.as_deref()?,
        p.cc_hash.is_some(),
    ))
}

fn order_body(c: &Console, v: &Viewer, p: &Profile, note: &str) -> String {
    let i = esc(&p.iccid);
    let ac = match activation_code(c, p) {
        Some(ac) => format!(
            "<h2>Activation Code</h2><p><code id=\"activation-code\">{}</code></p>\
             <p><img id=\"qr\" src=\"/orders/{i}/qr.png\" alt=\"QR code of the Activation Code\" width=\"240\" height=\"240\"></p>",
            esc(&ac)
        ),
        None => "<p>No Activation Code in this state (it exists once the order is confirmed).</p>"
            .to_owned(),
    };
    let csrf = csrf_field(v);
    let actions = if v.may_act() {
        format!(
            "<h2>ES2+ functions</h2>\
             <fieldset><legend>ConfirmOrder</legend><form id=\"confirm\" method=\"post\" action=\"/orders/{i}/confirm\">{csrf}\
             <label>MatchingID (generated if empty) <input name=\"matching_id\"></label> \
             <label>Confirmation Code <input name=\"confirmation_code\" type=\"password\" autocomplete=\"off\"></label> \
             <label><input type=\"checkbox\" name=\"release\" checked> release now</label> \
             <button type=\"submit\">Confirm</button></form></fieldset>\
             <fieldset><legend>ReleaseProfile</legend><form id=\"release\" method=\"post\" action=\"/orders/{i}/release\">{csrf}\
             <button type=\"submit\">Release</button></form></fieldset>\
             <fieldset><legend>CancelOrder</legend><form id=\"cancel\" method=\"post\" action=\"/orders/{i}/cancel\">{csrf}\
             <label>Profile becomes <select name=\"final_status\">{}</select></label> \
             <button type=\"submit\">Cancel order</button></form></fieldset>\
             <fieldset><legend>Deactivate (lost, stolen, terminated)</legend><form id=\"deactivate\" method=\"post\" action=\"/orders/{i}/deactivate\">{csrf}\
             <label>Reason <select name=\"reason\">{}</select></label> \
             <label>On the eUICC <select name=\"mode\">{}</select></label> \
             <button type=\"submit\">Deactivate</button></form></fieldset>",
            options(&["available", "unavailable"], "available"),
            options(&["lost", "stolen", "terminated"], "terminated"),
            options(&["disable", "delete"], "disable"),
        )
    } else {
        String::new()
    };
    format!(
        "{note}<p>State <strong id=\"order-state\">{}</strong> · type {} · operator {} · EID {} · \
         <a href=\"/profiles/{i}\">timeline</a></p>{ac}{actions}",
        esc(p.state.as_str()),
        esc(p.profile_type.as_deref().unwrap_or("-")),
        esc(p.operator_id.as_deref().unwrap_or("-")),
        esc(p.eid.as_deref().unwrap_or("-")),
    )
}

async fn order(
    State(c): Shared,
    headers: HeaderMap,
    Path(iccid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match page_profile(&c, &v, &iccid).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let note = q
        .get("done")
        .map(|d| format!("<p class=\"ok\">{} done</p>", esc(d)))
        .unwrap_or_default();
    html(
        StatusCode::OK,
        page(
            &format!("Order {}", p.iccid),
            Some(&v),
            &order_body(&c, &v, &p, &note),
        ),
    )
}

async fn order_qr(State(c): Shared, headers: HeaderMap, Path(iccid): Path<String>) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match page_profile(&c, &v, &iccid).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let png = activation_code(&c, &p)
        .and_then(|ac| ActivationCode::parse(&ac).ok())
        .and_then(|ac| smdpp_core::qr::png(&ac).ok());
    match png {
        Some(png) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            png,
        )
            .into_response(),
        None => error_page(
            StatusCode::CONFLICT,
            Some(&v),
            "No Activation Code",
            "the order has no Activation Code in its state",
        ),
    }
}

async fn order_action(
    State(c): Shared,
    headers: HeaderMap,
    Path((iccid, action)): Path<(String, String)>,
    form: FormData,
) -> Response {
    let v = match actor(&c, &headers, &form, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = match page_profile(&c, &v, &iccid).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let refuse = |p: &Profile, m: &str| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            page(
                &format!("Order {}", p.iccid),
                Some(&v),
                &order_body(&c, &v, p, &format!("<p class=\"error\">{}</p>", esc(m))),
            ),
        )
    };
    let Some(operator) = p.operator_id.clone() else {
        return refuse(
            &p,
            "this profile belongs to no operator; ES2+ functions need one (smdpp profiles add orders are managed with the CLI)",
        );
    };
    let Some(icc) = Iccid::parse(&p.iccid) else {
        return not_found(&v);
    };
    let header = header_for(&operator);
    // The audit action and details of what was done.
    let result: Result<(&str, serde_json::Value), Es2Error> = match action.as_str() {
        "confirm" => {
            let req = ConfirmOrderRequest {
                header,
                iccid: icc,
                eid: None,
                matching_id: field(&form, "matching_id").map(str::to_owned),
                confirmation_code: field(&form, "confirmation_code").map(ConfirmationCode::new),
                smds_address: None,
                release_flag: form.contains_key("release"),
            };
            match req.validate() {
                Ok(()) => c
                    .es2
                    .confirm_order(&operator, &req)
                    .await
                    .map(|_| ("order.confirm", smdpp_service::es2::confirm_details(&req))),
                Err(e) => Err(e),
            }
        }
        "release" => {
            let req = ReleaseProfileRequest { header, iccid: icc };
            c.es2
                .release_profile(&operator, &req)
                .await
                .map(|_| ("order.release", serde_json::json!({})))
        }
        "cancel" => {
            let final_status = match field(&form, "final_status") {
                Some("unavailable") => FinalProfileStatusIndicator::Unavailable,
                _ => FinalProfileStatusIndicator::Available,
            };
            let req = CancelOrderRequest {
                header,
                iccid: icc,
                eid: p.eid.as_deref().and_then(Eid::parse),
                matching_id: p.matching_id.clone(),
                final_profile_status_indicator: final_status,
            };
            c.es2
                .cancel_order(&operator, &req)
                .await
                .map(|_| ("order.cancel", smdpp_service::es2::cancel_details(&req)))
        }
        "deactivate" => {
            let reason = match field(&form, "reason") {
                Some("lost") => DeactivationReason::Lost,
                Some("stolen") => DeactivationReason::Stolen,
                _ => DeactivationReason::Terminated,
            };
            let mode = match field(&form, "mode") {
                Some("delete") => DeactivationMode::Delete,
                _ => DeactivationMode::Disable,
            };
            let req = DeactivateRequest {
                header,
                iccid: icc,
                reason,
                mode,
            };
            c.es2.deactivate(&operator, &req).await.map(|r| {
                (
                    "order.deactivate",
                    smdpp_service::es2::deactivate_details(&req, &r),
                )
            })
        }
        _ => return not_found(&v),
    };
    match result {
        Ok((audit_action, details)) => {
            tracing::info!(username = %v.username, iccid = %p.iccid, action, "console order action");
            c.es2
                .audit_order(
                    &format!("console:{}", v.username),
                    &operator,
                    audit_action,
                    &p.iccid,
                    details,
                )
                .await;
            redirect(&format!("/orders/{}?done={}", p.iccid, url_arg(&action)))
        }
        Err(e) => {
            let now = c.store.get_profile(&p.iccid).await.ok().flatten();
            refuse(now.as_ref().unwrap_or(&p), &es2_message(&e))
        }
    }
}

// ------------------------------------------------------------------------ outbox, types, keys

async fn outbox(
    State(c): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = match q.get("state").map(String::as_str) {
        Some("delivered") => Some(OutboxState::Delivered),
        Some("failed") => Some(OutboxState::Failed),
        Some("pending") => Some(OutboxState::Pending),
        _ => None,
    };
    let Ok(rows) = c.store.list_outbox(state, 1000).await else {
        return unavailable(Some(&v));
    };
    let rows: Vec<OutboxRow> = rows
        .into_iter()
        .filter(|r| v.may_see(r.operator_id.as_deref()))
        .collect();
    let body = format!(
        "<p>Show: <a href=\"/outbox\">all</a> · <a href=\"/outbox?state=pending\">pending</a> · \
         <a href=\"/outbox?state=failed\">failed</a> · <a href=\"/outbox?state=delivered\">delivered</a> \
         ({} row(s), oldest first)</p>{}",
        rows.len(),
        table(
            "outbox",
            &[
                "kind",
                "ICCID",
                "state",
                "attempts",
                "last error",
                "queued",
                "finished",
                ""
            ],
            &outbox_rows(&rows, &v, true)
        )
    );
    html(StatusCode::OK, page("Outbox", Some(&v), &body))
}

async fn outbox_retry(
    State(c): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    let v = match actor(&c, &headers, &form, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let row = match c.store.get_outbox_row(&id).await {
        Ok(r) => r.filter(|r| v.may_see(r.operator_id.as_deref())),
        Err(_) => return unavailable(Some(&v)),
    };
    let Some(row) = row else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&v),
            "Not found",
            "no such outbound call",
        );
    };
    match c.store.requeue_outbox(&row.id).await {
        Ok(true) => {
            tracing::info!(username = %v.username, id = %row.id, kind = row.kind.as_str(), "console: outbound call queued again");
            redirect("/outbox?state=pending")
        }
        Ok(false) => error_page(
            StatusCode::CONFLICT,
            Some(&v),
            "Not retried",
            "only a failed outbound call can be retried",
        ),
        Err(_) => unavailable(Some(&v)),
    }
}

async fn types(State(c): Shared, headers: HeaderMap) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (Ok(types), Ok(gens)) = (
        c.store.list_profile_types().await,
        c.store.list_generators().await,
    ) else {
        return unavailable(Some(&v));
    };
    let mut rows = String::new();
    for t in &types {
        let counts = c
            .store
            .count_profiles_of_type(&t.name)
            .await
            .unwrap_or_default();
        let available = counts
            .iter()
            .find(|(s, _)| *s == ProfileState::Available)
            .map_or(0, |(_, n)| *n);
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        let generator = gens
            .iter()
            .find(|g| g.profile_type == t.name)
            .map(|g| format!("{} of {} generated", g.next_index, g.size))
            .unwrap_or_else(|| "-".to_owned());
        let _ = write!(
            rows,
            "<tr data-type=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{available}</td><td>{total}</td><td>{}</td></tr>",
            esc(&t.name),
            esc(&t.name),
            esc(&t.service_provider_name),
            esc(&t.profile_name),
            t.profile_class.map(|c| c.to_string()).unwrap_or_default(),
            esc(&generator),
        );
    }
    let body = table(
        "types",
        &[
            "name",
            "service provider",
            "profile name",
            "class",
            "available",
            "profiles",
            "generator",
        ],
        &rows,
    );
    html(StatusCode::OK, page("Profile types", Some(&v), &body))
}

async fn keys(State(c): Shared, headers: HeaderMap) -> Response {
    let v = match viewer(&c, &headers, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut rows = String::new();
    for k in &c.certificates {
        let warn = if k.days_left < 30 {
            " class=\"error\""
        } else {
            ""
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{warn}>{}</td><td>{}</td></tr>",
            esc(&k.role),
            esc(&k.subject),
            esc(&k.curve),
            esc(&k.smdp_oid),
            esc(&k.not_after),
            k.days_left,
            esc(&k.custody),
        );
    }
    let deks = match c.store.vault_deks().await {
        Ok(d) => d,
        Err(_) => return unavailable(Some(&v)),
    };
    let mut dek_rows = String::new();
    let active = deks.iter().map(|d| d.dek_id).max();
    for d in &deks {
        let _ = write!(
            dek_rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.dek_id,
            esc(&d.kek_id),
            if Some(d.dek_id) == active {
                "active (new secrets)"
            } else {
                "older (still opens its records)"
            }
        );
    }
    let body = format!(
        "{}<h2>Vault data-encryption keys (wrapped; subscriber secrets are sealed under them)</h2>{}",
        table(
            "keys",
            &[
                "certificate",
                "subject CN",
                "curve",
                "SM-DP+ OID",
                "not after (UTC)",
                "days left",
                "private key"
            ],
            &rows
        ),
        table("deks", &["DEK id", "KEK id", "use"], &dek_rows)
    );
    html(StatusCode::OK, page("Keys", Some(&v), &body))
}
