//! `pooya-issuer init`: the data directory, the master key, the database
//! and, through the service's [`initialize`], the issuer's signing and
//! activation keys and one API token per role.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use pooya_issuer_postgres::{PostgresOptions, PostgresStore};
use pooya_issuer_service::Store;
use pooya_issuer_service::{InitOutput, IssuerError, KeyProvider, initialize, is_initialized};
use pooya_issuer_sqlite::{DB_FILE, SqliteOptions, SqliteStore, secure_data_dir};

/// Options of [`init`].
#[derive(Clone, Default)]
pub struct InitOptions {
    /// The key provider to seal with; `None` creates `master.key` (mode
    /// 0600) in the data directory.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
    /// A PostgreSQL database (`postgres://…`) instead of the SQLite file
    /// in the data directory. Never logged: it may hold a password.
    pub database_url: Option<String>,
    /// With `sslmode=require`: the database's certificate authorities
    /// (PEM).
    pub database_tls_ca: Option<std::path::PathBuf>,
    /// Keep the keys in this PKCS#11 token instead of `master.key`
    /// (`init --keys pkcs11`); ignored when `key_provider` is given.
    pub pkcs11: Option<crate::key_setup::Pkcs11Setup>,
}

impl fmt::Debug for InitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitOptions")
            .field(
                "key_provider",
                &self.key_provider.as_ref().map(|_| "custom"),
            )
            .field("postgres", &self.database_url.is_some())
            .field("pkcs11", &self.pkcs11)
            .finish()
    }
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

/// Runs a future to completion on a runtime of its own (the
/// synchronous [`init`] over the asynchronous store).
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, IssuerError>>,
) -> Result<T, IssuerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| IssuerError::Server(format!("tokio runtime: {e}")))?
        .block_on(f)
}

/// Opens the issuer's store: PostgreSQL at `database_url`, or the SQLite
/// file of `data_dir`.
///
/// # Errors
/// [`IssuerError::Storage`], [`IssuerError::SchemaTooNew`],
/// [`IssuerError::InvalidSettings`] for a URL PostgreSQL refuses.
pub(crate) async fn open_store(
    data_dir: &Path,
    database_url: Option<&str>,
    sqlite: SqliteOptions,
    pool_size: usize,
    tls_ca: Option<&Path>,
) -> Result<Arc<dyn Store>, IssuerError> {
    Ok(match database_url {
        Some(url) => Arc::new(
            PostgresStore::connect(
                url,
                PostgresOptions {
                    pool_size,
                    tls_ca: tls_ca.map(Path::to_owned),
                    ..PostgresOptions::default()
                },
            )
            .await?,
        ),
        None => {
            let dir = data_dir.to_owned();
            Arc::new(
                tokio::task::spawn_blocking(move || SqliteStore::open_dir(&dir, sqlite))
                    .await
                    .map_err(|e| IssuerError::Server(format!("opening the database: {e}")))??,
            )
        }
    })
}

/// Creates an issuer in `data_dir` (made if missing, mode 0700): the
/// database with its schema, the master key file (unless
/// `options.key_provider` is given), a fresh Ed25519 signing key and P-256
/// activation key (both sealed in the database) and one API token per role
/// (stored as keyed hashes).
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
    secure_data_dir(data_dir)?;
    if options.database_url.is_none() {
        create_private(&data_dir.join(DB_FILE))?;
    }
    let out = block_on(async {
        let store = open_store(
            data_dir,
            options.database_url.as_deref(),
            SqliteOptions::default(),
            2,
            options.database_tls_ca.as_deref(),
        )
        .await?;
        let out = initialize_in(data_dir, options, store.as_ref()).await;
        let closing = Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || closing.close()).await;
        out
    })?;
    secure_data_dir(data_dir)?;
    tracing::info!(dir = %data_dir.display(), "issuer initialised");
    Ok(out)
}

async fn initialize_in(
    data_dir: &Path,
    options: &InitOptions,
    store: &dyn Store,
) -> Result<InitOutput, IssuerError> {
    {
        if is_initialized(store).await? {
            return Err(IssuerError::AlreadyInitialized);
        }
        let keys: Arc<dyn KeyProvider> = match &options.key_provider {
            Some(k) => Arc::clone(k),
            None => crate::key_setup::create_keys(data_dir, options.pkcs11.as_ref())?,
        };
        initialize(store, keys.as_ref()).await
    }
}
