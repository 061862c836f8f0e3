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

    /// Reads the key file: `None` when there is none. A file that exists
    /// but does not hold exactly one key is reported as damaged (it is
    /// never replaced here: it might be the only copy of a real key).
    fn read_key(&self) -> Result<Option<Zeroizing<[u8; KEY_LEN]>>, HostError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if bytes.len() != KEY_LEN {
                    return Err(HostError::damaged_key_file(&self.path, bytes.len()));
                }
                let mut k = Zeroizing::new([0u8; KEY_LEN]);
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

    /// Creates the key file atomically: the key goes to a private
    /// temporary file in the same directory, is flushed to disk, and is
    /// then hard-linked to the final name, which fails if the name exists.
    /// So the key file is either absent or whole, even after a crash, and
    /// a reader never sees half a key. When another process won the race,
    /// its key is read and used.
    fn create_key(&self) -> Result<Zeroizing<[u8; KEY_LEN]>, HostError> {
        let io = |what: &str, e: std::io::Error| {
            HostError::new(format!("cannot {what} the device key file: {}", e.kind()))
        };
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut k[..]).map_err(|_| HostError::new("random generator failed"))?;
        let tmp = self.temp_path()?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io("create", e))?;
        let written = f
            .write_all(&k[..])
            .and_then(|()| f.sync_all())
            .map_err(|e| io("write", e));
        drop(f);
        let linked = written.and_then(|()| match std::fs::hard_link(&tmp, &self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io("link", e)),
        });
        // The temporary name is never needed again, whatever happened.
        let _ = std::fs::remove_file(&tmp);
        if !linked? {
            // Another process created the key file first: use its key.
            return self
                .read_key()?
                .ok_or_else(|| HostError::new("device key file vanished while being created"));
        }
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

    /// A fresh, unguessable temporary name beside the key file.
    fn temp_path(&self) -> Result<PathBuf, HostError> {
        let mut nonce = [0u8; 8];
        fill_random(&mut nonce).map_err(|_| HostError::new("random generator failed"))?;
        let mut p = self.path.as_os_str().to_owned();
        p.push(format!(".tmp-{}-{}", std::process::id(), hex(&nonce)));
        Ok(PathBuf::from(p))
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
            None if create => self.create_key()?,
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

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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

    #[test]
    fn concurrent_creators_end_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.db");
        let n = 8;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
        let blobs: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let barrier = barrier.clone();
                let vault = vault.clone();
                std::thread::spawn(move || {
                    // Each thread is its own keystore, as separate processes are.
                    let ks = KeyFileKeystore::beside(&vault);
                    barrier.wait();
                    ks.seal(b"secret").unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let reader = KeyFileKeystore::beside(&vault);
        for blob in &blobs {
            assert_eq!(&reader.open(blob).unwrap()[..], b"secret");
        }
        assert_eq!(std::fs::read(reader.path()).unwrap().len(), KEY_LEN);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("vault.db.devkey")]);
    }

    #[test]
    fn empty_key_file_is_a_clear_error_and_is_kept() {
        use crate::CoreError;
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyFileKeystore::beside(&dir.path().join("vault.db"));
        for len in [0, 17] {
            std::fs::write(ks.path(), vec![7u8; len]).unwrap();
            let err = CoreError::from(ks.seal(b"x").unwrap_err());
            assert_eq!(
                err,
                CoreError::DeviceKeyDamaged {
                    path: ks.path().display().to_string()
                }
            );
            assert_eq!(err.code(), "device_key_damaged");
            assert!(err.to_string().contains("delete this key file"), "{err}");
            assert!(ks.open(&[1; 40]).is_err());
            // Not replaced: it might be the only copy of a real key.
            assert_eq!(std::fs::read(ks.path()).unwrap(), vec![7u8; len]);
        }
    }
}
