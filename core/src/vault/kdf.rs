//! The password KDF: Argon2id (RFC 9106) with enforced floors.
//!
//! The key-encryption key of the password slot is
//! `Argon2id(P = password, S = slot salt, K = device secret, m, t, p)`
//! with a 32-byte output (RFC 9106 §3.1; the device secret is Argon2's
//! optional secret value `K`). The device secret is unwrapped by the
//! host's `DeviceKeystore`, so the database file alone is not enough to
//! test a password guess.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::envelope::{KEY_LEN, SecretKey};
use crate::CoreError;

/// Smallest memory cost accepted, in KiB (19 MiB, OWASP's Argon2id floor).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// Smallest number of passes accepted.
pub const MIN_ITERATIONS: u32 = 2;
/// Largest memory cost accepted, in KiB (1 GiB): a damaged slot must not
/// make the phone allocate without bound.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest number of passes accepted.
pub const MAX_ITERATIONS: u32 = 64;
/// Largest degree of parallelism accepted.
pub const MAX_PARALLELISM: u32 = 16;
/// Salt length of each slot, in bytes (RFC 9106 §3.1 recommends 16).
pub const SALT_LEN: usize = 16;

/// Argon2id parameters. Constructed only through [`KdfParams::new`], which
/// refuses anything below the floors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// The floors: 19 MiB, 2 passes, 1 lane. Valid, and the fastest
    /// setting accepted (used by tests).
    pub const FLOOR: Self = Self {
        memory_kib: MIN_MEMORY_KIB,
        iterations: MIN_ITERATIONS,
        parallelism: 1,
    };

    /// The default for new vaults and password changes: 64 MiB, 12 passes,
    /// 1 lane (about 0.47 s on the development machine; docs/benchmarks.md).
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 12,
        parallelism: 1,
    };

    /// Checks and builds parameters.
    ///
    /// # Errors
    /// [`CoreError::WeakKdfParams`] below the floors (memory < 19 MiB,
    /// iterations < 2, parallelism < 1) or above the ceilings.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, CoreError> {
        if memory_kib < MIN_MEMORY_KIB {
            return Err(CoreError::WeakKdfParams("memory below 19 MiB"));
        }
        if iterations < MIN_ITERATIONS {
            return Err(CoreError::WeakKdfParams("fewer than 2 iterations"));
        }
        if parallelism == 0 {
            return Err(CoreError::WeakKdfParams("parallelism must be at least 1"));
        }
        if memory_kib > MAX_MEMORY_KIB
            || iterations > MAX_ITERATIONS
            || parallelism > MAX_PARALLELISM
        {
            return Err(CoreError::WeakKdfParams("above the ceilings"));
        }
        // Argon2 needs at least 8 KiB per lane.
        if memory_kib < 8 * parallelism {
            return Err(CoreError::WeakKdfParams("too little memory per lane"));
        }
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Degree of parallelism (lanes).
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Derives a slot's key-encryption key (RFC 9106 §3.1, Argon2id v1.3).
///
/// # Errors
/// [`CoreError::VaultCorrupted`] for a salt Argon2 refuses (only a damaged
/// slot has one); [`CoreError::Storage`] if memory cannot be allocated.
pub fn derive_kek(
    password: &[u8],
    device_secret: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<SecretKey, CoreError> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|_| CoreError::VaultCorrupted)?;
    let argon = Argon2::new_with_secret(device_secret, Algorithm::Argon2id, Version::V0x13, p)
        .map_err(|_| CoreError::VaultCorrupted)?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(password, salt, &mut out[..])
        .map_err(|e| match e {
            argon2::Error::OutOfMemory => CoreError::Storage("out of memory for the KDF".into()),
            _ => CoreError::VaultCorrupted,
        })?;
    Ok(SecretKey::from_bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_are_enforced() {
        assert!(KdfParams::new(19 * 1024 - 1, 2, 1).is_err());
        assert!(KdfParams::new(19 * 1024, 1, 1).is_err());
        assert!(KdfParams::new(19 * 1024, 2, 0).is_err());
        assert!(KdfParams::new(MAX_MEMORY_KIB + 1, 2, 1).is_err());
        assert_eq!(KdfParams::new(19 * 1024, 2, 1).unwrap(), KdfParams::FLOOR);
        assert_eq!(
            KdfParams::new(64 * 1024, 12, 1).unwrap(),
            KdfParams::DEFAULT
        );
        assert_eq!(
            KdfParams::new(1024, 2, 1).unwrap_err().code(),
            "weak_kdf_params"
        );
    }

    #[test]
    fn device_secret_and_salt_change_the_key() {
        let p = KdfParams::FLOOR;
        let a = derive_kek(b"pass-word", &[1; 32], &[9; 16], p).unwrap();
        let b = derive_kek(b"pass-word", &[2; 32], &[9; 16], p).unwrap();
        let c = derive_kek(b"pass-word", &[1; 32], &[8; 16], p).unwrap();
        let a2 = derive_kek(b"pass-word", &[1; 32], &[9; 16], p).unwrap();
        assert!(a.ct_eq(&a2));
        assert!(!a.ct_eq(&b));
        assert!(!a.ct_eq(&c));
    }
}
