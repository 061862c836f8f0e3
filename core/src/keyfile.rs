//! The desktop [`DeviceKeystore`]: a random 256-bit key in a file beside
//! the vault, readable only by its owner (mode 0600 on Unix).
//!
//! This is **weaker** than a phone's hardware keystore: anyone who can
//! read the user's files (a backup, malware running as the user, a stolen
//! unencrypted disk) gets the key file together with the vault, and can
//! then attack the app password offline at the cost of Argon2id per
//! guess. docs/security.md ("Phone vault") explains the difference.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::hooks::{DeviceKeystore, HostError};
use crate::vault::envelope::fill_random;

const KEY_LEN: usize = 32;
const BLOB_VERSION: u8 = 1;
const AAD: &[u8] = b"pooya/device-keystore/v1";
/// Largest plaintext the keystore seals ([`DeviceKeystore::seal`]).
const MAX_PLAINTEXT: usize = 64;

/// A [`DeviceKeystore`] backed by a key file.
pub struct KeyFileKeystore {
    path: PathBuf,
    key: Mutex<Option<Zeroizing<[u8; KEY_LEN]>>>,
}

impl core::fmt::Debug for KeyFileKeystore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyFileKeystore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyFileKeystore {
    /// A keystore using the key file at `path` (created on first seal).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            key: Mutex::new(None),
        }
    }

    /// The conventional key file of a vault: `<vault>.devkey`.
    pub fn beside(vault_path: &Path) -> Self {
        let mut p = vault_path.as_os_str().to_owned();
        p.push(".devkey");
        Self::new(PathBuf::from(p))
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_key(&self) -> Result<Option<Zeroizing<[u8; KEY_LEN]>>, HostError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let mut k = Zeroizing::new([0u8; KEY_LEN]);
                if bytes.len() != KEY_LEN {
                    return Err(HostError::new("device key file has the wrong length"));
                }
                k.copy_from_slice(&bytes);
                Ok(Some(k))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HostError::new(format!(
                "cannot read the device key file: {}",
                e.kind()
            ))),
        }
    }

    fn create_key(&self) -> Result<Zeroizing<[u8; KEY_LEN]>, HostError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut k[..]).map_err(|_| HostError::new("random generator failed"))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let io = |e: std::io::Error| {
            HostError::new(format!("cannot write the device key file: {}", e.kind()))
        };
        let mut f = opts.open(&self.path).map_err(io)?;
        f.write_all(&k[..]).map_err(io)?;
        f.sync_all().map_err(io)?;
        // Make the new directory entry durable too.
        if let Some(d) = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .and_then(|dir| std::fs::File::open(dir).ok())
        {
            let _ = d.sync_all();
        }
        Ok(k)
    }

    fn key(&self, create: bool) -> Result<Zeroizing<[u8; KEY_LEN]>, HostError> {
        let mut guard = self
            .key
            .lock()
            .map_err(|_| HostError::new("device keystore lock poisoned"))?;
        if let Some(k) = guard.as_ref() {
            return Ok(k.clone());
        }
        let k = match self.read_key()? {
            Some(k) => k,
            None if create => match self.create_key() {
                Ok(k) => k,
                // Another process created it first.
                Err(_) => self
                    .read_key()?
                    .ok_or_else(|| HostError::new("cannot create the device key file"))?,
            },
            None => return Err(HostError::new("device key file missing")),
        };
        *guard = Some(k.clone());
        Ok(k)
    }

    fn aead(key: &[u8; KEY_LEN]) -> Result<LessSafeKey, HostError> {
        UnboundKey::new(&AES_256_GCM, key)
            .map(LessSafeKey::new)
            .map_err(|_| HostError::new("AEAD key setup failed"))
    }
}

impl DeviceKeystore for KeyFileKeystore {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, HostError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(HostError::new("plaintext longer than 64 bytes"));
        }
        let key = self.key(true)?;
        let aead = Self::aead(&key)?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce).map_err(|_| HostError::new("random generator failed"))?;
        let mut body = plaintext.to_vec();
        aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut body,
        )
        .map_err(|_| HostError::new("seal failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(BLOB_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HostError> {
        let not_ours = || HostError::new("blob not sealed by this device key");
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != BLOB_VERSION {
            return Err(not_ours());
        }
        let key = self.key(false)?;
        let aead = Self::aead(&key)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| not_ours())?;
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let n = aead
            .open_in_place(nonce, Aad::from(AAD), &mut buf[..])
            .map_err(|_| not_ours())?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyFileKeystore::beside(&dir.path().join("vault.db"));
        assert!(ks.open(&[1; 40]).is_err(), "no key file yet");
        let blob = ks.seal(b"device secret").unwrap();
        assert_eq!(&ks.open(&blob).unwrap()[..], b"device secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ks.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second instance (another process) reads the same key.
        let again = KeyFileKeystore::beside(&dir.path().join("vault.db"));
        assert_eq!(&again.open(&blob).unwrap()[..], b"device secret");
        // Another device's key cannot open it.
        let other = tempfile::tempdir().unwrap();
        let ks2 = KeyFileKeystore::beside(&other.path().join("vault.db"));
        ks2.seal(b"x").unwrap();
        assert!(ks2.open(&blob).is_err());
        let mut bad = blob.clone();
        bad[20] ^= 1;
        assert!(ks.open(&bad).is_err());
        assert!(ks.seal(&[0; 65]).is_err());
    }
}
