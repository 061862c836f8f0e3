//! The store conformance suite (`pooya-issuer-conformance`) against
//! [`PostgresStore`]: one `#[tokio::test]` per case, each on a fresh
//! database of the test process's throwaway cluster
//! (`pooya-testpg`, or `POOYA_TEST_POSTGRES_URL`).

use std::sync::Arc;

use pooya_issuer_conformance::{Fresh, conformance_tests};
use pooya_issuer_postgres::{PostgresOptions, PostgresStore};
use pooya_issuer_service::Store;
use pooya_testpg::TestPostgres;

#[allow(clippy::unwrap_used, clippy::expect_used)]
async fn fresh() -> Fresh {
    let url = tokio::task::spawn_blocking(|| {
        TestPostgres::shared()
            .expect("a PostgreSQL server")
            .fresh_database()
            .expect("a fresh database")
    })
    .await
    .expect("the database thread");
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("a fresh PostgreSQL store");
    let store: Arc<dyn Store> = Arc::new(store);
    Fresh::new(store)
}

conformance_tests!(fresh);
