//! The PKCS#11 provider against SoftHSM2: the key provider suite, the
//! start failures with their stable codes, and what only a token does.
//! Every token lives in this test binary's own temporary token directory
//! (`pooya_issuer_pkcs11::testing`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use pooya_issuer_conformance::keys::KeysFresh;
use pooya_issuer_pkcs11::testing::{Token, shared_token};
use pooya_issuer_pkcs11::{Pkcs11Config, Pkcs11KeyProvider};
use pooya_issuer_service::keys::{CardKey, HashDomain, KeyProvider, MacRequest};
use pooya_protocol::{CardSeed, HashAlgorithm};
use zeroize::Zeroizing;

#[allow(clippy::unwrap_used, clippy::expect_used)]
fn token(_name: &str) -> Token {
    shared_token().expect("SoftHSM2 test token")
}

#[allow(clippy::unwrap_used, clippy::expect_used)]
fn fresh() -> KeysFresh {
    let t = token("conf");
    let keys = Pkcs11KeyProvider::create(&t.config()).unwrap();
    KeysFresh::with_guard(Arc::new(keys), t)
}

pooya_issuer_conformance::key_provider_tests!(fresh);

fn start_code(
    result: Result<Pkcs11KeyProvider, pooya_issuer_service::IssuerError>,
) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn a_wrong_pin_is_hsm_pin_incorrect() {
    let t = token("pin");
    Pkcs11KeyProvider::create(&t.config()).unwrap();
    let mut config = t.config();
    config.pin = Zeroizing::new("0000-0000".into());
    assert_eq!(
        start_code(Pkcs11KeyProvider::open(&config)),
        "hsm_pin_incorrect"
    );
    let text = Pkcs11KeyProvider::open(&config).unwrap_err().to_string();
    assert!(!text.contains("0000-0000"), "{text}");
}

#[test]
fn an_unknown_token_label_is_hsm_token_not_found() {
    let t = token("label");
    let mut config = t.config();
    config.token_label = "no such token".into();
    assert_eq!(
        start_code(Pkcs11KeyProvider::open(&config)),
        "hsm_token_not_found"
    );
    assert_eq!(
        start_code(Pkcs11KeyProvider::create(&config)),
        "hsm_token_not_found"
    );
}

#[test]
fn a_token_without_the_keys_is_hsm_key_missing() {
    let t = token("empty");
    let err = Pkcs11KeyProvider::open(&t.config()).unwrap_err();
    assert_eq!(err.code(), "hsm_key_missing");
    assert!(err.to_string().contains("pooya-master-v1"), "{err}");
    // Another prefix on a token holding the default one's keys.
    Pkcs11KeyProvider::create(&t.config()).unwrap();
    let mut other = t.config();
    other.label_prefix = "bank2".into();
    let err = Pkcs11KeyProvider::open(&other).unwrap_err();
    assert_eq!(err.code(), "hsm_key_missing");
    assert!(err.to_string().contains("bank2-master-v1"), "{err}");
}

#[test]
fn a_file_that_is_not_a_module_is_hsm_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.so");
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();
    let config = Pkcs11Config::new(&zeros, "t", Zeroizing::new("1".into()));
    assert_eq!(
        start_code(Pkcs11KeyProvider::open(&config)),
        "hsm_unavailable"
    );
    let missing = Pkcs11Config::new(dir.path().join("nope.so"), "t", Zeroizing::new("1".into()));
    assert_eq!(
        start_code(Pkcs11KeyProvider::create(&missing)),
        "hsm_unavailable"
    );
}

#[test]
fn create_refuses_a_token_that_holds_the_keys_and_open_finds_them() {
    let t = token("twice");
    let first = Pkcs11KeyProvider::create(&t.config()).unwrap();
    let sealed = first.seal("pan", b"card", b"6104").unwrap();
    let hash = first.keyed_hash(HashDomain::Pan, b"6104").unwrap();
    let (signing, signing_pk) = first.create_signing_key().unwrap();
    let (activation, activation_pk) = first.create_activation_key().unwrap();
    let card = first
        .seal_card_keys("card", &CardSeed::from_bytes([1; 32]))
        .unwrap();
    assert_eq!(
        start_code(Pkcs11KeyProvider::create(&t.config())),
        "already_initialized"
    );
    drop(first);
    // As `serve` after `init`: everything is found again in the token.
    let again = Pkcs11KeyProvider::open(&t.config()).unwrap();
    assert_eq!(&again.open("pan", b"card", &sealed).unwrap()[..], b"6104");
    assert_eq!(again.keyed_hash(HashDomain::Pan, b"6104").unwrap(), hash);
    assert_eq!(again.signing_public_key(&signing).unwrap(), signing_pk);
    assert_eq!(
        again.activation_public_key(&activation).unwrap(),
        activation_pk
    );
    let req = [MacRequest {
        key: CardKey::Transaction,
        algorithm: HashAlgorithm::Sha256,
        message: b"m",
    }];
    assert_eq!(again.card_macs("card", &card, &req).unwrap().len(), 1);
    // References are labels, not sealed values.
    assert!(signing.starts_with(b"pkcs11:pooya-signing-"));
    assert!(activation.starts_with(b"pkcs11:pooya-activation-"));
    assert_eq!(again.sealed_version(&signing), None);
    assert_eq!(again.sealed_version(&activation), None);
    // A reference to a key that is not there.
    assert_eq!(
        again
            .signing_public_key(b"pkcs11:pooya-signing-99")
            .unwrap_err()
            .code(),
        "hsm_key_missing"
    );
    assert_eq!(
        again
            .sign(b"pkcs11:pooya-signing-99", b"m")
            .unwrap_err()
            .code(),
        "hsm_key_missing"
    );
}

#[test]
fn versions_made_by_another_process_are_found_on_open() {
    let t = token("versions");
    let p = Pkcs11KeyProvider::create(&t.config()).unwrap();
    assert_eq!(p.create_version().unwrap(), 2);
    let q = Pkcs11KeyProvider::open(&t.config()).unwrap();
    assert_eq!(q.versions().unwrap(), vec![1, 2]);
    assert_eq!(
        q.current_version(),
        2,
        "the highest version is current on open"
    );
    // Both made version 3's label only once between them.
    assert_eq!(q.create_version().unwrap(), 3);
    assert_eq!(p.create_version().unwrap(), 4);
}

/// A node opened before `rotate-keys` made a version (another provider on
/// the same token) adopts it when the database names it, and opens what
/// the other sealed under it.
#[test]
fn a_version_made_after_open_is_found_when_named() {
    let t = token("later");
    let node = Pkcs11KeyProvider::create(&t.config()).unwrap();
    let rotator = Pkcs11KeyProvider::open(&t.config()).unwrap();
    let v = rotator.create_version().unwrap();
    rotator.set_current_version(v).unwrap();
    let sealed = rotator.seal("p", b"c", b"under the new version").unwrap();
    assert_eq!(node.sealed_version(&sealed), Some(v));
    assert_eq!(
        &node.open("p", b"c", &sealed).unwrap()[..],
        b"under the new version"
    );
    node.set_current_version(v).unwrap();
    assert_eq!(
        node.sealed_version(&node.seal("p", b"c", b"x").unwrap()),
        Some(v)
    );
    assert_eq!(
        node.set_current_version(v + 1).unwrap_err().code(),
        "hsm_key_missing"
    );
}

/// Card MACs leave no session objects behind, also when a request fails.
#[test]
fn card_macs_destroy_their_session_objects() {
    let t = token("objects");
    let mut config = t.config();
    config.sessions = 1;
    let p = Pkcs11KeyProvider::create(&config).unwrap();
    let seed = CardSeed::from_bytes([4; 32]);
    let card = p.seal_card_keys("c", &seed).unwrap();
    let before = p.object_count().unwrap();
    let req = [MacRequest {
        key: CardKey::First,
        algorithm: HashAlgorithm::Sha1,
        message: b"m",
    }];
    for _ in 0..5 {
        p.card_macs("c", &card, &req).unwrap();
        p.reseal_card_keys("c", &card).unwrap();
        assert_eq!(
            p.card_macs("other", &card, &req).unwrap_err().code(),
            "crypto"
        );
    }
    assert_eq!(p.object_count().unwrap(), before);
}

/// Many threads share a small pool (the verification path on tokio's
/// worker threads) and get the same answers as one thread.
#[test]
fn concurrent_callers_share_the_pool() {
    let t = token("pool");
    let mut config = t.config();
    config.sessions = 2;
    let p = Arc::new(Pkcs11KeyProvider::create(&config).unwrap());
    let seed = CardSeed::from_bytes([8; 32]);
    let card = p.seal_card_keys("c", &seed).unwrap();
    let req = [MacRequest {
        key: CardKey::Second,
        algorithm: HashAlgorithm::Sha256,
        message: b"challenge",
    }];
    let expected_mac = p.card_macs("c", &card, &req).unwrap();
    let expected_hash = p.keyed_hash(HashDomain::ApiToken, b"t").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let p = Arc::clone(&p);
            let card = card.clone();
            let expected_mac = expected_mac.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(p.card_macs("c", &card, &req).unwrap(), expected_mac);
                    assert_eq!(
                        p.keyed_hash(HashDomain::ApiToken, b"t").unwrap(),
                        expected_hash
                    );
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
}
