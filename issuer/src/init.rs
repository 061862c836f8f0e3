//! `pooya-issuer init`: the database, the master key, the issuer's Ed25519
//! signing key and one API token per role.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{OptionalExtension, params};
use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

use pooya_protocol::activation::{ACTIVATION_KEY_LEN, ActivationSecretKey};

use crate::IssuerError;
use crate::auth::Role;
use crate::db::{DB_FILE, KEY_FILE, open_writer};
use crate::keys::{FileKeyProvider, HashDomain, KeyProvider};

pub(crate) const META_SIGNING_KEY: &str = "signing_key";
pub(crate) const META_PUBLIC_KEY: &str = "issuer_public_key";
pub(crate) const META_CANARY: &str = "key_canary";
pub(crate) const PURPOSE_SIGNING_KEY: &str = "signing-key";
pub(crate) const PURPOSE_CANARY: &str = "canary";
pub(crate) const CANARY: &[u8] = b"pooya-issuer master key check v1";
pub(crate) const META_ACTIVATION_KEY: &str = "activation_key";
pub(crate) const META_ACTIVATION_PUBLIC_KEY: &str = "activation_public_key";
pub(crate) const PURPOSE_ACTIVATION_KEY: &str = "activation-key";

/// The issuer's activation (HPKE, P-256) key pair, made once and kept
/// sealed under the master key in `meta` (docs/protocol.md, "Activation").
/// A database initialised before activation v2 gets its key here at its
/// first start, in one transaction with the log of it.
///
/// # Errors
/// [`IssuerError::Storage`], [`IssuerError::Crypto`].
pub(crate) fn ensure_activation_key(
    conn: &rusqlite::Connection,
    keys: &dyn KeyProvider,
) -> Result<(ActivationSecretKey, [u8; ACTIVATION_KEY_LEN]), IssuerError> {
    let sealed: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_ACTIVATION_KEY],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(sealed) = sealed {
        let scalar = keys.open(PURPOSE_ACTIVATION_KEY, b"", &sealed)?;
        let key = ActivationSecretKey::from_bytes(&scalar)
            .map_err(|_| IssuerError::Crypto("loading the activation key"))?;
        let public = key.public_key();
        let stored: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [META_ACTIVATION_PUBLIC_KEY],
                |r| r.get(0),
            )
            .optional()?;
        if stored.as_deref() != Some(&public[..]) {
            return Err(IssuerError::Crypto(
                "the activation key does not match its public key",
            ));
        }
        return Ok((key, public));
    }
    let mut ikm = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut ikm[..])
        .map_err(|_| IssuerError::Crypto("random"))?;
    let key = ActivationSecretKey::derive(&ikm);
    let public = key.public_key();
    let sealed = keys.seal(PURPOSE_ACTIVATION_KEY, b"", key.expose_secret())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let r = (|| -> Result<(), IssuerError> {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2), (?3, ?4)",
            params![
                META_ACTIVATION_KEY,
                sealed,
                META_ACTIVATION_PUBLIC_KEY,
                &public[..]
            ],
        )?;
        conn.execute(
            "INSERT INTO events (at, kind, detail) VALUES (?1, 'activation_key_created', '')",
            [now],
        )?;
        Ok(())
    })();
    match r {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    tracing::info!("activation key created");
    Ok((key, public))
}

/// Options of [`init`].
#[derive(Clone, Default)]
pub struct InitOptions {
    /// The key provider to seal with; `None` creates `master.key` (mode
    /// 0600) in the data directory.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
}

impl fmt::Debug for InitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitOptions")
            .field(
                "key_provider",
                &self.key_provider.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}

/// An API bearer token. Shown once by `init`; only its keyed hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(Zeroizing<String>);

impl ApiToken {
    /// A token given by its text (for example read from the environment,
    /// as `serve --demo-gateway` does).
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The token text, for an `Authorization: Bearer` header.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl Serialize for ApiToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// One token per role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleTokens {
    /// For ATMs: `POST /v1/enrollments`.
    pub atm: ApiToken,
    /// For payment gateways: `POST /v1/verify`.
    pub gateway: ApiToken,
    /// For the SMS centre (inbound messages).
    pub sms: ApiToken,
    /// For the operations team: outbox, metrics.
    pub ops: ApiToken,
}

impl RoleTokens {
    /// The token of `role`.
    pub fn get(&self, role: Role) -> &ApiToken {
        match role {
            Role::Atm => &self.atm,
            Role::Gateway => &self.gateway,
            Role::Sms => &self.sms,
            Role::Ops => &self.ops,
        }
    }
}

/// What [`init`] prints: `{"issuer_public_key": hex,
/// "activation_public_key": hex, "tokens": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutput {
    /// The issuer's Ed25519 public key, hex (32 bytes): phones pin it to
    /// check activation signatures.
    pub issuer_public_key: String,
    /// The issuer's activation (HPKE) public key, hex of the SEC1
    /// uncompressed P-256 point (65 bytes): phones pin it and seal their
    /// activation requests to it.
    pub activation_public_key: String,
    /// The API tokens.
    pub tokens: RoleTokens,
}

/// Creates an empty database file with mode 0600 before SQLite opens it,
/// so it is never readable by others, not even for a moment; SQLite gives
/// its WAL and index the same mode. An existing file is left as it is.
fn create_private(path: &Path) -> Result<(), IssuerError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|e| IssuerError::io("creating the database file", &e))
}

fn random_token(rng: &SystemRandom, role: Role) -> Result<ApiToken, IssuerError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rng.fill(&mut raw[..])
        .map_err(|_| IssuerError::Crypto("random"))?;
    Ok(ApiToken(Zeroizing::new(format!(
        "pya_{}_{}",
        role.as_str(),
        hex::encode(&raw[..])
    ))))
}

/// Creates an issuer in `data_dir` (made if missing, mode 0700): the
/// database with its schema, the master key file (unless
/// `options.key_provider` is given), a fresh Ed25519 signing key and P-256
/// activation key (both sealed in the database) and one API token per role (stored as keyed hashes).
///
/// # Errors
/// [`IssuerError::AlreadyInitialized`] when the directory already holds an
/// issuer; [`IssuerError::Io`], [`IssuerError::Storage`] or
/// [`IssuerError::Crypto`] otherwise.
pub fn init(data_dir: &Path, options: &InitOptions) -> Result<InitOutput, IssuerError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(data_dir)
        .map_err(|e| IssuerError::io("creating the data directory", &e))?;
    // The directory may have existed with looser modes (issue 10, item 8).
    crate::db::secure_data_dir(data_dir)?;
    let db_path = data_dir.join(DB_FILE);
    create_private(&db_path)?;
    if db_path.exists() {
        let conn = open_writer(&db_path)?;
        let has_key: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM meta WHERE key = ?1",
                [META_SIGNING_KEY],
                |r| r.get(0),
            )
            .optional()?;
        if has_key.is_some() {
            return Err(IssuerError::AlreadyInitialized);
        }
    }
    let keys: Arc<dyn KeyProvider> = match &options.key_provider {
        Some(k) => Arc::clone(k),
        None => Arc::new(FileKeyProvider::create(&data_dir.join(KEY_FILE))?),
    };
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| IssuerError::Crypto("generating the signing key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| IssuerError::Crypto("loading the signing key"))?;
    let public = pair.public_key().as_ref().to_vec();
    let sealed_key = keys.seal(PURPOSE_SIGNING_KEY, b"", pkcs8.as_ref())?;
    let canary = keys.seal(PURPOSE_CANARY, b"", CANARY)?;
    let tokens = RoleTokens {
        atm: random_token(&rng, Role::Atm)?,
        gateway: random_token(&rng, Role::Gateway)?,
        sms: random_token(&rng, Role::Sms)?,
        ops: random_token(&rng, Role::Ops)?,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut conn = open_writer(&db_path)?;
    let tx = conn.transaction()?;
    for (k, v) in [
        (META_SIGNING_KEY, &sealed_key),
        (META_PUBLIC_KEY, &public),
        (META_CANARY, &canary),
    ] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![k, v],
        )?;
    }
    for role in Role::ALL {
        let hash = keys.keyed_hash(
            HashDomain::ApiToken,
            tokens.get(role).expose_secret().as_bytes(),
        )?;
        tx.execute(
            "INSERT INTO api_tokens (token_hash, role, created_at) VALUES (?1, ?2, ?3)",
            params![&hash[..], role.as_str(), now],
        )?;
    }
    tx.execute(
        "INSERT INTO events (at, kind, detail) VALUES (?1, 'initialised', '')",
        [now],
    )?;
    tx.commit()?;
    let (_, activation_public) = ensure_activation_key(&conn, keys.as_ref())?;
    drop(conn);
    crate::db::secure_data_dir(data_dir)?;
    tracing::info!(dir = %data_dir.display(), "issuer initialised");
    Ok(InitOutput {
        issuer_public_key: hex::encode(public),
        activation_public_key: hex::encode(activation_public),
        tokens,
    })
}
