//! The store conformance suite (`pooya-issuer-conformance`) against
//! [`SqliteStore`]: one `#[tokio::test]` per case, each on a fresh
//! database in its own temporary directory.

use std::sync::Arc;

use pooya_issuer_conformance::{Fresh, conformance_tests};
use pooya_issuer_service::Store;
use pooya_issuer_sqlite::{SqliteOptions, SqliteStore};

#[allow(clippy::unwrap_used, clippy::expect_used)]
async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("issuer.db"), SqliteOptions::default())
        .expect("a fresh SQLite store");
    let store: Arc<dyn Store> = Arc::new(store);
    Fresh::with_guard(store, dir)
}

conformance_tests!(fresh);

/// The whole suite through [`pooya_issuer_conformance::run_all`], the
/// entry point a backend without the macro uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes() {
    pooya_issuer_conformance::run_all(fresh).await;
}
