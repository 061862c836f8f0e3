//! The issuer's keys, behind [`KeyProvider`] so an HSM can hold them
//! instead of a key file (docs/security.md, "Which secret lives where").
//!
//! A provider holds, or can reach, every long-term secret of the issuer:
//! - the **master (wrapping) key**, in numbered versions: values at rest
//!   (card numbers, the SMS outbox's payloads, the canary) are sealed
//!   under it with AES-256-GCM, and each card's PIN keys are wrapped
//!   under it; a sealed value names the version it is under
//!   ([`KeyProvider::sealed_version`]) so `rotate-keys` can move every
//!   record to a new version and the old one can be retired;
//! - one HMAC-SHA256 key per [`HashDomain`] for lookup hashes (these do
//!   not rotate with the master key: a hash must stay the same to be
//!   found);
//! - the Ed25519 signing key of activation answers (RFC 8032);
//! - the P-256 key activation requests are sealed to (HPKE, RFC 9180;
//!   only its Diffie-Hellman step runs in the provider).
//!
//! The file provider ([`FileKeyProvider`]) derives the symmetric keys from
//! 32-byte master key files and keeps the signing and activation keys
//! sealed in the store. The PKCS#11 provider (crate `pooya-issuer-pkcs11`)
//! keeps all of them inside a token, where they never leave: the
//! verification path hands it MAC requests ([`KeyProvider::card_macs`])
//! and never sees a card's keys.

mod file;

pub use file::{Envelope, FileKeyProvider, MASTER_KEY_LEN, SEAL_FORMAT_V1, SEAL_FORMAT_VERSIONED};

/// Purpose of a card's sealed seed under a file provider (context: the
/// card id).
pub const PURPOSE_SEED: &str = "seed";
/// Purpose of a file provider's sealed Ed25519 key (PKCS#8): its signing
/// key reference.
pub const PURPOSE_SIGNING_KEY: &str = "signing-key";
/// Purpose of a file provider's sealed activation scalar: its activation
/// key reference.
pub const PURPOSE_ACTIVATION_KEY: &str = "activation-key";

use pooya_protocol::{CardSeed, HashAlgorithm};
use zeroize::Zeroizing;

use crate::IssuerError;

/// What a keyed hash is for; each domain has its own key, so a hash from one
/// table says nothing about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashDomain {
    /// Card numbers (lookup without storing the PAN).
    Pan,
    /// API bearer tokens.
    ApiToken,
    /// Activation codes, bound to the phone number.
    ActivationCode,
    /// One-time codes sent by SMS (the SMS version and Harim).
    OneTimeCode,
}

impl HashDomain {
    /// Every domain, in a fixed order.
    pub const ALL: [HashDomain; 4] = [
        HashDomain::Pan,
        HashDomain::ApiToken,
        HashDomain::ActivationCode,
        HashDomain::OneTimeCode,
    ];

    /// The HKDF `info` label of the domain's key (file provider), also the
    /// stable name of the domain.
    pub fn label(self) -> &'static [u8] {
        match self {
            Self::Pan => b"pooya/issuer/v1/hash/pan",
            Self::ApiToken => b"pooya/issuer/v1/hash/api-token",
            Self::ActivationCode => b"pooya/issuer/v1/hash/activation-code",
            Self::OneTimeCode => b"pooya/issuer/v1/hash/one-time-code",
        }
    }

    /// A short stable name (`pan`, `api-token`, …), e.g. for token labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pan => "pan",
            Self::ApiToken => "api-token",
            Self::ActivationCode => "activation-code",
            Self::OneTimeCode => "one-time-code",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Pan => 0,
            Self::ApiToken => 1,
            Self::ActivationCode => 2,
            Self::OneTimeCode => 3,
        }
    }
}

/// Which of a card's PIN keys (docs/protocol.md, "Card keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardKey {
    /// The first dynamic PIN's key (TOTP).
    First,
    /// The cap-bound second PIN's key (OCRA).
    Second,
    /// The transaction-bound second PIN's key (OCRA).
    Transaction,
    /// The device key (HKDF label `pooya/v1/card/device`): proves a
    /// device request about the card (docs/protocol.md, "Card requests").
    /// Cards whose keys were wrapped before it existed lack it in a
    /// PKCS#11 token (`hsm_key_missing` until activated again).
    Device,
}

impl CardKey {
    /// Every card key, in the order they are wrapped.
    pub const ALL: [CardKey; 4] = [
        CardKey::First,
        CardKey::Second,
        CardKey::Transaction,
        CardKey::Device,
    ];
}

impl From<pooya_protocol::PinKind> for CardKey {
    fn from(kind: pooya_protocol::PinKind) -> Self {
        match kind {
            pooya_protocol::PinKind::First => Self::First,
            pooya_protocol::PinKind::Second => Self::Second,
            pooya_protocol::PinKind::Transaction => Self::Transaction,
        }
    }
}

/// One HMAC a verification needs: `HMAC-<algorithm>(card key, message)`
/// (RFC 2104; the messages are the TOTP counters and OCRA data inputs of
/// every candidate, RFC 6238 §4 and RFC 6287 §5.1).
#[derive(Debug, Clone, Copy)]
pub struct MacRequest<'a> {
    /// Under which of the card's keys.
    pub key: CardKey,
    /// The hash function of the HMAC.
    pub algorithm: HashAlgorithm,
    /// The message; not secret.
    pub message: &'a [u8],
}

/// Which kind of provider holds the keys (for logs, metrics and `init`'s
/// output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// [`FileKeyProvider`].
    File,
    /// A PKCS#11 token (an HSM, or SoftHSM2 in tests).
    Pkcs11,
}

impl ProviderKind {
    /// The stable name (`file`, `pkcs11`), as in `init --keys`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Pkcs11 => "pkcs11",
        }
    }
}

/// Holder of the issuer's secret keys. Every secret at rest passes through
/// it. Implementations must be fast enough for the verification path: per
/// verification one [`keyed_hash`](KeyProvider::keyed_hash), one
/// [`card_macs`](KeyProvider::card_macs) with every candidate, and one
/// keyed hash of the caller's API token.
///
/// Every method is blocking (an HSM answers over a socket); callers on an
/// async runtime may call it directly for the short operations above.
pub trait KeyProvider: Send + Sync + 'static {
    /// Which kind of provider this is.
    fn kind(&self) -> ProviderKind;

    /// Seals `plaintext` (AES-256-GCM, NIST SP 800-38D) under the current
    /// master key version; `purpose` and `context` are bound as associated
    /// data and must be given again to open it.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when the primitive fails,
    /// [`IssuerError::Hsm`] when the token does.
    fn seal(&self, purpose: &str, context: &[u8], plaintext: &[u8])
    -> Result<Vec<u8>, IssuerError>;

    /// Opens a value sealed by [`seal`](KeyProvider::seal) (under any
    /// version the provider still holds) with the same purpose and context.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when the envelope is malformed, was sealed
    /// under another key or for another record; [`IssuerError::Hsm`]
    /// (`hsm_key_missing`) when its version is not held.
    fn open(
        &self,
        purpose: &str,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IssuerError>;

    /// HMAC-SHA256 (RFC 2104) of `data` under the domain's key: a
    /// deterministic, irreversible lookup key.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`].
    fn keyed_hash(&self, domain: HashDomain, data: &[u8]) -> Result<[u8; 32], IssuerError>;

    /// Derives a card's three PIN keys from its seed (docs/protocol.md,
    /// "Card keys") and wraps them under the current master key version,
    /// bound to `card_id` so a blob copied onto another card's row is
    /// refused. The seed is not kept.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`].
    fn seal_card_keys(&self, card_id: &str, seed: &CardSeed) -> Result<Vec<u8>, IssuerError>;

    /// The HMAC of each request under the key it names, of the card whose
    /// keys `sealed` holds (as made by
    /// [`seal_card_keys`](KeyProvider::seal_card_keys) for `card_id`), in
    /// the order of `requests`. The keys are used where they live and never
    /// returned.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when `sealed` does not open for `card_id`;
    /// [`IssuerError::Hsm`].
    fn card_macs(
        &self,
        card_id: &str,
        sealed: &[u8],
        requests: &[MacRequest<'_>],
    ) -> Result<Vec<Vec<u8>>, IssuerError>;

    /// Makes the issuer's Ed25519 signing key (RFC 8032): returns what the
    /// store keeps to name it (the sealed key for a file provider, a label
    /// for a token) and its 32-byte public key.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`].
    fn create_signing_key(&self) -> Result<(Vec<u8>, [u8; 32]), IssuerError>;

    /// The public key of the signing key `reference` names.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`] (`hsm_key_missing`).
    fn signing_public_key(&self, reference: &[u8]) -> Result<[u8; 32], IssuerError>;

    /// An Ed25519 signature of `message` by the key `reference` names.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`].
    fn sign(&self, reference: &[u8], message: &[u8]) -> Result<[u8; 64], IssuerError>;

    /// Makes the activation key (P-256): returns its reference, as for
    /// [`create_signing_key`](KeyProvider::create_signing_key), and its
    /// public key as an uncompressed SEC 1 point (65 bytes).
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`].
    fn create_activation_key(&self) -> Result<(Vec<u8>, [u8; 65]), IssuerError>;

    /// The public key of the activation key `reference` names.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`] (`hsm_key_missing`).
    fn activation_public_key(&self, reference: &[u8]) -> Result<[u8; 65], IssuerError>;

    /// P-256 Diffie-Hellman of the activation key with `peer` (an
    /// uncompressed SEC 1 point): the x-coordinate of the shared point
    /// (SEC 1 §3.3.1), as RFC 9180 §4.1 `DH()` needs.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] for a peer that is not a point on the
    /// curve; [`IssuerError::Hsm`].
    fn activation_agree(
        &self,
        reference: &[u8],
        peer: &[u8; 65],
    ) -> Result<Zeroizing<[u8; 32]>, IssuerError>;

    /// The master key versions the provider holds, ascending.
    ///
    /// # Errors
    /// [`IssuerError::Hsm`], [`IssuerError::Io`].
    fn versions(&self) -> Result<Vec<u32>, IssuerError>;

    /// The version new values are sealed under.
    fn current_version(&self) -> u32;

    /// Seals under `version` from now on (it must be held).
    ///
    /// # Errors
    /// [`IssuerError::Hsm`] (`hsm_key_missing`) for a version not held.
    fn set_current_version(&self, version: u32) -> Result<(), IssuerError>;

    /// Makes a new master key version, one above the highest held, and
    /// returns it; it is not current until
    /// [`set_current_version`](KeyProvider::set_current_version).
    ///
    /// # Errors
    /// [`IssuerError::Crypto`], [`IssuerError::Hsm`], [`IssuerError::Io`].
    fn create_version(&self) -> Result<u32, IssuerError>;

    /// Destroys a master key version. Refuses the current one.
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] for the current version;
    /// [`IssuerError::Hsm`], [`IssuerError::Io`].
    fn retire_version(&self, version: u32) -> Result<(), IssuerError>;

    /// The master key version a sealed value or card-keys blob is under;
    /// `None` for what is not sealed under the master key (a token label
    /// naming a signing or activation key).
    fn sealed_version(&self, sealed: &[u8]) -> Option<u32>;

    /// Opens a sealed value and seals it again under the current version
    /// (same purpose and context).
    ///
    /// # Errors
    /// As [`open`](KeyProvider::open) and [`seal`](KeyProvider::seal).
    fn reseal(&self, purpose: &str, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, IssuerError>;

    /// Wraps a card's keys again under the current version; in a token the
    /// keys never leave it.
    ///
    /// # Errors
    /// As [`card_macs`](KeyProvider::card_macs).
    fn reseal_card_keys(&self, card_id: &str, sealed: &[u8]) -> Result<Vec<u8>, IssuerError>;
}

/// The associated data of a sealed value: a fixed prefix, the purpose, a
/// zero byte, the context (docs/security.md, "Data at rest").
pub fn seal_aad(purpose: &str, context: &[u8]) -> Vec<u8> {
    const AAD_PREFIX: &[u8] = b"pooya/issuer/v1/";
    let mut out = Vec::with_capacity(AAD_PREFIX.len() + purpose.len() + 1 + context.len());
    out.extend_from_slice(AAD_PREFIX);
    out.extend_from_slice(purpose.as_bytes());
    out.push(0);
    out.extend_from_slice(context);
    out
}
