//! HPKE base-mode opening (RFC 9180) when the recipient's private key is
//! somewhere else: in a PKCS#11 token, which can only do its
//! Diffie-Hellman step (`CKM_ECDH1_DERIVE`). Given that step's output, the
//! rest of the receiver's side is public computation: the KEM's
//! `ExtractAndExpand` (§4.1), the key schedule (§5.1) and one AEAD open
//! (§5.2), for the suite activation uses: DHKEM(P-256, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM. The primitives are ring's; the tests hold
//! this against the `hpke` crate's own sealing.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

/// RFC 9180 §7.1 KEM id of DHKEM(P-256, HKDF-SHA256).
const KEM_ID: u16 = 0x0010;
/// RFC 9180 §7.2 KDF id of HKDF-SHA256.
const KDF_ID: u16 = 0x0001;
/// RFC 9180 §7.3 AEAD id of AES-256-GCM.
const AEAD_ID: u16 = 0x0002;
const MODE_BASE: u8 = 0x00;
const LABEL: &[u8] = b"HPKE-v1";

fn kem_suite() -> Vec<u8> {
    let mut s = b"KEM".to_vec();
    s.extend_from_slice(&KEM_ID.to_be_bytes());
    s
}

fn hpke_suite() -> Vec<u8> {
    let mut s = b"HPKE".to_vec();
    s.extend_from_slice(&KEM_ID.to_be_bytes());
    s.extend_from_slice(&KDF_ID.to_be_bytes());
    s.extend_from_slice(&AEAD_ID.to_be_bytes());
    s
}

/// RFC 9180 §4 `LabeledExtract(salt, label, ikm)`: HKDF-Extract (RFC 5869
/// §2.2, an HMAC keyed with the salt) of `"HPKE-v1" || suite || label ||
/// ikm`.
fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<Vec<u8>> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(LABEL);
    ctx.update(suite);
    ctx.update(label);
    ctx.update(ikm);
    Zeroizing::new(ctx.sign().as_ref().to_vec())
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// RFC 9180 §4 `LabeledExpand(prk, label, info, L)`: HKDF-Expand (RFC 5869
/// §2.3) with info `I2OSP(L, 2) || "HPKE-v1" || suite || label || info`.
fn labeled_expand(
    suite: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk);
    let l = u16::try_from(len).ok()?.to_be_bytes();
    let parts: [&[u8]; 5] = [&l, LABEL, suite, label, info];
    let mut out = Zeroizing::new(vec![0u8; len]);
    prk.expand(&parts, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .ok()?;
    Some(out)
}

/// Opens `ciphertext` (sequence number 0, RFC 9180 §5.2) sealed in base
/// mode to the recipient `pk_r` with encapsulated key `enc`, given `dh`,
/// the x-coordinate of `skR · pkE` (RFC 9180 §4.1 `DH(skR, pkE)`). `None`
/// when it does not open.
pub(crate) fn open_base(
    dh: &[u8; 32],
    enc: &[u8],
    pk_r: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    // §4.1 Decap: ExtractAndExpand(dh, enc || pkRm).
    let kem = kem_suite();
    let eae_prk = labeled_extract(&kem, b"", b"eae_prk", dh);
    let mut kem_context = enc.to_vec();
    kem_context.extend_from_slice(pk_r);
    let shared_secret = labeled_expand(&kem, &eae_prk, b"shared_secret", &kem_context, 32)?;

    // §5.1 KeySchedule, mode_base, no PSK.
    let suite = hpke_suite();
    let psk_id_hash = labeled_extract(&suite, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(&suite, b"", b"info_hash", info);
    let mut context = vec![MODE_BASE];
    context.extend_from_slice(&psk_id_hash);
    context.extend_from_slice(&info_hash);
    let secret = labeled_extract(&suite, &shared_secret, b"secret", b"");
    let key = labeled_expand(&suite, &secret, b"key", &context, 32)?;
    let base_nonce = labeled_expand(&suite, &secret, b"base_nonce", &context, 12)?;

    // §5.2 Open with the first nonce (base_nonce XOR 0).
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(&base_nonce).ok()?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}
