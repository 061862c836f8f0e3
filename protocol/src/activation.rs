//! Activation v2 (docs/protocol.md, "Activation"): the request sealed to
//! the issuer with HPKE, the transcript both sides sign, check and derive
//! the card seed from, and the wire bodies of `POST /v1/activations`.
//!
//! 1. The phone makes a fresh X25519 key (RFC 7748) and seals
//!    [`ActivationPlaintext`] (phone, code, that key, a device label) to the
//!    issuer's static P-256 **activation key**, which it pinned beside the
//!    issuer's Ed25519 key: HPKE (RFC 9180) base mode,
//!    DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info
//!    [`HPKE_INFO`], empty AAD. On the wire: [`SealedActivationRequest`].
//! 2. The issuer opens it ([`open_request`]); a request that does not open
//!    under its key is refused ([`ProtocolError::NotSealedToIssuer`]).
//! 3. The issuer answers ([`ActivationResponse`]) with an ephemeral X25519
//!    key, the card's display data, policies, its clock and an Ed25519
//!    signature over the [`ActivationTranscript`], which binds the HPKE
//!    encapsulated key and the sealed request byte for byte.
//! 4. Both sides derive the seed with [`derive_card_seed`] from the X25519
//!    shared secret and the transcript; the seed never crosses the wire.
//!
//! A TLS man in the middle sees neither the code nor the device key, cannot
//! substitute its own key (it is inside the AEAD), and cannot swap the
//! encapsulated key or the ciphertext without the issuer refusing it or the
//! phone refusing the signature.
//!
//! Pure: the HPKE ephemeral key is derived from input keying material the
//! caller passes in (`ikm_e`, RFC 9180 §7.1.3 `DeriveKeyPair`), so the
//! caller supplies the randomness and the worked vector is reproducible.

use core::convert::Infallible;
use core::fmt;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use ring::{digest, hkdf};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ProtocolError;
use crate::pin::Policies;
use crate::secret::{CardSeed, SEED_LEN};

/// Domain label at the start of every activation transcript (v2).
pub const TRANSCRIPT_LABEL: &[u8] = b"pooya/v2/activation";
/// HKDF info label of the card seed.
pub const SEED_LABEL: &[u8] = b"pooya/v2/card-seed";
/// HPKE `info` of the sealed activation request (RFC 9180 §5.1).
pub const HPKE_INFO: &[u8] = b"pooya/v2/activation-request";
/// Length of an activation public key: a SEC1 uncompressed P-256 point.
pub const ACTIVATION_KEY_LEN: usize = 65;
/// Length of the HPKE encapsulated key (`enc`) of DHKEM(P-256): also an
/// uncompressed point (RFC 9180 §7.1, `Nenc` = 65).
pub const ENC_LEN: usize = 65;
/// Largest sealed request accepted, in bytes (the plaintext is a few
/// hundred bytes; the AEAD adds 16).
pub const MAX_SEALED_LEN: usize = 2048;

type Kem = DhP256HkdfSha256;

/// The issuer's static activation private key: a P-256 scalar. Zeroized on
/// drop; `Debug` shows nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ActivationSecretKey([u8; 32]);

impl fmt::Debug for ActivationSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActivationSecretKey(<redacted>)")
    }
}

impl ActivationSecretKey {
    /// The key pair RFC 9180 §7.1.3 `DeriveKeyPair(ikm)` gives: the issuer
    /// calls it once at `init` with 32 random bytes.
    pub fn derive(ikm: &[u8; 32]) -> Self {
        let (sk, _) = Kem::derive_keypair(ikm);
        let mut out = [0u8; 32];
        out.copy_from_slice(&sk.to_bytes());
        Self(out)
    }

    /// A key from its 32 big-endian scalar bytes.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidActivationKey`] for zero or a scalar not
    /// below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| ProtocolError::InvalidActivationKey)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The scalar, for sealing under the issuer's master key.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key, SEC1 uncompressed (`04 ‖ x ‖ y`).
    pub fn public_key(&self) -> [u8; ACTIVATION_KEY_LEN] {
        let mut out = [0u8; ACTIVATION_KEY_LEN];
        if let Ok(sk) = <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.0) {
            out.copy_from_slice(&Kem::sk_to_pk(&sk).to_bytes());
        }
        out
    }

    /// P-256 Diffie-Hellman with `peer` (an uncompressed SEC 1 point): the
    /// x-coordinate of the shared point (SEC 1 §3.3.1), RFC 9180 §4.1
    /// `DH(skR, pkE)`. What an HSM's `CKM_ECDH1_DERIVE` gives.
    ///
    /// # Errors
    /// [`ProtocolError::NotSealedToIssuer`] for a peer that is not a
    /// point; [`ProtocolError::InvalidActivationKey`] for a bad scalar.
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, ProtocolError> {
        let secret = p256::SecretKey::from_slice(&self.0)
            .map_err(|_| ProtocolError::InvalidActivationKey)?;
        let public =
            p256::PublicKey::from_sec1_bytes(peer).map_err(|_| ProtocolError::NotSealedToIssuer)?;
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes().as_slice());
        Ok(out)
    }

    fn hpke_key(&self) -> Result<<Kem as hpke::Kem>::PrivateKey, ProtocolError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.0)
            .map_err(|_| ProtocolError::InvalidActivationKey)
    }
}

/// Checks that `bytes` is an activation public key: a SEC1 uncompressed
/// P-256 point on the curve (RFC 9180 §7.1.1 `DeserializePublicKey`).
///
/// # Errors
/// [`ProtocolError::InvalidActivationKey`].
pub fn check_activation_key(bytes: &[u8]) -> Result<[u8; ACTIVATION_KEY_LEN], ProtocolError> {
    let key: [u8; ACTIVATION_KEY_LEN] = bytes
        .try_into()
        .map_err(|_| ProtocolError::InvalidActivationKey)?;
    if key[0] != 0x04 {
        return Err(ProtocolError::InvalidActivationKey);
    }
    <Kem as hpke::Kem>::PublicKey::from_bytes(&key)
        .map_err(|_| ProtocolError::InvalidActivationKey)?;
    Ok(key)
}

/// What the phone seals: the JSON object
/// `{"phone","code","device_public_key","device_label"}`. `Debug` hides
/// the code; every field is wiped on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct ActivationPlaintext {
    /// The customer's mobile number, as registered at the ATM.
    pub phone: String,
    /// The activation code (both parts, when the bank splits it).
    pub code: String,
    /// The phone's X25519 public key, hex (32 bytes).
    pub device_public_key: String,
    /// A name for the device, shown to the bank's operators and in the
    /// customer's activation notice.
    pub device_label: String,
}

impl fmt::Debug for ActivationPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivationPlaintext")
            .field("phone", &self.phone)
            .field("code", &"<redacted>")
            .field("device_public_key", &self.device_public_key)
            .field("device_label", &self.device_label)
            .finish()
    }
}

/// `POST /v1/activations` request body: the HPKE encapsulated key and the
/// sealed [`ActivationPlaintext`], both hex.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedActivationRequest {
    /// The HPKE encapsulated key `enc`, hex (65 bytes).
    pub enc: String,
    /// The HPKE ciphertext of the plaintext's JSON, hex.
    pub sealed: String,
}

/// `POST /v1/activations` answer body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationResponse {
    /// The issuer's identifier of the card.
    pub card_id: String,
    /// The masked card number (`6104 33•• •••• 1234`).
    pub masked_pan: String,
    /// The last four digits.
    pub last4: String,
    /// The bank's name.
    pub bank_name: String,
    /// PIN policies and cap ladder.
    pub policies: Policies,
    /// The issuer's clock, Unix seconds.
    pub server_time: u64,
    /// The issuer's ephemeral X25519 public key, hex (32 bytes).
    pub issuer_ephemeral_public_key: String,
    /// Ed25519 signature over the transcript, hex (64 bytes).
    pub signature: String,
}

/// A deterministic "random" source for HPKE's key generation: it yields
/// `ikm_e` (HPKE asks for exactly `Nsk` = 32 bytes once, RFC 9180 §7.1.3),
/// then, should it ever ask again, SHA-256 of the block counter and
/// `ikm_e`, so no two requests of bytes repeat.
struct IkmSource {
    ikm: Zeroizing<[u8; 32]>,
    block: u64,
    buf: Zeroizing<Vec<u8>>,
}

impl IkmSource {
    fn new(ikm: &[u8; 32]) -> Self {
        Self {
            ikm: Zeroizing::new(*ikm),
            block: 0,
            buf: Zeroizing::new(ikm.to_vec()),
        }
    }
}

impl hpke::rand_core::TryRng for IkmSource {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst.iter_mut() {
            if self.buf.is_empty() {
                self.block += 1;
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(&self.block.to_be_bytes());
                ctx.update(&self.ikm[..]);
                self.buf = Zeroizing::new(ctx.finish().as_ref().to_vec());
            }
            *byte = self.buf.remove(0);
        }
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for IkmSource {}

/// Seals `plaintext` to the issuer's activation key (RFC 9180 §6.1
/// `SealBase(pkR, info = HPKE_INFO, aad = "", pt)`), with the ephemeral key
/// `DeriveKeyPair(ikm_e)`. Returns `(enc, ciphertext)`.
///
/// # Errors
/// [`ProtocolError::InvalidActivationKey`] for a key that is not a P-256
/// point.
pub fn seal_request(
    activation_key: &[u8],
    plaintext: &ActivationPlaintext,
    ikm_e: &[u8; 32],
) -> Result<([u8; ENC_LEN], Vec<u8>), ProtocolError> {
    let key = check_activation_key(activation_key)?;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&key)
        .map_err(|_| ProtocolError::InvalidActivationKey)?;
    let json =
        Zeroizing::new(
            serde_json::to_vec(plaintext).map_err(|_| ProtocolError::InvalidField {
                field: "activation",
                reason: "cannot encode",
            })?,
        );
    let mut rng = IkmSource::new(ikm_e);
    let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        &json,
        b"",
        &mut rng,
    )
    .map_err(|_| ProtocolError::InvalidActivationKey)?;
    let mut out = [0u8; ENC_LEN];
    out.copy_from_slice(&enc.to_bytes());
    Ok((out, ct))
}

/// Opens a sealed request (RFC 9180 §6.1 `OpenBase`) and parses its
/// plaintext.
///
/// # Errors
/// [`ProtocolError::NotSealedToIssuer`] when `enc` is not a point, the
/// ciphertext is too long, or the AEAD refuses it; [`ProtocolError::InvalidField`]
/// (`activation`) when what opened is not the expected JSON.
pub fn open_request(
    key: &ActivationSecretKey,
    enc: &[u8],
    sealed: &[u8],
) -> Result<ActivationPlaintext, ProtocolError> {
    if sealed.len() > MAX_SEALED_LEN {
        return Err(ProtocolError::NotSealedToIssuer);
    }
    let sk = key.hpke_key()?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| ProtocolError::NotSealedToIssuer)?;
    let plain = Zeroizing::new(
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            HPKE_INFO,
            sealed,
            b"",
        )
        .map_err(|_| ProtocolError::NotSealedToIssuer)?,
    );
    serde_json::from_slice(&plain).map_err(|_| ProtocolError::InvalidField {
        field: "activation",
        reason: "the sealed request is not the expected JSON",
    })
}

/// The encapsulated key of a sealed request, checked to be an
/// uncompressed P-256 point (RFC 9180 §7.1.1 `DeserializePublicKey`): what
/// the issuer's key holder is asked to do Diffie-Hellman with.
///
/// # Errors
/// [`ProtocolError::NotSealedToIssuer`].
pub fn encapsulated_key(enc: &[u8]) -> Result<[u8; ENC_LEN], ProtocolError> {
    let point: [u8; ENC_LEN] = enc
        .try_into()
        .map_err(|_| ProtocolError::NotSealedToIssuer)?;
    if point[0] != 0x04 {
        return Err(ProtocolError::NotSealedToIssuer);
    }
    <Kem as hpke::Kem>::EncappedKey::from_bytes(&point)
        .map_err(|_| ProtocolError::NotSealedToIssuer)?;
    Ok(point)
}

/// Opens a sealed request like [`open_request`] when the private key is
/// held elsewhere (an HSM): `dh` is `DH(skR, pkE)` of the issuer's key
/// with [`encapsulated_key`]`(enc)`, and `recipient_public` the issuer's
/// activation public key (RFC 9180 §4.1 `Decap` uses it in the KEM
/// context).
///
/// # Errors
/// As [`open_request`].
pub fn open_request_with_dh(
    recipient_public: &[u8; ACTIVATION_KEY_LEN],
    dh: &[u8; 32],
    enc: &[u8],
    sealed: &[u8],
) -> Result<ActivationPlaintext, ProtocolError> {
    if sealed.len() > MAX_SEALED_LEN {
        return Err(ProtocolError::NotSealedToIssuer);
    }
    encapsulated_key(enc)?;
    let plain = crate::hpke_open::open_base(dh, enc, recipient_public, HPKE_INFO, b"", sealed)
        .ok_or(ProtocolError::NotSealedToIssuer)?;
    serde_json::from_slice(&plain).map_err(|_| ProtocolError::InvalidField {
        field: "activation",
        reason: "the sealed request is not the expected JSON",
    })
}

/// Everything an activation binds together: the exact bytes the issuer
/// signs and both sides feed into the seed derivation. `Debug` hides the
/// code.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationTranscript<'a> {
    /// The HPKE encapsulated key of the request, as sent.
    pub enc: &'a [u8],
    /// The HPKE ciphertext of the request, as sent.
    pub sealed: &'a [u8],
    /// The normalised phone number (`+989…`).
    pub phone: &'a str,
    /// The normalised activation code (ASCII digits).
    pub code: &'a str,
    /// The phone's X25519 public key.
    pub device_public_key: &'a [u8],
    /// The device label.
    pub device_label: &'a str,
    /// The issuer's ephemeral X25519 public key.
    pub issuer_ephemeral_public_key: &'a [u8],
    /// The card id.
    pub card_id: &'a str,
    /// The masked PAN.
    pub masked_pan: &'a str,
    /// The last four digits.
    pub last4: &'a str,
    /// The bank name.
    pub bank_name: &'a str,
    /// The policies.
    pub policies: &'a Policies,
    /// The issuer's clock.
    pub server_time: u64,
}

impl fmt::Debug for ActivationTranscript<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivationTranscript")
            .field("phone", &self.phone)
            .field("code", &"<redacted>")
            .field("device_label", &self.device_label)
            .field("card_id", &self.card_id)
            .field("server_time", &self.server_time)
            .finish_non_exhaustive()
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

impl ActivationTranscript<'_> {
    /// The canonical bytes: every field, the label first, as a 4-byte
    /// big-endian length and its bytes; numbers as 8-byte big-endian
    /// fields, in the order of the struct (docs/protocol.md, "Activation
    /// transcript"). The code is inside, so the bytes are secret until the
    /// code is spent.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Vec::with_capacity(1024);
        put(&mut out, TRANSCRIPT_LABEL);
        put(&mut out, self.enc);
        put(&mut out, self.sealed);
        put(&mut out, self.phone.as_bytes());
        put(&mut out, self.code.as_bytes());
        put(&mut out, self.device_public_key);
        put(&mut out, self.device_label.as_bytes());
        put(&mut out, self.issuer_ephemeral_public_key);
        put(&mut out, self.card_id.as_bytes());
        put(&mut out, self.masked_pan.as_bytes());
        put(&mut out, self.last4.as_bytes());
        put(&mut out, self.bank_name.as_bytes());
        let p = self.policies;
        for policy in [&p.first, &p.second] {
            put(&mut out, &u64::from(policy.digits).to_be_bytes());
            put(&mut out, &policy.step.to_be_bytes());
            put(&mut out, &u64::from(policy.window).to_be_bytes());
        }
        let tiers: Vec<u8> = p
            .cap_ladder
            .tiers()
            .iter()
            .flat_map(|t| t.to_be_bytes())
            .collect();
        put(&mut out, &tiers);
        put(&mut out, &self.server_time.to_be_bytes());
        Zeroizing::new(out)
    }
}

struct SeedLen;
impl hkdf::KeyType for SeedLen {
    fn len(&self) -> usize {
        SEED_LEN
    }
}

/// The card seed: HKDF-SHA256 (RFC 5869) with the X25519 shared secret as
/// input key material, SHA-256 of the transcript as salt and
/// [`SEED_LABEL`] as info, 32 bytes.
pub fn derive_card_seed(shared_secret: &[u8], transcript: &[u8]) -> CardSeed {
    let salt = digest::digest(&digest::SHA256, transcript);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt.as_ref()).extract(shared_secret);
    let mut out = Zeroizing::new([0u8; SEED_LEN]);
    let info = [SEED_LABEL];
    // Fails only for outputs over 255 hash lengths or a length mismatch;
    // a fixed 32-byte output rules out both.
    #[allow(clippy::expect_used)]
    prk.expand(&info, SeedLen)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 with a 32-byte output cannot fail");
    CardSeed::from_bytes(*out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plaintext() -> ActivationPlaintext {
        ActivationPlaintext {
            phone: "+989121234567".into(),
            code: "1234567897".into(),
            device_public_key: hex::encode([1u8; 32]),
            device_label: "Pixel".into(),
        }
    }

    fn transcript<'a>(
        policies: &'a Policies,
        enc: &'a [u8],
        sealed: &'a [u8],
    ) -> ActivationTranscript<'a> {
        ActivationTranscript {
            enc,
            sealed,
            phone: "+989121234567",
            code: "1234567897",
            device_public_key: &[1; 32],
            device_label: "Pixel",
            issuer_ephemeral_public_key: &[2; 32],
            card_id: "c1",
            masked_pan: "6104 33•• •••• 0001",
            last4: "0001",
            bank_name: "Bank Mellat",
            policies,
            server_time: 1_700_000_000,
        }
    }

    #[test]
    fn sealed_requests_open_only_under_the_right_key() {
        let key = ActivationSecretKey::derive(&[7; 32]);
        let other = ActivationSecretKey::derive(&[8; 32]);
        let (enc, ct) = seal_request(&key.public_key(), &plaintext(), &[9; 32]).unwrap();
        assert_eq!(open_request(&key, &enc, &ct).unwrap(), plaintext());
        assert_eq!(
            open_request(&other, &enc, &ct).unwrap_err().code(),
            "not_sealed_to_issuer"
        );
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            assert_eq!(
                open_request(&key, &enc, &bad).unwrap_err(),
                ProtocolError::NotSealedToIssuer
            );
        }
        let mut bad_enc = enc;
        bad_enc[40] ^= 1;
        assert_eq!(
            open_request(&key, &bad_enc, &ct).unwrap_err(),
            ProtocolError::NotSealedToIssuer
        );
        // Another sender's encapsulation with the same ciphertext.
        let (enc2, _) = seal_request(&key.public_key(), &plaintext(), &[10; 32]).unwrap();
        assert_eq!(
            open_request(&key, &enc2, &ct).unwrap_err(),
            ProtocolError::NotSealedToIssuer
        );
    }

    /// The HSM path (Diffie-Hellman outside, RFC 9180 key schedule here)
    /// opens exactly what the `hpke` crate's open does, and refuses the
    /// same tampering.
    #[test]
    fn opening_with_an_outside_dh_matches_the_hpke_crate() {
        for seed in 0u8..8 {
            let key = ActivationSecretKey::derive(&[seed; 32]);
            let pk = key.public_key();
            let (enc, ct) = seal_request(&pk, &plaintext(), &[seed ^ 0x5a; 32]).unwrap();
            let point = encapsulated_key(&enc).unwrap();
            let dh = key.agree(&point).unwrap();
            assert_eq!(
                open_request_with_dh(&pk, &dh, &enc, &ct).unwrap(),
                open_request(&key, &enc, &ct).unwrap()
            );
            let mut bad = ct.clone();
            bad[seed as usize] ^= 1;
            assert_eq!(
                open_request_with_dh(&pk, &dh, &enc, &bad).unwrap_err(),
                ProtocolError::NotSealedToIssuer
            );
            let other = ActivationSecretKey::derive(&[seed.wrapping_add(100); 32]);
            let wrong_dh = other.agree(&point).unwrap();
            assert_eq!(
                open_request_with_dh(&pk, &wrong_dh, &enc, &ct).unwrap_err(),
                ProtocolError::NotSealedToIssuer
            );
            assert_eq!(
                open_request_with_dh(&other.public_key(), &dh, &enc, &ct).unwrap_err(),
                ProtocolError::NotSealedToIssuer
            );
        }
        assert_eq!(
            encapsulated_key(&[4u8; 65]).unwrap_err(),
            ProtocolError::NotSealedToIssuer
        );
        assert_eq!(
            encapsulated_key(&[4u8; 64]).unwrap_err(),
            ProtocolError::NotSealedToIssuer
        );
    }

    #[test]
    fn sealing_is_deterministic_in_ikm_and_fresh_otherwise() {
        let key = ActivationSecretKey::derive(&[7; 32]);
        let a = seal_request(&key.public_key(), &plaintext(), &[9; 32]).unwrap();
        let b = seal_request(&key.public_key(), &plaintext(), &[9; 32]).unwrap();
        let c = seal_request(&key.public_key(), &plaintext(), &[3; 32]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.0, c.0);
        assert_ne!(a.1, c.1);
    }

    #[test]
    fn activation_keys_are_checked() {
        let key = ActivationSecretKey::derive(&[7; 32]);
        let pk = key.public_key();
        assert_eq!(pk[0], 4);
        assert!(check_activation_key(&pk).is_ok());
        let mut off_curve = pk;
        off_curve[64] ^= 1;
        for bad in [&off_curve[..], &pk[..64], &[0u8; 65][..]] {
            assert_eq!(
                check_activation_key(bad).unwrap_err().code(),
                "invalid_activation_key"
            );
            assert_eq!(
                seal_request(bad, &plaintext(), &[1; 32])
                    .unwrap_err()
                    .code(),
                "invalid_activation_key"
            );
        }
        assert!(ActivationSecretKey::from_bytes(&[0; 32]).is_err());
        assert!(ActivationSecretKey::from_bytes(&[0xff; 32]).is_err());
        let again = ActivationSecretKey::from_bytes(key.expose_secret()).unwrap();
        assert_eq!(again.public_key(), pk);
    }

    #[test]
    fn every_field_changes_the_seed() {
        let p = Policies::default();
        let (enc, sealed) = ([4u8; 65], [5u8; 40]);
        let base = transcript(&p, &enc, &sealed);
        let seed = derive_card_seed(&[9; 32], &base.to_bytes());
        let mut p2 = Policies::default();
        p2.second.window = 0;
        let other_enc = [6u8; 65];
        let other_sealed = [5u8; 41];
        let variants = [
            ActivationTranscript {
                enc: &other_enc,
                ..base.clone()
            },
            ActivationTranscript {
                sealed: &other_sealed,
                ..base.clone()
            },
            ActivationTranscript {
                phone: "+989121234568",
                ..base.clone()
            },
            ActivationTranscript {
                code: "1234567898",
                ..base.clone()
            },
            ActivationTranscript {
                device_label: "Pixe",
                ..base.clone()
            },
            ActivationTranscript {
                card_id: "c2",
                ..base.clone()
            },
            ActivationTranscript {
                server_time: 1,
                ..base.clone()
            },
            ActivationTranscript {
                policies: &p2,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(derive_card_seed(&[9; 32], &v.to_bytes()), seed);
        }
        assert_ne!(derive_card_seed(&[8; 32], &base.to_bytes()), seed);
        assert_eq!(derive_card_seed(&[9; 32], &base.to_bytes()), seed);
    }

    #[test]
    fn debug_hides_the_code_and_keys() {
        let p = Policies::default();
        let t = transcript(&p, &[4; 65], &[5; 40]);
        assert!(!format!("{t:?}").contains("1234567897"));
        assert!(!format!("{:?}", plaintext()).contains("1234567897"));
        let key = ActivationSecretKey::derive(&[7; 32]);
        assert_eq!(format!("{key:?}"), "ActivationSecretKey(<redacted>)");
    }

    #[test]
    fn the_plaintext_refuses_unknown_fields() {
        let bad = r#"{"phone":"+989121234567","code":"1","device_public_key":"00","device_label":"x","x":1}"#;
        assert!(serde_json::from_str::<ActivationPlaintext>(bad).is_err());
    }
}
