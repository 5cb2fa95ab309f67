//! [`Token`]: a logged-in PKCS#11 token with a pool of sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::error::{HsmError, rv};

/// Environment variable holding the user PIN when no PIN file is given.
pub const PIN_ENV: &str = "SMDPP_PKCS11_PIN";

/// Where the token is and how to log in to it.
#[derive(Clone)]
pub struct TokenConfig {
    /// Path of the PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// Label of the token (`CK_TOKEN_INFO.label`).
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// Sessions in the pool (0: the number of CPUs, at least 2).
    pub pool_size: usize,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl TokenConfig {
    /// The PIN from `pin_file` (its first line; surrounding whitespace dropped) or, without a
    /// file, from the environment variable [`PIN_ENV`]. A PIN is never taken as a flag value,
    /// where other users of the machine could read it.
    pub fn read_pin(pin_file: Option<&Path>) -> Result<Zeroizing<String>, HsmError> {
        let text =
            match pin_file {
                Some(p) => Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    HsmError::Pin(format!("cannot read the PIN file {}: {e}", p.display()))
                })?),
                None => Zeroizing::new(std::env::var(PIN_ENV).map_err(|_| {
                    HsmError::Pin(format!("no PIN: give a PIN file or set {PIN_ENV}"))
                })?),
            };
        let pin = Zeroizing::new(text.lines().next().unwrap_or("").trim().to_owned());
        if pin.is_empty() {
            return Err(HsmError::Pin("the PIN is empty".to_owned()));
        }
        Ok(pin)
    }
}

/// One initialised context per module path: `C_Initialize` may be called once per process.
fn context(module: &Path) -> Result<Pkcs11, HsmError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(module) {
        return Ok(c.clone());
    }
    let fail = |reason: String| HsmError::Module {
        module: module.display().to_string(),
        reason,
    };
    let ctx = Pkcs11::new(module).map_err(|e| fail(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(e) if rv(&e) == Some(RvError::CryptokiAlreadyInitialized) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A logged-in token and its session pool. Share it as `Arc<Token>`; every key on it holds
/// one.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    module: PathBuf,
    pool: Mutex<Vec<Session>>,
    returned: Condvar,
    pool_capacity: usize,
    signatures: AtomicU64,
    derivations: AtomicU64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.module)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A session checked out of the pool; goes back on drop.
pub(crate) struct PooledSession<'a> {
    token: &'a Token,
    session: Option<Session>,
}

impl std::ops::Deref for PooledSession<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        // Always Some until drop.
        self.session.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.token
                .pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s);
            self.token.returned.notify_one();
        }
    }
}

impl Token {
    /// Loads the module (once per process), finds the token by label, opens the pool of
    /// read-write sessions and logs the user in.
    ///
    /// A wrong PIN is [`HsmError::WrongPin`], a missing token [`HsmError::NoToken`].
    pub fn open(config: &TokenConfig) -> Result<Arc<Token>, HsmError> {
        let ctx = context(&config.module)?;
        let module = config.module.display().to_string();
        let slots = ctx
            .get_slots_with_initialized_token()
            .map_err(HsmError::call("C_GetSlotList"))?;
        let mut found = None;
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(HsmError::call("C_GetTokenInfo"))?;
            if info.label().trim_end() == config.token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| HsmError::NoToken {
            label: config.token_label.clone(),
            module: module.clone(),
        })?;
        let size = if config.pool_size == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2)
        } else {
            config.pool_size
        };
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            sessions.push(
                ctx.open_rw_session(slot)
                    .map_err(HsmError::call("C_OpenSession"))?,
            );
        }
        // Login is per application and token: one login covers every session of the pool.
        let pin = AuthPin::from(config.pin.as_str());
        if let Some(first) = sessions.first() {
            match first.login(UserType::User, Some(&pin)) {
                Ok(()) => {}
                Err(e) if rv(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
                Err(e) if rv(&e) == Some(RvError::PinIncorrect) => {
                    return Err(HsmError::WrongPin {
                        token: config.token_label.clone(),
                    });
                }
                Err(e) if rv(&e) == Some(RvError::PinLocked) => {
                    return Err(HsmError::PinLocked {
                        token: config.token_label.clone(),
                    });
                }
                Err(e) => return Err(HsmError::call("C_Login")(e)),
            }
        }
        Ok(Arc::new(Token {
            ctx,
            slot,
            label: config.token_label.clone(),
            module: config.module.clone(),
            pool: Mutex::new(sessions),
            returned: Condvar::new(),
            pool_capacity: size,
            signatures: AtomicU64::new(0),
            derivations: AtomicU64::new(0),
        }))
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The slot the token is in.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// The module context (for management calls).
    pub fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// Signatures (`C_Sign`) the token has made for this process through this handle.
    /// Tests use it to prove that a key really is on the token, not a software fallback.
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// Key agreements (`C_DeriveKey` with `CKM_ECDH1_DERIVE`) made through this handle.
    pub fn derivations(&self) -> u64 {
        self.derivations.load(Ordering::Relaxed)
    }

    /// The number of sessions in the pool (at most this many operations run at once).
    pub fn pool_size(&self) -> usize {
        self.pool_capacity
    }

    pub(crate) fn count_signature(&self) {
        self.signatures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_derivation(&self) {
        self.derivations.fetch_add(1, Ordering::Relaxed);
    }

    /// Checks a session out of the pool, waiting while all are in use.
    pub(crate) fn session(&self) -> PooledSession<'_> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = pool.pop() {
                return PooledSession {
                    token: self,
                    session: Some(s),
                };
            }
            pool = self.returned.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The one object of `class` labelled `label`.
    pub(crate) fn find_one(
        &self,
        class: ObjectClass,
        kind: &'static str,
        label: &str,
    ) -> Result<ObjectHandle, HsmError> {
        let found = self.find(class, label)?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(HsmError::MissingObject {
                kind,
                label: label.to_owned(),
                token: self.label.clone(),
            }),
            many => Err(HsmError::Ambiguous {
                kind,
                label: label.to_owned(),
                count: many.len(),
                token: self.label.clone(),
            }),
        }
    }

    /// Every object of `class` labelled `label`.
    pub(crate) fn find(
        &self,
        class: ObjectClass,
        label: &str,
    ) -> Result<Vec<ObjectHandle>, HsmError> {
        self.session()
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(HsmError::call("C_FindObjects"))
    }

    /// The attributes `types` of `object`.
    pub(crate) fn attributes(
        &self,
        object: ObjectHandle,
        types: &[AttributeType],
    ) -> Result<Vec<Attribute>, HsmError> {
        self.session()
            .get_attributes(object, types)
            .map_err(HsmError::call("C_GetAttributeValue"))
    }
}
