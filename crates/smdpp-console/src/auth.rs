//! Console users, passwords, sessions and CSRF.
//!
//! - Passwords are hashed with argon2id (the `argon2` crate's defaults: m=19 MiB, t=2, p=1,
//!   a random 16-byte salt) into a PHC string; only that string is stored. A log-in with an
//!   unknown username still runs one verification against a fixed hash, so the answer time
//!   does not tell which usernames exist.
//! - A session is a 256-bit random token in the cookie `smdpp_console` (`HttpOnly`,
//!   `SameSite=Strict`, `Path=/`, and `Secure` unless the console is told it is served over
//!   plain HTTP on loopback); the database keeps only its SHA-256, so a copy of the database
//!   does not let anyone in. A session ends at its expiry (the console's session TTL) or at
//!   log-out.
//! - Every state-changing request (POST) carries the session's CSRF token in the form field
//!   `csrf`; it is compared in constant time. A POST without it, or with another session's,
//!   is refused with 403 before anything is done. `SameSite=Strict` is a second barrier.
//! - Roles: `admin` (every operator, every action), `operator` (the orders of its one
//!   operator), `viewer` (read only; one operator or all).

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use smdpp_store::{ConsoleSession, ConsoleUser, EpochMillis, Store, now_ms};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "smdpp_console";

/// What a console user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything, for every operator.
    Admin,
    /// Orders of one operator.
    Operator,
    /// Read only.
    Viewer,
}

impl Role {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// The logged-in user of a request.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Log-in name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The operator the user is limited to; `None` for all.
    pub operator_id: Option<String>,
    /// The session's CSRF token (put in every form).
    pub csrf: String,
    /// SHA-256 of the session token (for log-out).
    pub token_sha256: String,
}

impl Viewer {
    /// Whether the user may change orders and retry deliveries.
    pub fn may_act(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Operator)
    }

    /// Whether the user may see a profile of `operator_id`.
    pub fn may_see(&self, operator_id: Option<&str>) -> bool {
        match &self.operator_id {
            None => true,
            Some(mine) => operator_id == Some(mine.as_str()),
        }
    }
}

/// Hashes a password (argon2id, random salt) into a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fixed hash verified against for unknown usernames (equal work either way).
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no such user, no such password").unwrap_or_default())
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// SHA-256 of a session token, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a log-in failed.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password (not told apart).
    Wrong,
    /// The database failed.
    Unavailable,
}

/// Checks the credentials and opens a session; returns the cookie token.
pub async fn log_in(
    store: &Store,
    username: &str,
    password: &str,
    ttl_ms: EpochMillis,
) -> Result<String, LoginError> {
    let user = store
        .get_console_user(username)
        .await
        .map_err(|_| LoginError::Unavailable)?;
    let ok = match &user {
        Some(u) => verify_password(password, &u.password_hash),
        None => {
            let _ = verify_password(password, dummy_hash());
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        return Err(LoginError::Wrong);
    };
    let token = random_hex(32);
    let csrf = random_hex(16);
    store
        .insert_console_session(
            &token_hash(&token),
            &user.username,
            &csrf,
            now_ms().saturating_add(ttl_ms),
        )
        .await
        .map_err(|_| LoginError::Unavailable)?;
    tracing::info!(username = %user.username, role = %user.role, "console log-in");
    Ok(token)
}

/// What the cookie of a request amounts to.
#[derive(Debug)]
pub enum SessionCheck {
    /// A live session.
    Live(Viewer),
    /// A session that has expired.
    Expired,
    /// No cookie, or an unknown token.
    None,
}

/// Looks the session of `token` up.
pub async fn check_session(store: &Store, token: Option<&str>) -> Result<SessionCheck, ()> {
    let Some(token) = token else {
        return Ok(SessionCheck::None);
    };
    let hash = token_hash(token);
    let found = store.get_console_session(&hash).await.map_err(|_| ())?;
    Ok(match found {
        None => SessionCheck::None,
        Some(s) if s.expires_at <= now_ms() => SessionCheck::Expired,
        Some(ConsoleSession { user, csrf, .. }) => match viewer_of(user, csrf, hash) {
            Some(v) => SessionCheck::Live(v),
            None => SessionCheck::None,
        },
    })
}

fn viewer_of(user: ConsoleUser, csrf: String, token_sha256: String) -> Option<Viewer> {
    Some(Viewer {
        role: Role::parse(&user.role)?,
        username: user.username,
        operator_id: user.operator_id,
        csrf,
        token_sha256,
    })
}

/// Whether the form's CSRF token is the session's (constant time).
pub fn csrf_ok(viewer: &Viewer, given: Option<&str>) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(viewer.csrf.as_bytes())))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
    }

    #[test]
    fn rejects_malformed_hashes_and_cookies() {
        assert!(!verify_password("x", "not a phc string"));
        assert_eq!(cookie_value("a=1; smdpp_console=abc", COOKIE), Some("abc"));
        assert_eq!(cookie_value("smdpp_consolex=abc", COOKIE), None);
        assert_eq!(cookie_value("", COOKIE), None);
    }

    #[test]
    fn rejects_missing_or_wrong_csrf() {
        let v = Viewer {
            username: "u".into(),
            role: Role::Operator,
            operator_id: Some("A".into()),
            csrf: "0123".into(),
            token_sha256: String::new(),
        };
        assert!(csrf_ok(&v, Some("0123")));
        assert!(!csrf_ok(&v, Some("0124")));
        assert!(!csrf_ok(&v, Some("")));
        assert!(!csrf_ok(&v, None));
        assert!(v.may_see(Some("A")));
        assert!(!v.may_see(Some("B")));
        assert!(!v.may_see(None));
    }
}
