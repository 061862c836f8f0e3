//! The server's master key, behind [`KeyProvider`] so an HSM can replace the
//! key file.
//!
//! The default [`FileKeyProvider`] reads 32 random bytes from a file made by
//! `init` (mode 0600) and derives one key per job with HKDF-SHA256
//! (RFC 5869): an AES-256-GCM sealing key and one HMAC-SHA256 key per
//! [`HashDomain`]. Sealed values are versioned envelopes
//! `0x01 || nonce (12) || ciphertext || tag (16)`, with associated data
//! naming what the value is and which record it belongs to, so a sealed
//! seed copied onto another card's row does not open.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::IssuerError;

/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
/// Envelope format version of sealed values.
pub const SEAL_VERSION: u8 = 1;
const AAD_PREFIX: &[u8] = b"pooya/issuer/v1/";

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
    /// One-time codes sent by SMS (reserved for the SMS channel and Harim).
    OneTimeCode,
}

impl HashDomain {
    const ALL: [HashDomain; 4] = [
        HashDomain::Pan,
        HashDomain::ApiToken,
        HashDomain::ActivationCode,
        HashDomain::OneTimeCode,
    ];

    /// The HKDF `info` label of the domain's key.
    pub fn label(self) -> &'static [u8] {
        match self {
            Self::Pan => b"pooya/issuer/v1/hash/pan",
            Self::ApiToken => b"pooya/issuer/v1/hash/api-token",
            Self::ActivationCode => b"pooya/issuer/v1/hash/activation-code",
            Self::OneTimeCode => b"pooya/issuer/v1/hash/one-time-code",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Pan => 0,
            Self::ApiToken => 1,
            Self::ActivationCode => 2,
            Self::OneTimeCode => 3,
        }
    }
}

/// Holder of the server's secret keys. Every secret at rest passes through
/// it; implementations must be fast enough for the verification path (one
/// [`keyed_hash`](KeyProvider::keyed_hash) and one
/// [`open`](KeyProvider::open) per verification).
pub trait KeyProvider: Send + Sync + 'static {
    /// Seals `plaintext` (authenticated encryption); `purpose` and
    /// `context` are bound as associated data and must be given again to
    /// open it.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when the primitive fails.
    fn seal(&self, purpose: &str, context: &[u8], plaintext: &[u8])
    -> Result<Vec<u8>, IssuerError>;

    /// Opens a value sealed by [`seal`](KeyProvider::seal) with the same
    /// purpose and context.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] when the envelope is malformed, was sealed
    /// under another key or for another record.
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
    /// [`IssuerError::Crypto`] when the provider cannot compute it.
    fn keyed_hash(&self, domain: HashDomain, data: &[u8]) -> Result<[u8; 32], IssuerError>;
}

fn aad(purpose: &str, context: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_PREFIX.len() + purpose.len() + 1 + context.len());
    out.extend_from_slice(AAD_PREFIX);
    out.extend_from_slice(purpose.as_bytes());
    out.push(0);
    out.extend_from_slice(context);
    out
}

/// The default key provider: a 32-byte master key in a file.
pub struct FileKeyProvider {
    seal_key: LessSafeKey,
    hash_keys: Vec<hmac::Key>,
    rng: SystemRandom,
}

impl fmt::Debug for FileKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKeyProvider(<redacted>)")
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

const SEAL_LABEL: &[u8] = b"pooya/issuer/v1/seal";
const HKDF_SALT: &[u8] = b"pooya/issuer/v1/master";

fn expand(prk: &hkdf::Prk, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, IssuerError> {
    let mut out = Zeroizing::new([0u8; 32]);
    let info = [label];
    prk.expand(&info, Len(32))
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| IssuerError::Crypto("key derivation"))?;
    Ok(out)
}

impl FileKeyProvider {
    /// Derives the working keys from master key bytes (HKDF-SHA256,
    /// RFC 5869 §2.2–2.3).
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] if a primitive fails.
    pub fn from_master_key(master: &[u8; MASTER_KEY_LEN]) -> Result<Self, IssuerError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(master);
        let seal_bytes = expand(&prk, SEAL_LABEL)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &seal_bytes[..])
            .map_err(|_| IssuerError::Crypto("sealing key"))?;
        let mut hash_keys = Vec::with_capacity(HashDomain::ALL.len());
        for d in HashDomain::ALL {
            let k = expand(&prk, d.label())?;
            hash_keys.push(hmac::Key::new(hmac::HMAC_SHA256, &k[..]));
        }
        Ok(Self {
            seal_key: LessSafeKey::new(unbound),
            hash_keys,
            rng: SystemRandom::new(),
        })
    }

    /// Creates a new random master key file (mode 0600, refusing to
    /// overwrite one) and returns its provider.
    ///
    /// # Errors
    /// [`IssuerError::Io`] when the file exists or cannot be written.
    pub fn create(path: &Path) -> Result<Self, IssuerError> {
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        SystemRandom::new()
            .fill(&mut key[..])
            .map_err(|_| IssuerError::Crypto("random"))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(path)
            .map_err(|e| IssuerError::io("creating the master key file", &e))?;
        let hex_key = Zeroizing::new(hex::encode(&key[..]));
        file.write_all(hex_key.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| IssuerError::io("writing the master key file", &e))?;
        Self::from_master_key(&key)
    }

    /// Loads a master key file: 64 hex digits. Refuses a file that group or
    /// others may read.
    ///
    /// # Errors
    /// [`IssuerError::KeyFile`] or [`IssuerError::Io`].
    pub fn load(path: &Path) -> Result<Self, IssuerError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| IssuerError::io("reading the master key file", &e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(IssuerError::KeyFile(
                    "readable by group or others: chmod 600 it",
                ));
            }
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| IssuerError::io("reading the master key file", &e))?,
        );
        let bytes =
            Zeroizing::new(hex::decode(text.trim()).map_err(|_| IssuerError::KeyFile("not hex"))?);
        let key: Zeroizing<[u8; MASTER_KEY_LEN]> = Zeroizing::new(
            bytes[..]
                .try_into()
                .map_err(|_| IssuerError::KeyFile("not 32 bytes"))?,
        );
        Self::from_master_key(&key)
    }
}

impl KeyProvider for FileKeyProvider {
    fn seal(
        &self,
        purpose: &str,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IssuerError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| IssuerError::Crypto("random"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(1 + NONCE_LEN);
        self.seal_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(purpose, context)),
                &mut body,
            )
            .map_err(|_| IssuerError::Crypto("seal"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(
        &self,
        purpose: &str,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IssuerError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or(IssuerError::Crypto("empty envelope"))?;
        if version != SEAL_VERSION {
            return Err(IssuerError::Crypto("unknown envelope version"));
        }
        if rest.len() < NONCE_LEN + 16 {
            return Err(IssuerError::Crypto("short envelope"));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| IssuerError::Crypto("nonce"))?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .seal_key
            .open_in_place(nonce, Aad::from(aad(purpose, context)), &mut buf)
            .map_err(|_| IssuerError::Crypto("open"))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    fn keyed_hash(&self, domain: HashDomain, data: &[u8]) -> Result<[u8; 32], IssuerError> {
        let key = self
            .hash_keys
            .get(domain.index())
            .ok_or(IssuerError::Crypto("hash domain"))?;
        let tag = hmac::sign(key, data);
        tag.as_ref()
            .try_into()
            .map_err(|_| IssuerError::Crypto("hmac length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(b: u8) -> FileKeyProvider {
        FileKeyProvider::from_master_key(&[b; 32]).unwrap()
    }

    #[test]
    fn seal_round_trip_and_binding() {
        let p = provider(1);
        let sealed = p.seal("seed", b"card-1", b"secret seed bytes").unwrap();
        assert_eq!(sealed[0], SEAL_VERSION);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            &p.open("seed", b"card-1", &sealed).unwrap()[..],
            b"secret seed bytes"
        );
        assert!(p.open("seed", b"card-2", &sealed).is_err());
        assert!(p.open("pan", b"card-1", &sealed).is_err());
        assert!(provider(2).open("seed", b"card-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(p.open("seed", b"card-1", &tampered).is_err());
        assert!(p.open("seed", b"card-1", &[]).is_err());
        assert!(p.open("seed", b"card-1", &[1, 2, 3]).is_err());
        // Fresh nonce each time.
        assert_ne!(
            sealed,
            p.seal("seed", b"card-1", b"secret seed bytes").unwrap()
        );
    }

    #[test]
    fn hash_domains_are_separate() {
        let p = provider(1);
        let a = p.keyed_hash(HashDomain::Pan, b"6104337700000001").unwrap();
        let b = p
            .keyed_hash(HashDomain::ApiToken, b"6104337700000001")
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(
            a,
            p.keyed_hash(HashDomain::Pan, b"6104337700000001").unwrap()
        );
        assert_ne!(
            a,
            provider(2)
                .keyed_hash(HashDomain::Pan, b"6104337700000001")
                .unwrap()
        );
    }

    #[test]
    fn key_file_create_load_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let p = FileKeyProvider::create(&path).unwrap();
        let sealed = p.seal("x", b"", b"hello").unwrap();
        let q = FileKeyProvider::load(&path).unwrap();
        assert_eq!(&q.open("x", b"", &sealed).unwrap()[..], b"hello");
        assert!(FileKeyProvider::create(&path).is_err(), "no overwrite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(FileKeyProvider::load(&path).unwrap_err().code(), "key_file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "abcd").unwrap();
        assert_eq!(FileKeyProvider::load(&path).unwrap_err().code(), "key_file");
    }
}
