//! What SoftHSM2 2.6.1 does that the provider's design depends on
//! (docs/pkcs11-notes.md, "SoftHSM2 findings"), checked against the token
//! itself so a SoftHSM2 that changes is noticed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use pooya_issuer_pkcs11::testing::shared_token;

#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn session() -> Session {
    // C_Initialize once per process (PKCS#11 v2.40 §5.4), as the provider.
    static CONTEXT: OnceLock<Pkcs11> = OnceLock::new();
    let token = shared_token().expect("SoftHSM2 test token");
    let ctx = CONTEXT.get_or_init(|| {
        let ctx = Pkcs11::new(&token.module).unwrap();
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        ctx
    });
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == token.label)
        .expect("the token's slot");
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(
            UserType::User,
            Some(&AuthPin::new(token.pin.clone().into())),
        )
        .unwrap();
    session
}

#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn aes_key(session: &Session) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
            ],
        )
        .unwrap()
}

#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn hmac_key(session: &Session, len: usize) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Sign(true),
            Attribute::Value(vec![0x42; len]),
        ])
        .unwrap()
}

#[allow(clippy::panic)]
fn rv(e: Error) -> RvError {
    match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other}"),
    }
}

/// C_WrapKey does not take CKM_AES_GCM, so card keys are wrapped with
/// CKM_AES_KEY_WRAP_PAD (RFC 5649) and bound to the card by an outer GCM
/// seal.
#[test]
fn gcm_does_not_wrap_and_key_wrap_pad_does() {
    let s = session();
    let master = aes_key(&s);
    let key = hmac_key(&s, 64);
    let mut iv = [7u8; 12];
    let params = GcmParams::new(&mut iv, b"card-1", 128.into()).unwrap();
    let err = s
        .wrap_key(&Mechanism::AesGcm(params), master, key)
        .unwrap_err();
    assert_eq!(rv(err), RvError::MechanismInvalid);
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, master, key).unwrap();
    assert_eq!(wrapped.len(), 64 + 8, "RFC 5649: the key and one block");
}

/// CKM_SHA512_HMAC refuses a key shorter than 64 bytes, which is why card
/// keys are imported zero-padded to 64 bytes; the padded key gives the
/// 32-byte key's HMAC (RFC 2104 §2), checked in the key provider suite.
#[test]
fn sha512_hmac_wants_a_64_byte_key() {
    let s = session();
    let short = hmac_key(&s, 32);
    assert_eq!(
        rv(s.sign(&Mechanism::Sha512Hmac, short, b"m").unwrap_err()),
        RvError::KeySizeRange
    );
    assert_eq!(
        s.sign(&Mechanism::Sha256Hmac, short, b"m").unwrap().len(),
        32
    );
    let long = hmac_key(&s, 64);
    assert_eq!(
        s.sign(&Mechanism::Sha512Hmac, long, b"m").unwrap().len(),
        64
    );
}

/// A GCM tag that does not verify is CKR_GENERAL_ERROR, not
/// CKR_ENCRYPTED_DATA_INVALID.
#[test]
fn a_wrong_gcm_tag_is_a_general_error() {
    let s = session();
    let key = aes_key(&s);
    let mut iv = [1u8; 12];
    let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
    let mut ct = s
        .encrypt(&Mechanism::AesGcm(params), key, b"plaintext")
        .unwrap();
    let last = ct.len() - 1;
    ct[last] ^= 1;
    let mut iv = [1u8; 12];
    let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
    assert_eq!(
        rv(s.decrypt(&Mechanism::AesGcm(params), key, &ct).unwrap_err()),
        RvError::GeneralError
    );
}
