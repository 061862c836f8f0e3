//! The issuer's service: its keys, settings and store, and the set-up
//! every node shares (initialisation, the keys in `meta`). The operations
//! are in `enroll`, `activate`, `verify`, `one_time` and `merchants`.

use std::sync::Arc;
use std::time::Duration;

use pooya_protocol::activation::ACTIVATION_KEY_LEN;
use pooya_protocol::{CardSeed, Pan};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Serialize, Serializer};
use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::IssuerError;
use crate::clock::Clock;
use crate::keys::{HashDomain, KeyProvider};
use crate::metrics::Metrics;
use crate::outbox::{DeliveryHandle, DeliveryWorker, OutboxEntry, SmsSender, read_dev_log};
use crate::roles::{Role, Tokens};
use crate::settings::{Language, Settings};
use crate::store::Store;

/// `meta` keys and key-provider purposes of the issuer's own keys.
pub(crate) const META_SIGNING_KEY: &str = "signing_key";
pub(crate) const META_PUBLIC_KEY: &str = "issuer_public_key";
pub(crate) const META_CANARY: &str = "key_canary";
pub(crate) const META_ACTIVATION_KEY: &str = "activation_key";
pub(crate) const META_ACTIVATION_PUBLIC_KEY: &str = "activation_public_key";
pub(crate) const PURPOSE_CANARY: &str = "canary";
pub(crate) const CANARY: &[u8] = b"pooya-issuer master key check v1";
pub(crate) const PURPOSE_PAN: &str = "pan";
/// The card id the dummy seed is sealed to: verifications with nothing to
/// check against do the app's work with it (and with no one-time codes).
pub(crate) const DUMMY_CARD_ID: &str = "crd_dummy";

/// One API token, shown once at `init`. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(Zeroizing<String>);

impl ApiToken {
    /// A token from its text (as read from a file or the environment).
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The token's text, to send as `Authorization: Bearer …`.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    /// ATMs.
    pub atm: ApiToken,
    /// Payment gateways.
    pub gateway: ApiToken,
    /// The SMS centre.
    pub sms: ApiToken,
    /// The operations team.
    pub ops: ApiToken,
}

impl RoleTokens {
    /// The token of a role.
    pub fn get(&self, role: Role) -> &ApiToken {
        match role {
            Role::Atm => &self.atm,
            Role::Gateway => &self.gateway,
            Role::Sms => &self.sms,
            Role::Ops => &self.ops,
        }
    }
}

/// What `init` prints: the public keys to pin in phones and the tokens.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutput {
    /// The Ed25519 public key, hex; phones pin it.
    pub issuer_public_key: String,
    /// The P-256 activation (HPKE) public key, hex of the SEC1
    /// uncompressed point; phones seal activation requests to it.
    pub activation_public_key: String,
    /// One API token per role.
    pub tokens: RoleTokens,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

/// Whether the store holds an initialised issuer.
///
/// # Errors
/// [`IssuerError::Storage`].
pub async fn is_initialized(store: &dyn Store) -> Result<bool, IssuerError> {
    Ok(store.meta(META_SIGNING_KEY).await?.is_some())
}

/// Initialises an issuer in an empty store: a fresh Ed25519 signing key
/// and P-256 activation key (made by the key provider: sealed in the store,
/// or kept in a token), the master-key canary and one
/// API token per role (stored as keyed hashes).
///
/// # Errors
/// [`IssuerError::AlreadyInitialized`] when the store holds an issuer
/// already; [`IssuerError::Storage`] or [`IssuerError::Crypto`] otherwise.
pub async fn initialize(
    store: &dyn Store,
    keys: &dyn KeyProvider,
) -> Result<InitOutput, IssuerError> {
    if is_initialized(store).await? {
        return Err(IssuerError::AlreadyInitialized);
    }
    let rng = SystemRandom::new();
    let (signing_ref, public) = keys.create_signing_key()?;
    let public = public.to_vec();
    let canary = keys.seal(PURPOSE_CANARY, b"", CANARY)?;
    let tokens = RoleTokens {
        atm: random_token(&rng, Role::Atm)?,
        gateway: random_token(&rng, Role::Gateway)?,
        sms: random_token(&rng, Role::Sms)?,
        ops: random_token(&rng, Role::Ops)?,
    };
    let mut hashes = Vec::with_capacity(Role::ALL.len());
    for role in Role::ALL {
        let hash = keys.keyed_hash(
            HashDomain::ApiToken,
            tokens.get(role).expose_secret().as_bytes(),
        )?;
        hashes.push((hash, role));
    }
    store
        .initialize(
            vec![
                (META_SIGNING_KEY, signing_ref),
                (META_PUBLIC_KEY, public.clone()),
                (META_CANARY, canary),
            ],
            hashes,
            unix_now(),
        )
        .await?;
    let (_, activation_public) = ensure_activation_key(store, keys).await?;
    Ok(InitOutput {
        issuer_public_key: hex::encode(public),
        activation_public_key: hex::encode(activation_public),
        tokens,
    })
}

/// The issuer's activation (HPKE, P-256) key, made once by the key
/// provider and named in `meta` (sealed under the master key, or a token
/// label; docs/protocol.md, "Activation"). A database initialised before
/// activation v2 gets its key at its first start; nodes starting at once
/// agree on one key. Returns the key's reference and public key, checked
/// against the public key stored beside it.
///
/// # Errors
/// [`IssuerError::Storage`], [`IssuerError::Crypto`], [`IssuerError::Hsm`].
pub async fn ensure_activation_key(
    store: &dyn Store,
    keys: &dyn KeyProvider,
) -> Result<(Vec<u8>, [u8; ACTIVATION_KEY_LEN]), IssuerError> {
    let stored = match store.meta(META_ACTIVATION_KEY).await? {
        Some(reference) => vec![
            reference,
            store
                .meta(META_ACTIVATION_PUBLIC_KEY)
                .await?
                .unwrap_or_default(),
        ],
        None => {
            let (reference, public) = keys.create_activation_key()?;
            let stored = store
                .put_meta_once(
                    vec![
                        (META_ACTIVATION_KEY, reference),
                        (META_ACTIVATION_PUBLIC_KEY, public.to_vec()),
                    ],
                    "activation_key_created",
                    unix_now(),
                )
                .await?;
            tracing::info!("activation key ready");
            stored
        }
    };
    let [reference, public_stored] = <[Vec<u8>; 2]>::try_from(stored)
        .map_err(|_| IssuerError::Storage("the activation key entries are incomplete".into()))?;
    let public = keys.activation_public_key(&reference)?;
    if public_stored.as_slice() != &public[..] {
        return Err(IssuerError::Crypto(
            "the activation key does not match its public key",
        ));
    }
    Ok((reference, public))
}

/// A running issuer's shared state: one per node.
pub struct Issuer {
    pub(crate) settings: Settings,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    pub(crate) metrics: Arc<Metrics>,
    /// Woken after each commit that queued a message.
    pub(crate) outbox_wake: Arc<Notify>,
    /// The key provider's reference of the Ed25519 signing key.
    pub(crate) signing_key: Vec<u8>,
    issuer_public_key: Vec<u8>,
    /// The key provider's reference of the HPKE (P-256) key activation
    /// requests are sealed to.
    pub(crate) activation_key: Vec<u8>,
    pub(crate) activation_public_key: [u8; ACTIVATION_KEY_LEN],
    /// The keys of a random seed, sealed to [`DUMMY_CARD_ID`], made at
    /// start.
    pub(crate) dummy_card_keys: Vec<u8>,
    pub(crate) rng: SystemRandom,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("backend", &self.store.backend())
            .field("issuer_public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

/// How a node sends SMS.
pub enum Delivery {
    /// Through this gateway.
    Sender(Arc<dyn SmsSender>),
    /// The development recorder ([`crate::outbox::DevRecorder`]).
    DevRecorder,
}

impl Issuer {
    /// Opens an initialised store: checks the master key against the
    /// canary, loads the keys and tokens, and starts this node's delivery
    /// worker (on the current tokio runtime).
    ///
    /// # Errors
    /// [`IssuerError::NotInitialized`], [`IssuerError::WrongMasterKey`],
    /// [`IssuerError::InvalidSettings`], [`IssuerError::Storage`],
    /// [`IssuerError::Crypto`].
    pub async fn open(
        store: Arc<dyn Store>,
        keys: Arc<dyn KeyProvider>,
        settings: Settings,
        clock: Arc<dyn Clock>,
        delivery: Delivery,
    ) -> Result<(Arc<Issuer>, DeliveryHandle), IssuerError> {
        settings.validate()?;
        let canary = store
            .meta(META_CANARY)
            .await?
            .ok_or(IssuerError::NotInitialized)?;
        match keys.open(PURPOSE_CANARY, b"", &canary) {
            Ok(v) if &v[..] == CANARY => {}
            _ => return Err(IssuerError::WrongMasterKey),
        }
        crate::rotate::adopt_named_version(store.as_ref(), keys.as_ref()).await?;
        let signing_key = store
            .meta(META_SIGNING_KEY)
            .await?
            .ok_or(IssuerError::NotInitialized)?;
        let issuer_public_key = store
            .meta(META_PUBLIC_KEY)
            .await?
            .ok_or(IssuerError::NotInitialized)?;
        if keys.signing_public_key(&signing_key)?.as_slice() != issuer_public_key.as_slice() {
            return Err(IssuerError::Crypto(
                "the signing key does not match its public key",
            ));
        }
        let (activation_key, activation_public_key) =
            ensure_activation_key(store.as_ref(), keys.as_ref()).await?;
        let rng = SystemRandom::new();
        let mut dummy_seed = [0u8; 32];
        rng.fill(&mut dummy_seed)
            .map_err(|_| IssuerError::Crypto("random"))?;
        let dummy_card_keys =
            keys.seal_card_keys(DUMMY_CARD_ID, &CardSeed::from_bytes(dummy_seed))?;
        let tokens = Tokens::new(store.tokens().await?);
        let metrics = Arc::new(Metrics::default());
        let outbox_wake = Arc::new(Notify::new());
        let sender: Arc<dyn SmsSender> = match delivery {
            Delivery::Sender(s) => s,
            Delivery::DevRecorder => Arc::new(crate::outbox::DevRecorder::new(
                Arc::clone(&store),
                Arc::clone(&keys),
                tokio::runtime::Handle::current(),
            )),
        };
        let worker = DeliveryWorker::new(
            Arc::clone(&store),
            sender,
            Arc::clone(&keys),
            Arc::clone(&clock),
            Arc::clone(&metrics),
            settings.clone(),
            Arc::clone(&outbox_wake),
        );
        let handle = if settings.sms.delivery {
            worker.spawn(Duration::from_millis(settings.sms.poll_interval_ms))
        } else {
            tracing::info!("this node delivers no SMS (sms.delivery = false)");
            DeliveryHandle::idle()
        };
        let issuer = Arc::new(Issuer {
            settings,
            keys,
            clock,
            store,
            tokens,
            metrics,
            outbox_wake,
            signing_key,
            issuer_public_key,
            activation_key,
            activation_public_key,
            dummy_card_keys,
            rng,
        });
        crate::rotate::watch(&issuer);
        Ok((issuer, handle))
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The key provider.
    pub fn keys(&self) -> &dyn KeyProvider {
        self.keys.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Checks a request's `Authorization` header value for `role`.
    ///
    /// # Errors
    /// [`crate::ServiceError::Unauthorized`] or
    /// [`crate::ServiceError::Forbidden`].
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        role: Role,
    ) -> Result<(), crate::ServiceError> {
        self.tokens.check(self.keys.as_ref(), authorization, role)
    }

    /// The issuer's Ed25519 public key, hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(&self.issuer_public_key)
    }

    /// The issuer's activation (HPKE) public key, hex of the SEC1 point.
    pub fn activation_key_hex(&self) -> String {
        hex::encode(self.activation_public_key)
    }

    /// The issuer's time (its [`Clock`](crate::clock::Clock)), Unix
    /// seconds: what payment requests expire against (the demo gateway).
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    pub(crate) fn random_bytes<const N: usize>(&self) -> Result<[u8; N], IssuerError> {
        let mut b = [0u8; N];
        self.rng
            .fill(&mut b)
            .map_err(|_| IssuerError::Crypto("random"))?;
        Ok(b)
    }

    pub(crate) fn bank_name(&self, pan: &Pan) -> String {
        match (pan.bank(), self.settings.language) {
            (Some(b), Language::Fa) => b.name_fa.to_owned(),
            (Some(b), Language::En) => b.name_en.to_owned(),
            (None, _) => self.settings.bank_name.clone(),
        }
    }

    /// Tells this node's delivery worker that a message was queued.
    pub(crate) fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// `GET /v1/sms/outbox`: the development recorder's messages.
    ///
    /// # Errors
    /// `invalid_phone`, or a storage failure.
    pub async fn outbox(
        &self,
        phone: Option<&str>,
    ) -> Result<Vec<OutboxEntry>, crate::ServiceError> {
        let phone = phone
            .map(pooya_protocol::normalize_phone)
            .transpose()
            .map_err(|e| crate::ServiceError::protocol(crate::Field::Phone, &e))?;
        Ok(read_dev_log(self.store.as_ref(), self.keys.as_ref(), phone.as_deref()).await?)
    }

    /// `GET /healthz`: the database answers and takes writes.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn health(&self) -> Result<(), IssuerError> {
        self.store.health().await
    }

    /// `/metrics` in the Prometheus text format.
    pub async fn render_metrics(&self) -> String {
        let counts = self.store.outbox_counts().await.unwrap_or_default();
        let mut out = self.metrics.render(&self.store.stats(), counts);
        let provider = self.keys.kind().as_str();
        let version = self.keys.current_version();
        out.push_str(&format!(
            "# HELP pooya_issuer_key_provider The key provider this node uses.\n\
             # TYPE pooya_issuer_key_provider gauge\n\
             pooya_issuer_key_provider{{provider=\"{provider}\"}} 1\n\
             # HELP pooya_issuer_master_key_version The master key version this node seals under (docs/issuer.md, \"Key rotation\").\n\
             # TYPE pooya_issuer_master_key_version gauge\n\
             pooya_issuer_master_key_version {version}\n"
        ));
        out
    }

    /// Runs the store's housekeeping once.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn housekeeping(&self) -> Result<(), IssuerError> {
        self.store
            .prune(i64::try_from(self.now()).unwrap_or(i64::MAX))
            .await
    }
}
