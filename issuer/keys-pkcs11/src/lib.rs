//! The issuer's keys in a PKCS#11 token (OASIS PKCS#11 v2.40/3.0): an
//! HSM in production, SoftHSM2 in tests (docs/pkcs11-notes.md).
//!
//! [`Pkcs11KeyProvider`] implements [`KeyProvider`] with every long-term
//! key generated inside the token (`CKA_TOKEN`, `CKA_SENSITIVE`, not
//! `CKA_EXTRACTABLE`), under labels that start with a configurable prefix
//! (default `pooya`):
//!
//! | label | object | mechanisms |
//! |---|---|---|
//! | `<prefix>-master-v<N>` | AES-256 secret key | `CKM_AES_GCM` (seal/open), `CKM_AES_KEY_WRAP_PAD` (card keys) |
//! | `<prefix>-hash-<domain>` | 32-byte generic secret | `CKM_SHA256_HMAC` |
//! | `<prefix>-signing-<n>` | Ed25519 key pair | `CKM_EDDSA` |
//! | `<prefix>-activation-<n>` | P-256 key pair | `CKM_ECDH1_DERIVE` (`CKD_NULL`) |
//!
//! Sealed values use the file provider's envelope
//! ([`pooya_issuer_service::keys::Envelope`]): `0x02 || version u32 BE ||
//! nonce 12 || ciphertext || tag 16`, AES-256-GCM in the token with the
//! associated data of [`seal_aad`]. A card's keys are wrapped in the token
//! with `CKM_AES_KEY_WRAP_PAD` (RFC 5649) and the wrapped bytes sealed in
//! such an envelope bound to the card id, so a blob moved onto another card
//! does not open, and names its master key version.

mod pool;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use pooya_issuer_service::keys::{
    CardKey, Envelope, HashDomain, KeyProvider, MacRequest, ProviderKind, seal_aad,
};
use pooya_issuer_service::{HsmError, IssuerError};
use pooya_protocol::activation::{ACTIVATION_KEY_LEN, encapsulated_key};
use pooya_protocol::{CardSeed, HashAlgorithm};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use pool::{PooledSession, SessionPool};

/// The default label prefix of the issuer's objects in the token.
pub const DEFAULT_LABEL_PREFIX: &str = "pooya";
/// Sessions in the pool unless configured otherwise: enough for the
/// verification path's concurrent requests on a few worker threads.
pub const DEFAULT_SESSIONS: usize = 8;
/// What a signing or activation key reference starts with.
pub const REFERENCE_PREFIX: &[u8] = b"pkcs11:";

/// Purpose (for [`seal_aad`]) of a card's wrapped keys; the context is the
/// card id.
const PURPOSE_CARD_KEYS: &str = "card-keys";
const NONCE_LEN: usize = 12;
const GCM_TAG_BITS: u64 = 128;
/// DER of the P-256 curve's OID 1.2.840.10045.3.1.7 (`CKA_EC_PARAMS`).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of Ed25519's OID 1.3.101.112 (RFC 8410 §3; PKCS#11 3.0 §2.3.10).
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// Length of a card key as imported into the token: the 32-byte PIN key
/// followed by 32 zero bytes. HMAC (RFC 2104 §2) pads a key shorter than
/// the hash's block (64 bytes for SHA-1 and SHA-256, 128 for SHA-512) with
/// zeros, so this key gives the same MACs as the 32-byte key for all three;
/// it is needed because SoftHSM2 refuses `CKM_SHA512_HMAC` with a key
/// shorter than SHA-512's output (`CKR_KEY_SIZE_RANGE`).
const CARD_KEY_LEN: usize = 64;

/// Where the token is and how to log in. `Debug` hides the PIN.
pub struct Pkcs11Config {
    /// The PKCS#11 module (a shared library, e.g.
    /// `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label (`CK_TOKEN_INFO.label`, blanks trimmed).
    pub token_label: String,
    /// The user PIN, read by the caller from a file or the environment.
    pub pin: Zeroizing<String>,
    /// What every object label starts with.
    pub label_prefix: String,
    /// How many logged-in sessions the pool holds (at least 1).
    pub sessions: usize,
}

impl Pkcs11Config {
    /// A configuration with the default label prefix and pool size.
    pub fn new(module: impl Into<PathBuf>, token_label: &str, pin: Zeroizing<String>) -> Self {
        Self {
            module: module.into(),
            token_label: token_label.to_owned(),
            pin,
            label_prefix: DEFAULT_LABEL_PREFIX.to_owned(),
            sessions: DEFAULT_SESSIONS,
        }
    }
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("label_prefix", &self.label_prefix)
            .field("sessions", &self.sessions)
            .finish()
    }
}

/// The `CKR_…` name of a PKCS#11 return value (PKCS#11 v2.40 §3.6), from
/// cryptoki's variant name (`PinIncorrect` → `CKR_PIN_INCORRECT`).
fn ckr_name(rv: &RvError) -> String {
    if let RvError::UnknownErrorCode(code) = rv {
        return format!("CKR_0x{code:08X}");
    }
    let debug = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Maps a cryptoki error of `operation` to the issuer's error.
fn hsm(operation: &'static str) -> impl Fn(CkError) -> IssuerError {
    move |e| {
        let err = match &e {
            CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _) => {
                HsmError::PinIncorrect
            }
            CkError::Pkcs11(RvError::MechanismInvalid, _) => {
                HsmError::MechanismUnsupported(operation)
            }
            CkError::Pkcs11(
                rv @ (RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::DeviceError
                | RvError::CryptokiNotInitialized),
                _,
            ) => HsmError::Unavailable(format!("{operation}: {}", ckr_name(rv))),
            CkError::Pkcs11(rv, _) => HsmError::Failed {
                operation,
                ckr: ckr_name(rv),
            },
            other => HsmError::Failed {
                operation,
                ckr: other.to_string(),
            },
        };
        IssuerError::Hsm(err)
    }
}

/// One context per module path for the whole process: `C_Initialize` may
/// run once per process (PKCS#11 v2.40 §5.4), and two providers on the
/// same module (two tokens, or tests) share it.
fn context(module: &Path) -> Result<Pkcs11, IssuerError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let contexts = CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = contexts
        .lock()
        .map_err(|_| HsmError::Unavailable("the module table's lock is poisoned".into()))?;
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        HsmError::Unavailable(format!(
            "cannot load the PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            let name = match &e {
                CkError::Pkcs11(rv, _) => ckr_name(rv),
                other => other.to_string(),
            };
            return Err(HsmError::Unavailable(format!("C_Initialize failed: {name}")).into());
        }
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, IssuerError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| HsmError::Unavailable(format!("C_GetSlotList failed: {e}")))?;
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(hsm("reading a token's information"))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(HsmError::TokenNotFound(label.to_owned()).into())
}

/// Opens the pool's sessions and logs in.
fn open_pool(config: &Pkcs11Config) -> Result<SessionPool, IssuerError> {
    let ctx = context(&config.module)?;
    let slot = find_slot(&ctx, &config.token_label)?;
    let mut sessions = Vec::with_capacity(config.sessions.max(1));
    for _ in 0..config.sessions.max(1) {
        sessions.push(
            ctx.open_rw_session(slot)
                .map_err(hsm("opening a session"))?,
        );
    }
    let first = sessions
        .first()
        .ok_or_else(|| HsmError::Unavailable("no session".into()))?;
    let pin = AuthPin::new(config.pin.as_str().into());
    match first.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(hsm("logging in")(e)),
    }
    Ok(SessionPool::new(sessions))
}

fn label_attr(label: &str) -> Attribute {
    Attribute::Label(label.as_bytes().to_vec())
}

/// The one object of `class` labelled `label`, or `None`.
fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, IssuerError> {
    let found = session
        .find_objects(&[Attribute::Class(class), label_attr(label)])
        .map_err(hsm("finding a key"))?;
    Ok(found.first().copied())
}

fn require(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<ObjectHandle, IssuerError> {
    find_one(session, class, label)?.ok_or_else(|| HsmError::KeyMissing(label.to_owned()).into())
}

/// A session object destroyed when dropped, also on an early return.
struct SessionObject<'a> {
    session: &'a Session,
    handle: ObjectHandle,
}

impl Drop for SessionObject<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.session.destroy_object(self.handle) {
            tracing::warn!(error = %e, "destroying a session object failed");
        }
    }
}

/// A template whose `CKA_VALUE` is wiped when dropped.
struct SecretTemplate(Vec<Attribute>);

impl Drop for SecretTemplate {
    fn drop(&mut self) {
        for attr in &mut self.0 {
            if let Attribute::Value(v) = attr {
                v.zeroize();
            }
        }
    }
}

/// The bytes of a `CKA_EC_POINT`: the point as a DER OCTET STRING
/// (PKCS#11 v2.40 §2.3.3), or raw as some tokens give it.
fn ec_point<const N: usize>(value: &[u8]) -> Result<[u8; N], IssuerError> {
    let raw = match value {
        [0x04, len, rest @ ..] if usize::from(*len) == N && rest.len() == N => rest,
        _ => value,
    };
    raw.try_into()
        .map_err(|_| IssuerError::Crypto("the token's public key has an unexpected length"))
}

fn mac_mechanism(a: HashAlgorithm) -> Mechanism<'static> {
    match a {
        HashAlgorithm::Sha1 => Mechanism::Sha1Hmac,
        HashAlgorithm::Sha256 => Mechanism::Sha256Hmac,
        HashAlgorithm::Sha512 => Mechanism::Sha512Hmac,
    }
}

/// The issuer's keys in a PKCS#11 token.
pub struct Pkcs11KeyProvider {
    pool: SessionPool,
    prefix: String,
    masters: RwLock<BTreeMap<u32, ObjectHandle>>,
    current: AtomicU32,
    hash_keys: [ObjectHandle; 4],
    rng: SystemRandom,
}

impl fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11KeyProvider")
            .field("prefix", &self.prefix)
            .field("current", &self.current_version())
            .finish_non_exhaustive()
    }
}

fn master_label(prefix: &str, version: u32) -> String {
    format!("{prefix}-master-v{version}")
}

fn hash_label(prefix: &str, domain: HashDomain) -> String {
    format!("{prefix}-hash-{}", domain.name())
}

/// Template of a long-term AES-256 master key (PKCS#11 v2.40 §2.8).
fn master_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Sign(false),
        Attribute::Derive(false),
        label_attr(label),
    ]
}

impl Pkcs11KeyProvider {
    /// For `init --keys pkcs11`: logs in and generates, inside the token,
    /// master key version 1 and one HMAC key per [`HashDomain`]. The
    /// signing and activation keys are made by
    /// [`KeyProvider::create_signing_key`] and
    /// [`KeyProvider::create_activation_key`].
    ///
    /// # Errors
    /// As [`open`](Self::open); [`IssuerError::AlreadyInitialized`] when
    /// the token already holds keys under the label prefix.
    pub fn create(config: &Pkcs11Config) -> Result<Self, IssuerError> {
        let pool = open_pool(config)?;
        let prefix = &config.label_prefix;
        {
            let session = pool.get()?;
            let mut labels = vec![master_label(prefix, 1)];
            labels.extend(HashDomain::ALL.iter().map(|d| hash_label(prefix, *d)));
            for label in &labels {
                if !session
                    .find_objects(&[label_attr(label)])
                    .map_err(hsm("finding a key"))?
                    .is_empty()
                {
                    return Err(IssuerError::AlreadyInitialized);
                }
            }
            session
                .generate_key(&Mechanism::AesKeyGen, &master_template(&labels[0]))
                .map_err(hsm("generating the master key"))?;
            for domain in HashDomain::ALL {
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Verify(false),
                    Attribute::Encrypt(false),
                    Attribute::Decrypt(false),
                    Attribute::Derive(false),
                    label_attr(&hash_label(prefix, domain)),
                ];
                session
                    .generate_key(&Mechanism::GenericSecretKeyGen, &template)
                    .map_err(hsm("generating a lookup-hash key"))?;
            }
        }
        Self::from_pool(pool, prefix)
    }

    /// For `serve`: logs in and finds the keys [`create`](Self::create)
    /// made; seals under the highest master key version until told
    /// otherwise.
    ///
    /// # Errors
    /// [`HsmError::Unavailable`] when the module cannot be loaded or
    /// initialised, [`HsmError::TokenNotFound`], [`HsmError::PinIncorrect`],
    /// [`HsmError::KeyMissing`] naming the first missing label,
    /// [`HsmError::Failed`].
    pub fn open(config: &Pkcs11Config) -> Result<Self, IssuerError> {
        let pool = open_pool(config)?;
        Self::from_pool(pool, &config.label_prefix)
    }

    fn from_pool(pool: SessionPool, prefix: &str) -> Result<Self, IssuerError> {
        let (masters, hash_keys) = {
            let session = pool.get()?;
            let masters = Self::find_masters(&session, prefix)?;
            if masters.is_empty() {
                return Err(HsmError::KeyMissing(master_label(prefix, 1)).into());
            }
            let mut hash_keys = Vec::with_capacity(4);
            for domain in HashDomain::ALL {
                hash_keys.push(require(
                    &session,
                    ObjectClass::SECRET_KEY,
                    &hash_label(prefix, domain),
                )?);
            }
            let hash_keys: [ObjectHandle; 4] = hash_keys
                .try_into()
                .map_err(|_| IssuerError::Crypto("hash key table"))?;
            (masters, hash_keys)
        };
        let current = masters.keys().next_back().copied().unwrap_or(1);
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
            masters: RwLock::new(masters),
            current: AtomicU32::new(current),
            hash_keys,
            rng: SystemRandom::new(),
        })
    }

    /// Every `<prefix>-master-v<N>` AES key in the token.
    fn find_masters(
        session: &Session,
        prefix: &str,
    ) -> Result<BTreeMap<u32, ObjectHandle>, IssuerError> {
        let handles = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
            ])
            .map_err(hsm("finding the master keys"))?;
        let stem = format!("{prefix}-master-v");
        let mut out = BTreeMap::new();
        for handle in handles {
            let attrs = session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(hsm("reading a key's label"))?;
            for attr in attrs {
                if let Attribute::Label(label) = attr
                    && let Some(v) = std::str::from_utf8(&label)
                        .ok()
                        .and_then(|l| l.strip_prefix(stem.as_str()))
                        .and_then(|n| n.parse::<u32>().ok())
                        .filter(|v| *v >= 1)
                {
                    out.insert(v, handle);
                }
            }
        }
        Ok(out)
    }

    /// How many objects this application sees in the token, token and
    /// session objects alike: a diagnostic (a count that grows between
    /// verifications means session keys are left behind).
    ///
    /// # Errors
    /// [`HsmError::Failed`].
    pub fn object_count(&self) -> Result<usize, IssuerError> {
        let session = self.session()?;
        Ok(session
            .find_objects(&[])
            .map_err(hsm("counting objects"))?
            .len())
    }

    fn session(&self) -> Result<PooledSession<'_>, IssuerError> {
        self.pool.get()
    }

    /// The handle of a master key version; one made after this provider
    /// was opened (by `rotate-keys` in another process, on the same token)
    /// is looked up by its label and remembered.
    fn master(&self, version: u32) -> Result<ObjectHandle, IssuerError> {
        if let Some(h) = self
            .masters
            .read()
            .map_err(|_| IssuerError::Crypto("key table"))?
            .get(&version)
            .copied()
        {
            return Ok(h);
        }
        let label = master_label(&self.prefix, version);
        let handle = {
            let session = self.session()?;
            require(&session, ObjectClass::SECRET_KEY, &label)?
        };
        self.masters
            .write()
            .map_err(|_| IssuerError::Crypto("key table"))?
            .insert(version, handle);
        Ok(handle)
    }

    fn nonce(&self) -> Result<[u8; NONCE_LEN], IssuerError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| IssuerError::Crypto("random"))?;
        Ok(nonce)
    }

    /// AES-256-GCM (SP 800-38D) in the token under `version`, in an
    /// [`Envelope`].
    fn seal_under(
        &self,
        session: &Session,
        version: u32,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IssuerError> {
        let key = self.master(version)?;
        let nonce = self.nonce()?;
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())
            .map_err(|_| IssuerError::Crypto("GCM parameters"))?;
        let body = session
            .encrypt(&Mechanism::AesGcm(params), key, plaintext)
            .map_err(hsm("sealing (C_Encrypt, CKM_AES_GCM)"))?;
        let mut out = Envelope::header(version, &nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open_with(
        &self,
        session: &Session,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IssuerError> {
        let env = Envelope::parse(sealed)?;
        let key = self.master(env.version)?;
        let mut iv = env.nonce;
        let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())
            .map_err(|_| IssuerError::Crypto("GCM parameters"))?;
        match session.decrypt(&Mechanism::AesGcm(params), key, env.body) {
            Ok(plain) => Ok(Zeroizing::new(plain)),
            // The tag did not verify: another key, record or a tampered
            // value (PKCS#11 v2.40 §5.9 C_Decrypt: CKR_ENCRYPTED_DATA_INVALID).
            // SoftHSM2 2.6.1 answers a wrong GCM tag with CKR_GENERAL_ERROR
            // (its OpenSSL decrypt-final fails), so that counts as a value
            // that does not open too; a token that is really broken fails
            // the next operation that has no tag to check.
            Err(CkError::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::GeneralError,
                _,
            )) => Err(IssuerError::Crypto("open")),
            Err(e) => Err(hsm("opening (C_Decrypt, CKM_AES_GCM)")(e)),
        }
    }

    /// Imports `value` as a session HMAC key that may be wrapped.
    fn import_card_key<'s>(
        session: &'s Session,
        key: &[u8; 32],
    ) -> Result<SessionObject<'s>, IssuerError> {
        let mut value = vec![0u8; CARD_KEY_LEN];
        value[..32].copy_from_slice(key);
        let template = SecretTemplate(vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Sign(true),
            Attribute::Value(value),
        ]);
        let handle = session
            .create_object(&template.0)
            .map_err(hsm("importing a card key"))?;
        Ok(SessionObject { session, handle })
    }

    /// Unwraps one card key into a session object (`CKA_TOKEN` false);
    /// `extractable` only to wrap it again.
    fn unwrap_card_key<'s>(
        session: &'s Session,
        master: ObjectHandle,
        wrapped: &[u8],
        extractable: bool,
    ) -> Result<SessionObject<'s>, IssuerError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(extractable),
            Attribute::Sign(true),
        ];
        let handle = session
            .unwrap_key(&Mechanism::AesKeyWrapPad, master, wrapped, &template)
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::WrappedKeyInvalid | RvError::WrappedKeyLenRange, _) => {
                    IssuerError::Crypto("card keys do not unwrap")
                }
                other => hsm("unwrapping a card key (C_UnwrapKey)")(other),
            })?;
        Ok(SessionObject { session, handle })
    }

    /// Wraps three session keys under the current version and seals the
    /// result to `card_id`.
    fn wrap_card_keys(
        &self,
        session: &Session,
        card_id: &str,
        keys: &[SessionObject<'_>],
    ) -> Result<Vec<u8>, IssuerError> {
        let version = self.current_version();
        let master = self.master(version)?;
        let mut payload = Vec::with_capacity(keys.len() * 42);
        for key in keys {
            let wrapped = session
                .wrap_key(&Mechanism::AesKeyWrapPad, master, key.handle)
                .map_err(hsm("wrapping a card key (C_WrapKey, CKM_AES_KEY_WRAP_PAD)"))?;
            let len = u16::try_from(wrapped.len())
                .map_err(|_| IssuerError::Crypto("wrapped key length"))?;
            payload.extend_from_slice(&len.to_be_bytes());
            payload.extend_from_slice(&wrapped);
        }
        self.seal_under(
            session,
            version,
            &seal_aad(PURPOSE_CARD_KEYS, card_id.as_bytes()),
            &payload,
        )
    }

    /// Opens a card's blob (checking it belongs to `card_id`) and unwraps
    /// its keys into the token, in [`CardKey::ALL`]'s order: four, or the
    /// three PIN keys of a blob wrapped before the device key existed.
    fn unwrap_card_keys<'s>(
        &self,
        session: &'s Session,
        card_id: &str,
        sealed: &[u8],
        extractable: bool,
    ) -> Result<Vec<SessionObject<'s>>, IssuerError> {
        // Every key the blob holds: four, or three for a blob wrapped
        // before the device key existed (rewrapped as it is).
        let keys = self.unwrap_some_card_keys(session, card_id, sealed, extractable, &[true; 4])?;
        Ok(keys.into_iter().flatten().collect())
    }

    /// As [`Self::unwrap_card_keys`], unwrapping only the keys `needed`
    /// names (by index in [`CardKey::ALL`] order): a first-PIN verification
    /// needs one key, not four. The others are `None`, and so is a key the
    /// blob does not hold (the device key of a blob wrapped before it
    /// existed).
    fn unwrap_some_card_keys<'s>(
        &self,
        session: &'s Session,
        card_id: &str,
        sealed: &[u8],
        extractable: bool,
        needed: &[bool; 4],
    ) -> Result<Vec<Option<SessionObject<'s>>>, IssuerError> {
        let env = Envelope::parse(sealed)?;
        let master = self.master(env.version)?;
        let payload = self.open_with(
            session,
            &seal_aad(PURPOSE_CARD_KEYS, card_id.as_bytes()),
            sealed,
        )?;
        let mut rest: &[u8] = &payload;
        let mut out = Vec::with_capacity(CardKey::ALL.len());
        while !rest.is_empty() {
            let [a, b, tail @ ..] = rest else {
                return Err(IssuerError::Crypto("card keys are malformed"));
            };
            let len = usize::from(u16::from_be_bytes([*a, *b]));
            if tail.len() < len || out.len() == CardKey::ALL.len() {
                return Err(IssuerError::Crypto("card keys are malformed"));
            }
            let (wrapped, tail) = tail.split_at(len);
            out.push(if needed[out.len()] {
                Some(Self::unwrap_card_key(
                    session,
                    master,
                    wrapped,
                    extractable,
                )?)
            } else {
                None
            });
            rest = tail;
        }
        if out.len() < CardKey::ALL.len() - 1 {
            return Err(IssuerError::Crypto("card keys are malformed"));
        }
        // A blob without the device key: its slot is empty.
        out.resize_with(CardKey::ALL.len(), || None);
        Ok(out)
    }

    /// The next free `<prefix>-<kind>-<n>` label of a key pair.
    fn free_pair_label(&self, session: &Session, kind: &str) -> Result<String, IssuerError> {
        for n in 1u32.. {
            let label = format!("{}-{kind}-{n}", self.prefix);
            if session
                .find_objects(&[label_attr(&label)])
                .map_err(hsm("finding a key"))?
                .is_empty()
            {
                return Ok(label);
            }
        }
        Err(IssuerError::Crypto("no free key label"))
    }

    /// The label a reference names (`pkcs11:<label>`), if it is one of
    /// this provider's `kind` keys.
    fn reference_label<'r>(&self, reference: &'r [u8], kind: &str) -> Result<&'r str, IssuerError> {
        let label = reference
            .strip_prefix(REFERENCE_PREFIX)
            .and_then(|l| std::str::from_utf8(l).ok())
            .ok_or(IssuerError::Crypto("not a PKCS#11 key reference"))?;
        if !label.starts_with(&format!("{}-{kind}-", self.prefix)) {
            return Err(IssuerError::Crypto("not a PKCS#11 key reference"));
        }
        Ok(label)
    }

    fn public_point<const N: usize>(
        session: &Session,
        label: &str,
    ) -> Result<[u8; N], IssuerError> {
        let public = require(session, ObjectClass::PUBLIC_KEY, label)?;
        let attrs = session
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(hsm("reading a public key"))?;
        for attr in attrs {
            if let Attribute::EcPoint(point) = attr {
                return ec_point::<N>(&point);
            }
        }
        Err(HsmError::Failed {
            operation: "reading a public key",
            ckr: "no CKA_EC_POINT".into(),
        }
        .into())
    }

    fn reference(label: &str) -> Vec<u8> {
        let mut r = REFERENCE_PREFIX.to_vec();
        r.extend_from_slice(label.as_bytes());
        r
    }
}

impl KeyProvider for Pkcs11KeyProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Pkcs11
    }

    fn seal(
        &self,
        purpose: &str,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IssuerError> {
        let session = self.session()?;
        self.seal_under(
            &session,
            self.current_version(),
            &seal_aad(purpose, context),
            plaintext,
        )
    }

    fn open(
        &self,
        purpose: &str,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IssuerError> {
        let session = self.session()?;
        self.open_with(&session, &seal_aad(purpose, context), sealed)
    }

    fn keyed_hash(&self, domain: HashDomain, data: &[u8]) -> Result<[u8; 32], IssuerError> {
        let key = HashDomain::ALL
            .iter()
            .position(|d| *d == domain)
            .and_then(|i| self.hash_keys.get(i))
            .copied()
            .ok_or(IssuerError::Crypto("hash domain"))?;
        let session = self.session()?;
        let mac = session
            .sign(&Mechanism::Sha256Hmac, key, data)
            .map_err(hsm("keyed hash (C_Sign, CKM_SHA256_HMAC)"))?;
        mac.as_slice()
            .try_into()
            .map_err(|_| IssuerError::Crypto("hmac length"))
    }

    fn seal_card_keys(&self, card_id: &str, seed: &CardSeed) -> Result<Vec<u8>, IssuerError> {
        let keys = seed.derive_keys();
        let device = seed.device_key();
        let session = self.session()?;
        let objects = [
            Self::import_card_key(&session, keys.first.expose_secret())?,
            Self::import_card_key(&session, keys.second.expose_secret())?,
            Self::import_card_key(&session, keys.tx.expose_secret())?,
            Self::import_card_key(&session, device.expose_secret())?,
        ];
        drop(keys);
        drop(device);
        self.wrap_card_keys(&session, card_id, &objects)
    }

    fn card_macs(
        &self,
        card_id: &str,
        sealed: &[u8],
        requests: &[MacRequest<'_>],
    ) -> Result<Vec<Vec<u8>>, IssuerError> {
        let session = self.session()?;
        let index = |k: CardKey| match k {
            CardKey::First => 0,
            CardKey::Second => 1,
            CardKey::Transaction => 2,
            CardKey::Device => 3,
        };
        let mut needed = [false; 4];
        for r in requests {
            needed[index(r.key)] = true;
        }
        let keys = self.unwrap_some_card_keys(&session, card_id, sealed, false, &needed)?;
        requests
            .iter()
            .map(|r| {
                // A blob wrapped before the device key existed has three.
                let key = keys[index(r.key)].as_ref().ok_or_else(|| {
                    IssuerError::Hsm(HsmError::KeyMissing(format!("the card's {:?} key", r.key)))
                })?;
                session
                    .sign(&mac_mechanism(r.algorithm), key.handle, r.message)
                    .map_err(hsm("card MAC (C_Sign)"))
            })
            .collect()
    }

    fn create_signing_key(&self) -> Result<(Vec<u8>, [u8; 32]), IssuerError> {
        let session = self.session()?;
        let label = self.free_pair_label(&session, "signing")?;
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(ED25519_PARAMS.to_vec()),
            label_attr(&label),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label_attr(&label),
        ];
        session
            .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
            .map_err(hsm("generating the Ed25519 signing key"))?;
        let point = Self::public_point::<32>(&session, &label)?;
        Ok((Self::reference(&label), point))
    }

    fn signing_public_key(&self, reference: &[u8]) -> Result<[u8; 32], IssuerError> {
        let label = self.reference_label(reference, "signing")?;
        let session = self.session()?;
        Self::public_point::<32>(&session, label)
    }

    fn sign(&self, reference: &[u8], message: &[u8]) -> Result<[u8; 64], IssuerError> {
        let label = self.reference_label(reference, "signing")?;
        let session = self.session()?;
        let key = require(&session, ObjectClass::PRIVATE_KEY, label)?;
        let sig = session
            .sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519)),
                key,
                message,
            )
            .map_err(hsm("signing (C_Sign, CKM_EDDSA)"))?;
        sig.as_slice()
            .try_into()
            .map_err(|_| IssuerError::Crypto("signature length"))
    }

    fn create_activation_key(&self) -> Result<(Vec<u8>, [u8; ACTIVATION_KEY_LEN]), IssuerError> {
        let session = self.session()?;
        let label = self.free_pair_label(&session, "activation")?;
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            label_attr(&label),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Derive(true),
            Attribute::Sign(false),
            label_attr(&label),
        ];
        session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(hsm("generating the P-256 activation key"))?;
        let point = Self::public_point::<ACTIVATION_KEY_LEN>(&session, &label)?;
        Ok((Self::reference(&label), point))
    }

    fn activation_public_key(
        &self,
        reference: &[u8],
    ) -> Result<[u8; ACTIVATION_KEY_LEN], IssuerError> {
        let label = self.reference_label(reference, "activation")?;
        let session = self.session()?;
        Self::public_point::<ACTIVATION_KEY_LEN>(&session, label)
    }

    fn activation_agree(
        &self,
        reference: &[u8],
        peer: &[u8; ACTIVATION_KEY_LEN],
    ) -> Result<Zeroizing<[u8; 32]>, IssuerError> {
        let label = self.reference_label(reference, "activation")?;
        // Refuse what is not a point before the token sees it (RFC 9180
        // §7.1.1 DeserializePublicKey).
        encapsulated_key(peer).map_err(|_| IssuerError::Crypto("not a P-256 point"))?;
        let session = self.session()?;
        let key = require(&session, ObjectClass::PRIVATE_KEY, label)?;
        let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let handle = session
            .derive_key(&Mechanism::Ecdh1Derive(params), key, &template)
            .map_err(hsm(
                "activation key agreement (C_DeriveKey, CKM_ECDH1_DERIVE)",
            ))?;
        let derived = SessionObject {
            session: &session,
            handle,
        };
        let attrs = session
            .get_attributes(derived.handle, &[AttributeType::Value])
            .map_err(hsm("reading the shared secret"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        let mut found = false;
        for attr in attrs {
            if let Attribute::Value(mut v) = attr {
                if v.len() == 32 {
                    out.copy_from_slice(&v);
                    found = true;
                }
                v.zeroize();
            }
        }
        drop(derived);
        if !found {
            return Err(IssuerError::Crypto("shared secret length"));
        }
        Ok(out)
    }

    fn versions(&self) -> Result<Vec<u32>, IssuerError> {
        Ok(self
            .masters
            .read()
            .map_err(|_| IssuerError::Crypto("key table"))?
            .keys()
            .copied()
            .collect())
    }

    fn current_version(&self) -> u32 {
        self.current.load(Ordering::Acquire)
    }

    fn set_current_version(&self, version: u32) -> Result<(), IssuerError> {
        self.master(version)?;
        self.current.store(version, Ordering::Release);
        Ok(())
    }

    fn create_version(&self) -> Result<u32, IssuerError> {
        let session = self.session()?;
        let mut masters = self
            .masters
            .write()
            .map_err(|_| IssuerError::Crypto("key table"))?;
        // Another process on the same token may have made versions too.
        let in_token = Self::find_masters(&session, &self.prefix)?;
        let highest = masters
            .keys()
            .chain(in_token.keys())
            .copied()
            .max()
            .unwrap_or(0);
        let version = highest + 1;
        let handle = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &master_template(&master_label(&self.prefix, version)),
            )
            .map_err(hsm("generating a master key version"))?;
        masters.extend(in_token);
        masters.insert(version, handle);
        Ok(version)
    }

    fn retire_version(&self, version: u32) -> Result<(), IssuerError> {
        if version == self.current_version() {
            return Err(IssuerError::InvalidSettings(
                "the current master key version cannot be retired".into(),
            ));
        }
        let handle = self.master(version)?;
        let session = self.session()?;
        let mut masters = self
            .masters
            .write()
            .map_err(|_| IssuerError::Crypto("key table"))?;
        session
            .destroy_object(handle)
            .map_err(hsm("destroying a retired master key"))?;
        masters.remove(&version);
        Ok(())
    }

    fn sealed_version(&self, sealed: &[u8]) -> Option<u32> {
        if sealed.starts_with(REFERENCE_PREFIX) {
            return None;
        }
        Envelope::parse(sealed).ok().map(|e| e.version)
    }

    fn reseal(&self, purpose: &str, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let session = self.session()?;
        let aad = seal_aad(purpose, context);
        let plain = self.open_with(&session, &aad, sealed)?;
        self.seal_under(&session, self.current_version(), &aad, &plain)
    }

    fn reseal_card_keys(&self, card_id: &str, sealed: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let session = self.session()?;
        let keys = self.unwrap_card_keys(&session, card_id, sealed, true)?;
        self.wrap_card_keys(&session, card_id, &keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(&RvError::KeyHandleInvalid),
            "CKR_KEY_HANDLE_INVALID"
        );
        assert_eq!(
            ckr_name(&RvError::UnknownErrorCode(0x8000_0001)),
            "CKR_0x80000001"
        );
    }

    #[test]
    fn config_debug_hides_the_pin() {
        let c = Pkcs11Config::new("/m.so", "t", Zeroizing::new("1234-secret".into()));
        let text = format!("{c:?}");
        assert!(!text.contains("1234-secret"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn ec_points_der_or_raw() {
        let mut der = vec![0x04, 32];
        der.extend_from_slice(&[7u8; 32]);
        assert_eq!(ec_point::<32>(&der).unwrap(), [7u8; 32]);
        assert_eq!(ec_point::<32>(&[9u8; 32]).unwrap(), [9u8; 32]);
        assert_eq!(
            ec_point::<32>(&[1u8; 31]).unwrap_err().code(),
            IssuerError::Crypto("").code()
        );
    }
}
