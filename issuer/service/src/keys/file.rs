//! The file key provider: master key files in the data directory.
//!
//! Version 1 of the master key is `master.key` (made by `init`), later
//! versions `master.v<N>.key` (made by `rotate-keys`): 32 random bytes as
//! hex, mode 0600. From each version HKDF-SHA256 (RFC 5869) derives its
//! AES-256-GCM sealing key; from version 1 it also derives one HMAC-SHA256
//! key per [`HashDomain`]. Those do not rotate: when version 1 is retired
//! they are written to `hash.keys` first (the sealing key cannot be
//! recovered from them) and `master.key` is removed.
//!
//! Sealed values are envelopes (docs/security.md, "Data at rest"):
//! `0x02 || version (u32, big-endian) || nonce (12) || ciphertext || tag
//! (16)`, or, as written before rotation existed, `0x01 || nonce ||
//! ciphertext || tag` (version 1). The associated data names what the
//! value is and which record it belongs to ([`super::seal_aad`]), so a
//! sealed seed copied onto another card's row does not open.
//!
//! The signing and activation keys are kept in the store, sealed under the
//! master key (their "reference"); a card's keys are its seed, sealed, and
//! derived when a verification needs them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, Ordering};

use pooya_protocol::activation::{ACTIVATION_KEY_LEN, ActivationSecretKey};
use pooya_protocol::{CardSeed, HashAlgorithm};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use super::{
    CardKey, HashDomain, KeyProvider, MacRequest, PURPOSE_ACTIVATION_KEY, PURPOSE_SEED,
    PURPOSE_SIGNING_KEY, ProviderKind, seal_aad,
};
use crate::IssuerError;

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
/// Envelope format of values sealed before key versions (version 1).
pub const SEAL_FORMAT_V1: u8 = 1;
/// Envelope format that names its key version.
pub const SEAL_FORMAT_VERSIONED: u8 = 2;
const TAG_LEN: usize = 16;

/// A parsed envelope: its key version, nonce and `ciphertext || tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The master key version it is sealed under.
    pub version: u32,
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Parses either envelope format.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] for an unknown format or a short value.
    pub fn parse(sealed: &'a [u8]) -> Result<Self, IssuerError> {
        let (&format, rest) = sealed
            .split_first()
            .ok_or(IssuerError::Crypto("empty envelope"))?;
        let (version, rest) = match format {
            SEAL_FORMAT_V1 => (1, rest),
            SEAL_FORMAT_VERSIONED => {
                if rest.len() < 4 {
                    return Err(IssuerError::Crypto("short envelope"));
                }
                let (v, rest) = rest.split_at(4);
                let mut b = [0u8; 4];
                b.copy_from_slice(v);
                (u32::from_be_bytes(b), rest)
            }
            _ => return Err(IssuerError::Crypto("unknown envelope format")),
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(IssuerError::Crypto("short envelope"));
        }
        let (n, body) = rest.split_at(NONCE_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(n);
        Ok(Self {
            version,
            nonce,
            body,
        })
    }

    /// Writes a versioned envelope's header (`0x02 || version || nonce`).
    pub fn header(version: u32, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + 64);
        out.push(SEAL_FORMAT_VERSIONED);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(nonce);
        out
    }
}

/// The default key provider: master key files in a directory.
pub struct FileKeyProvider {
    dir: Option<PathBuf>,
    seal_keys: RwLock<BTreeMap<u32, LessSafeKey>>,
    current: AtomicU32,
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
const MASTER_FILE: &str = "master.key";
const HASH_FILE: &str = "hash.keys";

fn expand(prk: &hkdf::Prk, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, IssuerError> {
    let mut out = Zeroizing::new([0u8; 32]);
    let info = [label];
    prk.expand(&info, Len(32))
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| IssuerError::Crypto("key derivation"))?;
    Ok(out)
}

fn master_prk(master: &[u8; MASTER_KEY_LEN]) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(master)
}

fn seal_key(master: &[u8; MASTER_KEY_LEN]) -> Result<LessSafeKey, IssuerError> {
    let bytes = expand(&master_prk(master), SEAL_LABEL)?;
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes[..])
        .map_err(|_| IssuerError::Crypto("sealing key"))?;
    Ok(LessSafeKey::new(unbound))
}

fn hash_key_bytes(master: &[u8; MASTER_KEY_LEN]) -> Result<Vec<Zeroizing<[u8; 32]>>, IssuerError> {
    let prk = master_prk(master);
    HashDomain::ALL
        .iter()
        .map(|d| expand(&prk, d.label()))
        .collect()
}

fn hmac_keys(bytes: &[Zeroizing<[u8; 32]>]) -> Vec<hmac::Key> {
    bytes
        .iter()
        .map(|k| hmac::Key::new(hmac::HMAC_SHA256, &k[..]))
        .collect()
}

fn version_file(version: u32) -> String {
    if version == 1 {
        MASTER_FILE.to_owned()
    } else {
        format!("master.v{version}.key")
    }
}

/// Writes `text` to a new file (mode 0600), refusing to overwrite.
fn write_secret_file(path: &Path, text: &str, what: &'static str) -> Result<(), IssuerError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| IssuerError::io(what, &e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| IssuerError::io(what, &e))?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a secret file of hex: refuses one that group or others may read.
fn read_secret_hex(path: &Path) -> Result<Zeroizing<Vec<u8>>, IssuerError> {
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
    let mut hex_text = Zeroizing::new(String::new());
    for line in text.lines() {
        hex_text.push_str(line.trim());
    }
    Ok(Zeroizing::new(
        hex::decode(hex_text.as_bytes()).map_err(|_| IssuerError::KeyFile("not hex"))?,
    ))
}

fn read_master(path: &Path) -> Result<Zeroizing<[u8; MASTER_KEY_LEN]>, IssuerError> {
    let bytes = read_secret_hex(path)?;
    Ok(Zeroizing::new(
        bytes[..]
            .try_into()
            .map_err(|_| IssuerError::KeyFile("not 32 bytes"))?,
    ))
}

fn random_key() -> Result<Zeroizing<[u8; MASTER_KEY_LEN]>, IssuerError> {
    let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
    SystemRandom::new()
        .fill(&mut key[..])
        .map_err(|_| IssuerError::Crypto("random"))?;
    Ok(key)
}

impl FileKeyProvider {
    /// A provider with one master key (version 1) held in memory only: for
    /// tests and tools. Derives the working keys with HKDF-SHA256
    /// (RFC 5869 §2.2–2.3).
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] if a primitive fails.
    pub fn from_master_key(master: &[u8; MASTER_KEY_LEN]) -> Result<Self, IssuerError> {
        let mut seal_keys = BTreeMap::new();
        seal_keys.insert(1, seal_key(master)?);
        Ok(Self {
            dir: None,
            seal_keys: RwLock::new(seal_keys),
            current: AtomicU32::new(1),
            hash_keys: hmac_keys(&hash_key_bytes(master)?),
            rng: SystemRandom::new(),
        })
    }

    /// Creates a new random master key file `path` (version 1, mode 0600,
    /// refusing to overwrite one) and returns its provider; later versions
    /// are made beside it.
    ///
    /// # Errors
    /// [`IssuerError::Io`] when the file exists or cannot be written.
    pub fn create(path: &Path) -> Result<Self, IssuerError> {
        let key = random_key()?;
        let hex_key = Zeroizing::new(hex::encode(&key[..]));
        write_secret_file(path, &hex_key, "creating the master key file")?;
        let mut p = Self::from_master_key(&key)?;
        p.dir = path.parent().map(Path::to_path_buf);
        Ok(p)
    }

    /// Loads the master key file `path` (version 1: 64 hex digits) and every
    /// `master.v<N>.key` beside it; seals under the highest version until
    /// told otherwise. After version 1 is retired, `path` may be gone and
    /// `hash.keys` beside it holds the lookup-hash keys. Refuses a key file
    /// that group or others may read.
    ///
    /// # Errors
    /// [`IssuerError::KeyFile`] or [`IssuerError::Io`].
    pub fn load(path: &Path) -> Result<Self, IssuerError> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut seal_keys = BTreeMap::new();
        let hash_path = dir.join(HASH_FILE);
        let hash_keys = if hash_path.exists() {
            let bytes = read_secret_hex(&hash_path)?;
            if bytes.len() != 32 * HashDomain::ALL.len() {
                return Err(IssuerError::KeyFile("hash.keys is not four 32-byte keys"));
            }
            let keys: Vec<Zeroizing<[u8; 32]>> = bytes
                .chunks_exact(32)
                .map(|c| {
                    let mut k = Zeroizing::new([0u8; 32]);
                    k.copy_from_slice(c);
                    k
                })
                .collect();
            if path.exists() {
                seal_keys.insert(1, seal_key(&*read_master(path)?)?);
            }
            hmac_keys(&keys)
        } else {
            let master = read_master(path)?;
            seal_keys.insert(1, seal_key(&master)?);
            hmac_keys(&hash_key_bytes(&master)?)
        };
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| IssuerError::io("reading the key directory", &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IssuerError::io("reading the key directory", &e))?;
            let name = entry.file_name();
            let Some(v) = name
                .to_str()
                .and_then(|n| n.strip_prefix("master.v"))
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|v| *v >= 2)
            else {
                continue;
            };
            seal_keys.insert(v, seal_key(&*read_master(&entry.path())?)?);
        }
        let current = *seal_keys
            .keys()
            .next_back()
            .ok_or(IssuerError::KeyFile("no master key version is left"))?;
        Ok(Self {
            dir: Some(dir),
            seal_keys: RwLock::new(seal_keys),
            current: AtomicU32::new(current),
            hash_keys,
            rng: SystemRandom::new(),
        })
    }

    /// Makes sure `version` is loaded: a version made by `rotate-keys` on
    /// this machine, or copied here, after this provider was loaded is read
    /// from its file when first needed.
    fn ensure_loaded(&self, version: u32) -> Result<(), IssuerError> {
        if self
            .seal_keys
            .read()
            .map_err(|_| IssuerError::Crypto("key table"))?
            .contains_key(&version)
        {
            return Ok(());
        }
        let missing = || crate::HsmError::KeyMissing(version_file(version));
        let Some(dir) = &self.dir else {
            return Err(missing().into());
        };
        if version < 2 {
            return Err(missing().into());
        }
        let path = dir.join(version_file(version));
        if !path.exists() {
            return Err(missing().into());
        }
        let key = seal_key(&*read_master(&path)?)?;
        self.seal_keys
            .write()
            .map_err(|_| IssuerError::Crypto("key table"))?
            .entry(version)
            .or_insert(key);
        Ok(())
    }

    fn nonce(&self) -> Result<[u8; NONCE_LEN], IssuerError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| IssuerError::Crypto("random"))?;
        Ok(nonce)
    }

    fn seal_under(
        &self,
        version: u32,
        purpose: &str,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IssuerError> {
        self.ensure_loaded(version)?;
        let keys = self
            .seal_keys
            .read()
            .map_err(|_| IssuerError::Crypto("key table"))?;
        let key = keys
            .get(&version)
            .ok_or_else(|| crate::HsmError::KeyMissing(version_file(version)))?;
        let nonce = self.nonce()?;
        let mut out = Envelope::header(version, &nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(seal_aad(purpose, context)),
            &mut body,
        )
        .map_err(|_| IssuerError::Crypto("seal"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn dir(&self) -> Result<&Path, IssuerError> {
        self.dir
            .as_deref()
            .ok_or(IssuerError::KeyFile("this provider has no key directory"))
    }

    fn open_seed(&self, card_id: &str, sealed: &[u8]) -> Result<CardSeed, IssuerError> {
        let bytes = self.open(PURPOSE_SEED, card_id.as_bytes(), sealed)?;
        CardSeed::from_slice(&bytes).map_err(IssuerError::Protocol)
    }
}

fn hmac_algorithm(a: HashAlgorithm) -> hmac::Algorithm {
    match a {
        HashAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HashAlgorithm::Sha512 => hmac::HMAC_SHA512,
    }
}

impl KeyProvider for FileKeyProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::File
    }

    fn seal(
        &self,
        purpose: &str,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IssuerError> {
        self.seal_under(self.current_version(), purpose, context, plaintext)
    }

    fn open(
        &self,
        purpose: &str,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IssuerError> {
        let env = Envelope::parse(sealed)?;
        self.ensure_loaded(env.version)?;
        let keys = self
            .seal_keys
            .read()
            .map_err(|_| IssuerError::Crypto("key table"))?;
        let key = keys
            .get(&env.version)
            .ok_or_else(|| crate::HsmError::KeyMissing(version_file(env.version)))?;
        let nonce = Nonce::assume_unique_for_key(env.nonce);
        let mut buf = Zeroizing::new(env.body.to_vec());
        let len = key
            .open_in_place(nonce, Aad::from(seal_aad(purpose, context)), &mut buf)
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

    fn seal_card_keys(&self, card_id: &str, seed: &CardSeed) -> Result<Vec<u8>, IssuerError> {
        self.seal(PURPOSE_SEED, card_id.as_bytes(), seed.expose_secret())
    }

    fn card_macs(
        &self,
        card_id: &str,
        sealed: &[u8],
        requests: &[MacRequest<'_>],
    ) -> Result<Vec<Vec<u8>>, IssuerError> {
        let seed = self.open_seed(card_id, sealed)?;
        let keys = seed.derive_keys();
        let device = requests
            .iter()
            .any(|r| r.key == CardKey::Device)
            .then(|| seed.device_key());
        Ok(requests
            .iter()
            .filter_map(|r| {
                let k = match r.key {
                    CardKey::First => &keys.first,
                    CardKey::Second => &keys.second,
                    CardKey::Transaction => &keys.tx,
                    CardKey::Device => device.as_ref()?,
                };
                let key = hmac::Key::new(hmac_algorithm(r.algorithm), k.expose_secret());
                Some(hmac::sign(&key, r.message).as_ref().to_vec())
            })
            .collect())
    }

    fn create_signing_key(&self) -> Result<(Vec<u8>, [u8; 32]), IssuerError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&self.rng)
            .map_err(|_| IssuerError::Crypto("generating the signing key"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| IssuerError::Crypto("loading the signing key"))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| IssuerError::Crypto("signing key length"))?;
        Ok((self.seal(PURPOSE_SIGNING_KEY, b"", pkcs8.as_ref())?, public))
    }

    fn signing_public_key(&self, reference: &[u8]) -> Result<[u8; 32], IssuerError> {
        let pair = self.signing_pair(reference)?;
        pair.public_key()
            .as_ref()
            .try_into()
            .map_err(|_| IssuerError::Crypto("signing key length"))
    }

    fn sign(&self, reference: &[u8], message: &[u8]) -> Result<[u8; 64], IssuerError> {
        let sig = self.signing_pair(reference)?.sign(message);
        sig.as_ref()
            .try_into()
            .map_err(|_| IssuerError::Crypto("signature length"))
    }

    fn create_activation_key(&self) -> Result<(Vec<u8>, [u8; ACTIVATION_KEY_LEN]), IssuerError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        self.rng
            .fill(&mut ikm[..])
            .map_err(|_| IssuerError::Crypto("random"))?;
        let key = ActivationSecretKey::derive(&ikm);
        let sealed = self.seal(PURPOSE_ACTIVATION_KEY, b"", key.expose_secret())?;
        Ok((sealed, key.public_key()))
    }

    fn activation_public_key(
        &self,
        reference: &[u8],
    ) -> Result<[u8; ACTIVATION_KEY_LEN], IssuerError> {
        Ok(self.activation_secret(reference)?.public_key())
    }

    fn activation_agree(
        &self,
        reference: &[u8],
        peer: &[u8; ACTIVATION_KEY_LEN],
    ) -> Result<Zeroizing<[u8; 32]>, IssuerError> {
        self.activation_secret(reference)?
            .agree(peer)
            .map_err(|_| IssuerError::Crypto("activation key agreement"))
    }

    fn versions(&self) -> Result<Vec<u32>, IssuerError> {
        Ok(self
            .seal_keys
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
        self.ensure_loaded(version)?;
        self.current.store(version, Ordering::Release);
        Ok(())
    }

    fn create_version(&self) -> Result<u32, IssuerError> {
        let dir = self.dir()?.to_path_buf();
        let mut keys = self
            .seal_keys
            .write()
            .map_err(|_| IssuerError::Crypto("key table"))?;
        let version = keys.keys().next_back().copied().unwrap_or(0) + 1;
        let key = random_key()?;
        let hex_key = Zeroizing::new(hex::encode(&key[..]));
        write_secret_file(
            &dir.join(version_file(version)),
            &hex_key,
            "creating a master key file",
        )?;
        keys.insert(version, seal_key(&key)?);
        Ok(version)
    }

    fn retire_version(&self, version: u32) -> Result<(), IssuerError> {
        if version == self.current_version() {
            return Err(IssuerError::InvalidSettings(
                "the current master key version cannot be retired".into(),
            ));
        }
        let dir = self.dir()?.to_path_buf();
        if version == 1 && !dir.join(HASH_FILE).exists() {
            let mut text = Zeroizing::new(String::new());
            let master = read_master(&dir.join(MASTER_FILE))?;
            for k in hash_key_bytes(&master)? {
                text.push_str(&hex::encode(&k[..]));
                text.push('\n');
            }
            write_secret_file(
                &dir.join(HASH_FILE),
                text.trim_end(),
                "writing the lookup-hash keys",
            )?;
        }
        let mut keys = self
            .seal_keys
            .write()
            .map_err(|_| IssuerError::Crypto("key table"))?;
        let path = dir.join(version_file(version));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(IssuerError::io("removing a retired master key", &e)),
        }
        keys.remove(&version);
        Ok(())
    }

    fn sealed_version(&self, sealed: &[u8]) -> Option<u32> {
        Envelope::parse(sealed).ok().map(|e| e.version)
    }

    fn reseal(&self, purpose: &str, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let plain = self.open(purpose, context, sealed)?;
        self.seal(purpose, context, &plain)
    }

    fn reseal_card_keys(&self, card_id: &str, sealed: &[u8]) -> Result<Vec<u8>, IssuerError> {
        self.reseal(PURPOSE_SEED, card_id.as_bytes(), sealed)
    }
}

impl FileKeyProvider {
    fn signing_pair(&self, reference: &[u8]) -> Result<Ed25519KeyPair, IssuerError> {
        let pkcs8 = self.open(PURPOSE_SIGNING_KEY, b"", reference)?;
        Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| IssuerError::Crypto("loading the signing key"))
    }

    fn activation_secret(&self, reference: &[u8]) -> Result<ActivationSecretKey, IssuerError> {
        let scalar = self.open(PURPOSE_ACTIVATION_KEY, b"", reference)?;
        ActivationSecretKey::from_bytes(&scalar)
            .map_err(|_| IssuerError::Crypto("loading the activation key"))
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
        assert_eq!(sealed[0], SEAL_FORMAT_VERSIONED);
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
