//! The key provider suite for the file provider (master key files in a
//! temporary directory, so versions can be made and retired).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use pooya_issuer_conformance::keys::KeysFresh;
use pooya_issuer_service::FileKeyProvider;

fn fresh() -> KeysFresh {
    let dir = tempfile::tempdir().unwrap();
    let keys = FileKeyProvider::create(&dir.path().join("master.key")).unwrap();
    KeysFresh::with_guard(Arc::new(keys), dir)
}

pooya_issuer_conformance::key_provider_tests!(fresh);
