//! The key provider conformance suite (issue 12): one set of cases every
//! [`KeyProvider`] passes, the file provider and the PKCS#11 one alike.
//!
//! Each case is a public `fn(fn() -> KeysFresh)`: it asks for as many
//! fresh providers as it needs (two, to check that one provider's values
//! do not open in another) and panics when a provider breaks the contract
//! of the [`KeyProvider`] trait. Results are checked against independent
//! computations: card MACs against `pooya-protocol`'s key derivation and
//! ring's HMAC, signatures against ring's Ed25519 verifier (RFC 8032), the
//! activation Diffie-Hellman by opening a request `pooya-protocol` sealed
//! (RFC 9180). A backend runs one `#[test]` per case with
//! [`key_provider_tests!`](crate::key_provider_tests):
//!
//! ```text
//! fn fresh() -> pooya_issuer_conformance::keys::KeysFresh { /* … */ }
//! pooya_issuer_conformance::key_provider_tests!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;

use pooya_issuer_service::keys::{CardKey, HashDomain, KeyProvider, MacRequest};
use pooya_protocol::activation::{
    ActivationPlaintext, encapsulated_key, open_request_with_dh, seal_request,
};
use pooya_protocol::{CardSeed, HashAlgorithm};
use ring::hmac;
use ring::signature::{ED25519, UnparsedPublicKey};

/// A fresh provider (master key version 1 current, no signing or
/// activation key yet) and what keeps it alive (a temporary directory, a
/// token), dropped after it.
pub struct KeysFresh {
    /// The provider.
    pub keys: Arc<dyn KeyProvider>,
    // Declared after `keys`, so dropped after it.
    _guard: Box<dyn Any + Send>,
}

impl KeysFresh {
    /// A provider and what must outlive it.
    pub fn with_guard(keys: Arc<dyn KeyProvider>, guard: impl Any + Send) -> Self {
        Self {
            keys,
            _guard: Box::new(guard),
        }
    }
}

/// Seals open with the same purpose and context, and only then: not with
/// another purpose or context, not tampered, not truncated, not in another
/// provider; every seal has a fresh nonce and hides the plaintext.
pub fn seal_round_trip_and_binding(make: fn() -> KeysFresh) {
    let a = make();
    let b = make();
    let p = &a.keys;
    let sealed = p.seal("seed", b"card-1", b"secret seed bytes").unwrap();
    assert!(!sealed.windows(6).any(|w| w == b"secret"));
    assert_eq!(
        &p.open("seed", b"card-1", &sealed).unwrap()[..],
        b"secret seed bytes"
    );
    assert_eq!(p.sealed_version(&sealed), Some(p.current_version()));
    assert_eq!(
        p.open("seed", b"card-2", &sealed).unwrap_err().code(),
        "crypto"
    );
    assert_eq!(
        p.open("pan", b"card-1", &sealed).unwrap_err().code(),
        "crypto"
    );
    assert_eq!(
        b.keys.open("seed", b"card-1", &sealed).unwrap_err().code(),
        "crypto"
    );
    for i in [0, 5, sealed.len() / 2, sealed.len() - 1] {
        let mut tampered = sealed.clone();
        tampered[i] ^= 1;
        assert!(
            p.open("seed", b"card-1", &tampered).is_err(),
            "byte {i} flipped"
        );
    }
    let last_flipped = {
        let mut t = sealed.clone();
        let l = t.len() - 1;
        t[l] ^= 1;
        t
    };
    assert_eq!(
        p.open("seed", b"card-1", &last_flipped).unwrap_err().code(),
        "crypto"
    );
    assert_eq!(p.open("seed", b"card-1", &[]).unwrap_err().code(), "crypto");
    assert_eq!(
        p.open("seed", b"card-1", &[2, 0, 0, 0, 1, 3])
            .unwrap_err()
            .code(),
        "crypto"
    );
    assert_eq!(
        p.open("seed", b"card-1", &sealed[..sealed.len() - 1])
            .unwrap_err()
            .code(),
        "crypto"
    );
    assert_ne!(
        sealed,
        p.seal("seed", b"card-1", b"secret seed bytes").unwrap()
    );
    // Empty plaintexts and contexts round-trip too.
    let empty = p.seal("x", b"", b"").unwrap();
    assert!(p.open("x", b"", &empty).unwrap().is_empty());
}

/// A keyed hash is stable, differs between domains and between providers.
pub fn keyed_hashes_per_domain(make: fn() -> KeysFresh) {
    let a = make();
    let b = make();
    let data = b"6104337700000001";
    let mut seen = Vec::new();
    for domain in HashDomain::ALL {
        let h = a.keys.keyed_hash(domain, data).unwrap();
        assert_eq!(h, a.keys.keyed_hash(domain, data).unwrap(), "{domain:?}");
        assert_ne!(h, b.keys.keyed_hash(domain, data).unwrap(), "{domain:?}");
        assert_ne!(
            h,
            a.keys.keyed_hash(domain, b"6104337700000002").unwrap(),
            "{domain:?}"
        );
        assert!(!seen.contains(&h), "{domain:?} repeats another domain");
        seen.push(h);
    }
}

fn expected_mac(seed: &CardSeed, key: CardKey, algorithm: HashAlgorithm, msg: &[u8]) -> Vec<u8> {
    let keys = seed.derive_keys();
    let device = seed.device_key();
    let k = match key {
        CardKey::First => keys.first.expose_secret(),
        CardKey::Second => keys.second.expose_secret(),
        CardKey::Transaction => keys.tx.expose_secret(),
        CardKey::Device => device.expose_secret(),
    };
    let alg = match algorithm {
        HashAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HashAlgorithm::Sha512 => hmac::HMAC_SHA512,
    };
    hmac::sign(&hmac::Key::new(alg, k), msg).as_ref().to_vec()
}

/// Card MACs equal HMAC (RFC 2104) under the keys `pooya-protocol`
/// derives from the seed, for every key and hash function, in request
/// order; the blob hides the seed and names the current version.
pub fn card_macs_match_the_protocol(make: fn() -> KeysFresh) {
    let f = make();
    let p = &f.keys;
    let seed = CardSeed::from_bytes([0x5a; 32]);
    let sealed = p.seal_card_keys("card-7", &seed).unwrap();
    assert!(!sealed.windows(8).any(|w| w == [0x5a; 8]));
    assert_eq!(p.sealed_version(&sealed), Some(p.current_version()));
    let messages: [&[u8]; 3] = [
        &[0, 0, 0, 0, 3, 0x8f, 0x2a, 0x11],
        b"OCRA-1:HOTP-SHA1-6:QN08\0data",
        b"",
    ];
    let mut requests = Vec::new();
    for key in CardKey::ALL {
        for algorithm in [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha512,
        ] {
            for message in messages {
                requests.push(MacRequest {
                    key,
                    algorithm,
                    message,
                });
            }
        }
    }
    let macs = p.card_macs("card-7", &sealed, &requests).unwrap();
    assert_eq!(macs.len(), requests.len());
    for (r, mac) in requests.iter().zip(&macs) {
        assert_eq!(
            mac,
            &expected_mac(&seed, r.key, r.algorithm, r.message),
            "{:?} {:?}",
            r.key,
            r.algorithm
        );
    }
    assert!(p.card_macs("card-7", &sealed, &[]).unwrap().is_empty());
    // Another seed gives other MACs.
    let other = p
        .seal_card_keys("card-7", &CardSeed::from_bytes([0x5b; 32]))
        .unwrap();
    assert_ne!(
        p.card_macs("card-7", &other, &requests[..1]).unwrap(),
        macs[..1].to_vec()
    );
}

/// A card's blob is refused for another card id, when tampered, and by
/// another provider.
pub fn card_keys_are_bound_to_the_card(make: fn() -> KeysFresh) {
    let a = make();
    let b = make();
    let seed = CardSeed::from_bytes([9; 32]);
    let sealed = a.keys.seal_card_keys("card-1", &seed).unwrap();
    let req = [MacRequest {
        key: CardKey::First,
        algorithm: HashAlgorithm::Sha1,
        message: b"12345678",
    }];
    assert!(a.keys.card_macs("card-1", &sealed, &req).is_ok());
    assert_eq!(
        a.keys
            .card_macs("card-2", &sealed, &req)
            .unwrap_err()
            .code(),
        "crypto"
    );
    assert_eq!(
        b.keys
            .card_macs("card-1", &sealed, &req)
            .unwrap_err()
            .code(),
        "crypto"
    );
    let mut tampered = sealed.clone();
    let l = tampered.len() - 1;
    tampered[l] ^= 1;
    assert_eq!(
        a.keys
            .card_macs("card-1", &tampered, &req)
            .unwrap_err()
            .code(),
        "crypto"
    );
    assert_eq!(
        a.keys
            .reseal_card_keys("card-2", &sealed)
            .unwrap_err()
            .code(),
        "crypto"
    );
    assert_eq!(
        a.keys.card_macs("card-1", b"", &req).unwrap_err().code(),
        "crypto"
    );
}

/// Ed25519 signatures (RFC 8032) verify with ring under the public key the
/// provider reports, and only for the signed message.
pub fn signatures_verify(make: fn() -> KeysFresh) {
    let f = make();
    let p = &f.keys;
    let (reference, public) = p.create_signing_key().unwrap();
    assert_eq!(p.signing_public_key(&reference).unwrap(), public);
    let sig = p.sign(&reference, b"activation answer").unwrap();
    let verifier = UnparsedPublicKey::new(&ED25519, public);
    verifier.verify(b"activation answer", &sig).unwrap();
    assert!(verifier.verify(b"activation answer!", &sig).is_err());
    // A second key is another key.
    let (reference2, public2) = p.create_signing_key().unwrap();
    assert_ne!(public, public2);
    let sig2 = p.sign(&reference2, b"activation answer").unwrap();
    assert!(verifier.verify(b"activation answer", &sig2).is_err());
    assert!(p.sign(b"garbage", b"m").is_err());
}

fn plaintext() -> ActivationPlaintext {
    ActivationPlaintext {
        phone: "+989121234567".into(),
        code: "1234567897".into(),
        device_public_key: "01".repeat(32),
        device_label: "Pixel".into(),
    }
}

/// The activation key's Diffie-Hellman opens a request sealed to its
/// public key by `pooya_protocol::activation::seal_request` (RFC 9180
/// §4.1, §6.1), and a request sealed to another key does not open.
pub fn activation_dh_opens_a_sealed_request(make: fn() -> KeysFresh) {
    let f = make();
    let p = &f.keys;
    let (reference, public) = p.create_activation_key().unwrap();
    assert_eq!(public[0], 0x04);
    assert_eq!(p.activation_public_key(&reference).unwrap(), public);
    for i in 0u8..3 {
        let (enc, ct) = seal_request(&public, &plaintext(), &[i; 32]).unwrap();
        let point = encapsulated_key(&enc).unwrap();
        let dh = p.activation_agree(&reference, &point).unwrap();
        assert!(open_request_with_dh(&public, &dh, &enc, &ct).unwrap() == plaintext());
    }
    let (reference2, public2) = p.create_activation_key().unwrap();
    assert_ne!(public, public2);
    let (enc, ct) = seal_request(&public, &plaintext(), &[7; 32]).unwrap();
    let point = encapsulated_key(&enc).unwrap();
    let wrong = p.activation_agree(&reference2, &point).unwrap();
    assert_eq!(
        open_request_with_dh(&public, &wrong, &enc, &ct)
            .unwrap_err()
            .code(),
        "not_sealed_to_issuer"
    );
    // Not a point on the curve.
    let mut off = point;
    off[64] ^= 1;
    assert_eq!(
        p.activation_agree(&reference, &off).unwrap_err().code(),
        "crypto"
    );
}

/// Rotation: a new version, made current, seals new values; old values
/// still open until resealed; once the old version is retired, what is
/// still under it is refused (`hsm_key_missing`); the current version is
/// never retired.
pub fn versions_rotate(make: fn() -> KeysFresh) {
    let f = make();
    let p = &f.keys;
    assert_eq!(p.versions().unwrap(), vec![1]);
    assert_eq!(p.current_version(), 1);
    let old = p.seal("pan", b"card-1", b"6104337700000001").unwrap();
    let seed = CardSeed::from_bytes([3; 32]);
    let old_card = p.seal_card_keys("card-1", &seed).unwrap();
    let hash_before = p.keyed_hash(HashDomain::Pan, b"x").unwrap();
    let req = [MacRequest {
        key: CardKey::Second,
        algorithm: HashAlgorithm::Sha256,
        message: b"challenge",
    }];
    let mac = p.card_macs("card-1", &old_card, &req).unwrap();

    assert_eq!(
        p.set_current_version(2).unwrap_err().code(),
        "hsm_key_missing"
    );
    let v2 = p.create_version().unwrap();
    assert_eq!(v2, 2);
    assert_eq!(p.versions().unwrap(), vec![1, 2]);
    assert_eq!(p.current_version(), 1, "a new version is not current yet");
    p.set_current_version(v2).unwrap();
    assert_eq!(p.current_version(), 2);

    let new = p.seal("pan", b"card-1", b"6104337700000002").unwrap();
    assert_eq!(p.sealed_version(&new), Some(2));
    assert_eq!(p.sealed_version(&old), Some(1));
    assert_eq!(
        &p.open("pan", b"card-1", &old).unwrap()[..],
        b"6104337700000001"
    );

    let moved = p.reseal("pan", b"card-1", &old).unwrap();
    assert_eq!(p.sealed_version(&moved), Some(2));
    assert_eq!(
        p.reseal("pan", b"card-2", &old).unwrap_err().code(),
        "crypto"
    );
    let moved_card = p.reseal_card_keys("card-1", &old_card).unwrap();
    assert_eq!(p.sealed_version(&moved_card), Some(2));
    assert_eq!(p.card_macs("card-1", &moved_card, &req).unwrap(), mac);

    assert_eq!(p.retire_version(2).unwrap_err().code(), "invalid_settings");
    p.retire_version(1).unwrap();
    assert_eq!(p.versions().unwrap(), vec![2]);
    assert_eq!(
        p.open("pan", b"card-1", &old).unwrap_err().code(),
        "hsm_key_missing"
    );
    assert_eq!(
        p.card_macs("card-1", &old_card, &req).unwrap_err().code(),
        "hsm_key_missing"
    );
    assert_eq!(
        p.reseal("pan", b"card-1", &old).unwrap_err().code(),
        "hsm_key_missing"
    );
    assert_eq!(
        p.set_current_version(1).unwrap_err().code(),
        "hsm_key_missing"
    );
    assert_eq!(
        &p.open("pan", b"card-1", &moved).unwrap()[..],
        b"6104337700000001"
    );
    assert_eq!(p.card_macs("card-1", &moved_card, &req).unwrap(), mac);
    // Lookup hashes do not rotate.
    assert_eq!(p.keyed_hash(HashDomain::Pan, b"x").unwrap(), hash_before);
    assert_eq!(p.create_version().unwrap(), 3);
}

/// One `#[test]` per key provider case, for a `fn() -> KeysFresh`.
#[macro_export]
macro_rules! key_provider_tests {
    ($make:path) => {
        mod key_provider_conformance {
            use super::*;

            #[test]
            fn seal_round_trip_and_binding() {
                $crate::keys::seal_round_trip_and_binding($make);
            }
            #[test]
            fn keyed_hashes_per_domain() {
                $crate::keys::keyed_hashes_per_domain($make);
            }
            #[test]
            fn card_macs_match_the_protocol() {
                $crate::keys::card_macs_match_the_protocol($make);
            }
            #[test]
            fn card_keys_are_bound_to_the_card() {
                $crate::keys::card_keys_are_bound_to_the_card($make);
            }
            #[test]
            fn signatures_verify() {
                $crate::keys::signatures_verify($make);
            }
            #[test]
            fn activation_dh_opens_a_sealed_request() {
                $crate::keys::activation_dh_opens_a_sealed_request($make);
            }
            #[test]
            fn versions_rotate() {
                $crate::keys::versions_rotate($make);
            }
        }
    };
}
