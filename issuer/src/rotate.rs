//! `pooya-issuer rotate-keys`: moves every sealed value to a new master key
//! version while the issuer's nodes keep serving, then retires the old
//! version (`pooya_issuer_service::rotate`; docs/issuer.md, "Key
//! rotation").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pooya_issuer_service::rotate::{self, RotationReport};
use pooya_issuer_service::{IssuerError, KeyProvider};
use pooya_issuer_sqlite::SqliteOptions;

use crate::init::{block_on, open_store};

/// What `rotate-keys` is given.
#[derive(Clone)]
pub struct RotateOptions {
    /// The PostgreSQL database, as for `serve`.
    pub database_url: Option<String>,
    /// Its certificate authorities.
    pub database_tls_ca: Option<PathBuf>,
    /// Only finish a rotation that stopped before retiring.
    pub finish: bool,
    /// How long to wait for running nodes to adopt the new version.
    pub settle: Duration,
    /// The key provider; `None` loads the key files of the data directory.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
}

impl Default for RotateOptions {
    fn default() -> Self {
        Self {
            database_url: None,
            database_tls_ca: None,
            finish: false,
            settle: rotate::SETTLE,
            key_provider: None,
        }
    }
}

impl std::fmt::Debug for RotateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateOptions")
            .field("postgres", &self.database_url.is_some())
            .field("finish", &self.finish)
            .field("settle", &self.settle)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Rotates the master key of the issuer in `data_dir` (its key files, and
/// its SQLite database unless a PostgreSQL URL is given).
///
/// # Errors
/// As [`rotate::rotate_keys`]; [`IssuerError::NotInitialized`].
pub fn rotate_keys(
    data_dir: &Path,
    options: &RotateOptions,
) -> Result<RotationReport, IssuerError> {
    let keys: Arc<dyn KeyProvider> = match &options.key_provider {
        Some(k) => Arc::clone(k),
        None => crate::key_setup::open_keys(data_dir)?,
    };
    block_on(async {
        let store = open_store(
            data_dir,
            options.database_url.as_deref(),
            SqliteOptions::default(),
            2,
            options.database_tls_ca.as_deref(),
        )
        .await?;
        let result = async {
            if !pooya_issuer_service::is_initialized(store.as_ref()).await? {
                return Err(IssuerError::NotInitialized);
            }
            if options.finish {
                rotate::finish_rotation(store.as_ref(), keys.as_ref(), unix_now()).await
            } else {
                rotate::rotate_keys(store.as_ref(), keys.as_ref(), options.settle, unix_now()).await
            }
        }
        .await;
        let closing = Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || closing.close()).await;
        result
    })
}
