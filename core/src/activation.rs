//! The activation client's pure half: building the request and checking
//! the issuer's answer (docs/protocol.md, "Activation"; docs/phone.md).
//!
//! `prepare` makes a fresh X25519 key (RFC 7748), seals the request (phone,
//! code, that key, label) to the issuer's pinned P-256 activation key with
//! HPKE (RFC 9180; [`pooya_protocol::activation`]) and makes the JSON body
//! of `POST /v1/activations`; `check_answer` takes what the host's
//! transport brought back and either returns the card with its seed or a
//! typed error. No I/O and no clock here: [`crate::Phone::add_card`] does
//! the exchange. Nothing readable crosses the wire: a TLS man in the
//! middle sees neither the code nor the device key.
//!
//! What is checked, in order (any failure → an error, nothing stored):
//! 1. the HTTP status (201 or 200; 403 `activation_refused` is
//!    [`CoreError::ActivationRefused`], other errors
//!    [`CoreError::IssuerError`]);
//! 2. the JSON: at most [`MAX_RESPONSE_BYTES`], no unknown or missing
//!    fields, keys and signature of the right length in hex, a card id, a
//!    masked PAN of the form `6104 33•• •••• 1234` ending in `last4`;
//! 3. the Ed25519 signature (RFC 8032 §5.1.7) over the activation
//!    transcript rebuilt from what this phone sent (the HPKE encapsulated
//!    key and ciphertext byte for byte, the code, the device key) and what
//!    came back, against the issuer key pinned in the vault;
//! 4. policy sanity: [`Policies::validate`] (first PIN 6–8 digits, second
//!    6–10, steps 30–300 s, window ≤ 2) and a non-empty, strictly
//!    increasing cap ladder;
//! 5. a plausible server time: within [`MAX_SERVER_SKEW_SECS`] (a day) of
//!    the phone's clock;
//! 6. the X25519 agreement (a low-order issuer key is refused) and the seed
//!    with [`derive_card_seed`] (HKDF-SHA256, RFC 5869).

use core::fmt;

use pooya_protocol::activation::{
    ActivationPlaintext, ActivationResponse, ActivationTranscript, ENC_LEN,
    SealedActivationRequest, derive_card_seed, seal_request,
};
use pooya_protocol::{CardSeed, Policies};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, ED25519};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::CoreError;

/// Path of the activation endpoint under an issuer's base URL.
pub const ACTIVATION_PATH: &str = "/v1/activations";
/// How long the phone waits for the issuer's answer.
pub const DEFAULT_TIMEOUT_MS: u64 = 15_000;
/// Largest difference between the issuer's clock and the phone's that is
/// accepted at activation, in seconds (a day). A phone clock wrong by more
/// than that is a sign of a replayed or forged answer, or of a phone the
/// customer should fix first; within it, the measured offset corrects
/// every PIN.
pub const MAX_SERVER_SKEW_SECS: u64 = 86_400;
/// Largest answer body read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest issuer card id accepted, in characters.
const MAX_CARD_ID_CHARS: usize = 128;
/// Longest bank name accepted, in characters.
const MAX_BANK_NAME_CHARS: usize = 64;

/// A request ready to send, with the private key that completes it.
pub(crate) struct Prepared {
    /// The JSON body: the sealed request (opaque to everyone but the
    /// issuer).
    pub body: Vec<u8>,
    enc: [u8; ENC_LEN],
    sealed: Vec<u8>,
    phone: String,
    code: Zeroizing<String>,
    device_label: String,
    device_public_key: [u8; 32],
    /// The device's X25519 key for this activation (RFC 7748 §5), wiped
    /// on drop. x25519-dalek's rather than ring's ephemeral key because
    /// ring's is not `Send`, and an async host awaits its transport with
    /// the prepared request in hand.
    private_key: x25519_dalek::StaticSecret,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

/// A checked activation: the card's display data, policies, the issuer's
/// clock and the derived seed.
pub(crate) struct Activated {
    pub card_id: String,
    pub masked_pan: String,
    pub last4: String,
    pub bank_name: String,
    pub policies: Policies,
    pub server_time: u64,
    pub seed: CardSeed,
}

/// Builds the request: `phone` already normalised (`+989…`), `code`
/// already normalised ([`pooya_protocol::normalize_activation_code`]),
/// sealed to `activation_key` (the issuer's pinned SEC1 P-256 point).
///
/// # Errors
/// [`CoreError::InvalidField`] (`activation_key`) for a key that is not a
/// P-256 point; [`CoreError::Storage`] only if the system random generator
/// fails.
pub(crate) fn prepare(
    phone: &str,
    code: &str,
    device_label: &str,
    activation_key: &[u8],
) -> Result<Prepared, CoreError> {
    let rng = SystemRandom::new();
    let mut key_bytes = Zeroizing::new([0u8; 32]);
    rng.fill(&mut key_bytes[..])
        .map_err(|_| CoreError::Storage("the random generator failed".into()))?;
    // Clamped by x25519-dalek when used (RFC 7748 §5, decodeScalar25519).
    let private_key = x25519_dalek::StaticSecret::from(*key_bytes);
    let device_public_key = x25519_dalek::PublicKey::from(&private_key).to_bytes();
    let mut ikm_e = Zeroizing::new([0u8; 32]);
    rng.fill(&mut ikm_e[..])
        .map_err(|_| CoreError::Storage("the random generator failed".into()))?;
    let plaintext = ActivationPlaintext {
        phone: phone.to_owned(),
        code: code.to_owned(),
        device_public_key: hex::encode(device_public_key),
        device_label: device_label.to_owned(),
    };
    let (enc, sealed) =
        seal_request(activation_key, &plaintext, &ikm_e).map_err(|_| CoreError::InvalidField {
            field: "activation_key",
            reason: "not a P-256 public key",
        })?;
    let body = serde_json::to_vec(&SealedActivationRequest {
        enc: hex::encode(enc),
        sealed: hex::encode(&sealed),
    })
    .map_err(|_| CoreError::Storage("serialisation failed".into()))?;
    Ok(Prepared {
        body,
        enc,
        sealed,
        phone: phone.to_owned(),
        code: Zeroizing::new(code.to_owned()),
        device_label: device_label.to_owned(),
        device_public_key,
        private_key,
    })
}

/// The error body of the issuer (docs/issuer.md, "Errors").
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// Keeps `[a-z0-9_]`, at most 64 characters: an issuer's error code is
/// shown and logged, so nothing else from the network passes.
fn sanitize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .take(64)
        .collect()
}

pub(crate) fn check_status(status: u16, body: &[u8]) -> Result<(), CoreError> {
    if status == 200 || status == 201 {
        return Ok(());
    }
    let code = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| sanitize_code(&b.error))
        .unwrap_or_default();
    if status == 403 && code == "activation_refused" {
        return Err(CoreError::ActivationRefused);
    }
    Err(CoreError::IssuerError { status, code })
}

fn text_ok(value: &str, max_chars: usize, allow_empty: bool) -> bool {
    (allow_empty || !value.trim().is_empty())
        && value.chars().count() <= max_chars
        && !value.chars().any(char::is_control)
}

/// `DDDD DD•• •••• DDDD` with the last four equal to `last4`.
fn masked_pan_ok(masked: &str, last4: &str) -> bool {
    let chars: Vec<char> = masked.chars().collect();
    if chars.len() != 19 || last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    chars.iter().enumerate().all(|(i, c)| match i {
        0..=3 | 5 | 6 | 15..=18 => c.is_ascii_digit(),
        4 | 9 | 14 => *c == ' ',
        _ => *c == '•',
    }) && chars[15..].iter().copied().eq(last4.chars())
}

fn decode_fixed<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], CoreError> {
    pooya_protocol::wire::decode_hex_array::<N>("field", text)
        .map_err(|_| CoreError::BadResponse(what))
}

/// Checks the issuer's answer and derives the card seed. `phone_time` is
/// the phone's clock when the answer arrived (Unix seconds).
///
/// # Errors
/// As listed in the module documentation; nothing is returned that was
/// not signed by `pinned_key`.
pub(crate) fn check_answer(
    prepared: Prepared,
    pinned_key: &[u8; 32],
    status: u16,
    body: &[u8],
    phone_time: u64,
) -> Result<Activated, CoreError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(CoreError::BadResponse("answer too large"));
    }
    check_status(status, body)?;
    let answer: ActivationResponse = serde_json::from_slice(body)
        .map_err(|_| CoreError::BadResponse("not the expected JSON"))?;
    let issuer_key: [u8; 32] = decode_fixed(
        &answer.issuer_ephemeral_public_key,
        "issuer key is not 32 bytes of hex",
    )?;
    let sig: [u8; 64] = decode_fixed(&answer.signature, "signature is not 64 bytes of hex")?;
    if !text_ok(&answer.card_id, MAX_CARD_ID_CHARS, false) {
        return Err(CoreError::BadResponse("card id"));
    }
    if !text_ok(&answer.bank_name, MAX_BANK_NAME_CHARS, true) {
        return Err(CoreError::BadResponse("bank name"));
    }
    if !masked_pan_ok(&answer.masked_pan, &answer.last4) {
        return Err(CoreError::BadResponse("masked card number"));
    }

    let transcript = ActivationTranscript {
        enc: &prepared.enc,
        sealed: &prepared.sealed,
        phone: &prepared.phone,
        code: &prepared.code,
        device_public_key: &prepared.device_public_key,
        device_label: &prepared.device_label,
        issuer_ephemeral_public_key: &issuer_key,
        card_id: &answer.card_id,
        masked_pan: &answer.masked_pan,
        last4: &answer.last4,
        bank_name: &answer.bank_name,
        policies: &answer.policies,
        server_time: answer.server_time,
    }
    .to_bytes();
    signature::UnparsedPublicKey::new(&ED25519, pinned_key)
        .verify(&transcript, &sig)
        .map_err(|_| CoreError::BadSignature)?;

    answer
        .policies
        .validate()
        .map_err(|e| CoreError::PolicyRefused(e.to_string()))?;
    // The ladder's own parser refuses empty and unsorted ladders; checked
    // again here so the rule stays visible at the point of trust.
    let tiers = answer.policies.cap_ladder.tiers();
    if tiers.is_empty() || tiers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(CoreError::PolicyRefused("cap ladder".into()));
    }

    let skew = i128::from(answer.server_time) - i128::from(phone_time);
    if skew.unsigned_abs() > u128::from(MAX_SERVER_SKEW_SECS) {
        return Err(CoreError::ServerTimeImplausible {
            skew_secs: i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX }),
        });
    }

    let shared = prepared
        .private_key
        .diffie_hellman(&x25519_dalek::PublicKey::from(issuer_key));
    // An all-zero shared secret: the issuer sent a low-order point
    // (RFC 7748 §6.1 lets the check be made on the output).
    if !shared.was_contributory() {
        return Err(CoreError::BadResponse("issuer key refused by X25519"));
    }
    let seed = derive_card_seed(shared.as_bytes(), &transcript);

    Ok(Activated {
        card_id: answer.card_id,
        masked_pan: answer.masked_pan,
        last4: answer.last4,
        bank_name: answer.bank_name,
        policies: answer.policies,
        server_time: answer.server_time,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pooya_protocol::CapLadder;
    use pooya_protocol::activation::{ActivationSecretKey, open_request};
    use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::{Value, json};

    const PHONE: &str = "+989121234567";
    const CODE: &str = "1234567897";
    const NOW: u64 = 1_800_000_000;

    /// An issuer played with ring and the protocol crate: opens the sealed
    /// request, signs the transcript and derives the seed the way
    /// docs/protocol.md says.
    struct Issuer {
        key: Ed25519KeyPair,
        activation: ActivationSecretKey,
    }

    impl Issuer {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let mut ikm = [0u8; 32];
            rng.fill(&mut ikm).unwrap();
            Self {
                key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
                activation: ActivationSecretKey::derive(&ikm),
            }
        }

        fn public(&self) -> [u8; 32] {
            self.key.public_key().as_ref().try_into().unwrap()
        }

        fn activation_key(&self) -> [u8; 65] {
            self.activation.public_key()
        }

        fn prepare(&self, label: &str) -> Prepared {
            prepare(PHONE, CODE, label, &self.activation_key()).unwrap()
        }

        /// Answers `request`, returning the JSON and the seed it derived.
        fn answer(&self, request: &[u8], policies: &Policies, time: u64) -> (Value, CardSeed) {
            let wire: SealedActivationRequest = serde_json::from_slice(request).unwrap();
            let enc = hex::decode(&wire.enc).unwrap();
            let sealed = hex::decode(&wire.sealed).unwrap();
            let req = open_request(&self.activation, &enc, &sealed).unwrap();
            let device: [u8; 32] = hex::decode(&req.device_public_key)
                .unwrap()
                .try_into()
                .unwrap();
            let rng = SystemRandom::new();
            let eph = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
            let eph_pub: [u8; 32] = eph
                .compute_public_key()
                .unwrap()
                .as_ref()
                .try_into()
                .unwrap();
            let transcript = ActivationTranscript {
                enc: &enc,
                sealed: &sealed,
                phone: &req.phone,
                code: &req.code,
                device_public_key: &device,
                device_label: &req.device_label,
                issuer_ephemeral_public_key: &eph_pub,
                card_id: "crd_1",
                masked_pan: "6104 33•• •••• 0001",
                last4: "0001",
                bank_name: "بانک ملت",
                policies,
                server_time: time,
            }
            .to_bytes();
            let sig = self.key.sign(&transcript);
            let seed =
                agreement::agree_ephemeral(eph, &UnparsedPublicKey::new(&X25519, device), |s| {
                    derive_card_seed(s, &transcript)
                })
                .unwrap();
            let body = json!({
                "card_id": "crd_1",
                "masked_pan": "6104 33•• •••• 0001",
                "last4": "0001",
                "bank_name": "بانک ملت",
                "policies": policies,
                "server_time": time,
                "issuer_ephemeral_public_key": hex::encode(eph_pub),
                "signature": hex::encode(sig.as_ref()),
            });
            (body, seed)
        }
    }

    fn run(issuer: &Issuer, edit: impl FnOnce(&mut Value)) -> Result<Activated, CoreError> {
        let prepared = issuer.prepare("test phone");
        let (mut body, _) = issuer.answer(&prepared.body, &Policies::default(), NOW);
        edit(&mut body);
        let bytes = serde_json::to_vec(&body).unwrap();
        check_answer(prepared, &issuer.public(), 201, &bytes, NOW)
    }

    #[test]
    fn derives_the_issuers_seed() {
        let issuer = Issuer::new();
        let prepared = issuer.prepare("test phone");
        let (body, seed) = issuer.answer(&prepared.body, &Policies::default(), NOW + 5);
        let got = check_answer(
            prepared,
            &issuer.public(),
            201,
            &serde_json::to_vec(&body).unwrap(),
            NOW,
        )
        .unwrap();
        assert_eq!(got.seed, seed);
        assert_eq!(got.server_time, NOW + 5);
        assert_eq!(got.last4, "0001");
    }

    #[test]
    fn every_changed_field_breaks_the_signature() {
        let issuer = Issuer::new();
        let edits: Vec<(&str, Value)> = vec![
            ("card_id", json!("crd_2")),
            ("masked_pan", json!("6104 34•• •••• 0001")),
            ("bank_name", json!("Bank")),
            ("server_time", json!(NOW + 1)),
            (
                "policies",
                json!({"first":{"digits":7,"step":60,"window":1},
                       "second":{"digits":8,"step":60,"window":1},
                       "cap_ladder":[5000000,20000000]}),
            ),
        ];
        for (field, value) in edits {
            let r = run(&issuer, |b| b[field] = value);
            assert_eq!(r.err(), Some(CoreError::BadSignature), "{field}");
        }
        let r = run(&issuer, |b| {
            let mut s = b["signature"].as_str().unwrap().to_owned();
            let flipped = if s.starts_with('0') { "1" } else { "0" };
            s.replace_range(0..1, flipped);
            b["signature"] = json!(s);
        });
        assert_eq!(r.err(), Some(CoreError::BadSignature));
        // Another X25519 key from the "issuer": the transcript differs.
        let r = run(&issuer, |b| {
            b["issuer_ephemeral_public_key"] = json!(hex::encode([9u8; 32]));
        });
        assert_eq!(r.err(), Some(CoreError::BadSignature));
    }

    #[test]
    fn wrong_pinned_key_is_refused() {
        let issuer = Issuer::new();
        let other = Issuer::new();
        let prepared = issuer.prepare("test phone");
        let (body, _) = issuer.answer(&prepared.body, &Policies::default(), NOW);
        let r = check_answer(
            prepared,
            &other.public(),
            201,
            &serde_json::to_vec(&body).unwrap(),
            NOW,
        );
        assert_eq!(r.err(), Some(CoreError::BadSignature));
    }

    #[test]
    fn malformed_answers_are_refused() {
        let issuer = Issuer::new();
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|b| b["extra"] = json!(1)), "unknown field"),
            (
                Box::new(|b| {
                    b.as_object_mut().unwrap().remove("server_time");
                }),
                "missing field",
            ),
            (Box::new(|b| b["signature"] = json!("zz")), "bad hex"),
            (Box::new(|b| b["last4"] = json!("0002")), "last4 mismatch"),
            (
                Box::new(|b| b["masked_pan"] = json!("6104330000000001")),
                "unmasked",
            ),
            (Box::new(|b| b["card_id"] = json!("")), "empty id"),
            (
                Box::new(|b| b["policies"]["cap_ladder"] = json!([20000000, 5000000])),
                "unsorted ladder",
            ),
            (
                Box::new(|b| b["policies"]["cap_ladder"] = json!([])),
                "empty ladder",
            ),
        ];
        for (edit, what) in cases {
            let r = run(&issuer, edit);
            assert!(
                matches!(r, Err(CoreError::BadResponse(_))),
                "{what}: {:?}",
                r.err()
            );
        }
    }

    #[test]
    fn signed_but_unsafe_policies_are_refused() {
        let issuer = Issuer::new();
        let mut bad = Vec::new();
        let mut p = Policies::default();
        p.second.digits = 11;
        bad.push(p);
        let mut p = Policies::default();
        p.first.step = 20;
        bad.push(p);
        let mut p = Policies::default();
        p.second.step = 600;
        bad.push(p);
        let mut p = Policies::default();
        p.first.digits = 5;
        bad.push(p);
        for policies in bad {
            let prepared = issuer.prepare("test phone");
            let (body, _) = issuer.answer(&prepared.body, &policies, NOW);
            let r = check_answer(
                prepared,
                &issuer.public(),
                201,
                &serde_json::to_vec(&body).unwrap(),
                NOW,
            );
            assert!(
                matches!(r, Err(CoreError::PolicyRefused(_))),
                "{policies:?}"
            );
        }
        // A valid non-default ladder passes.
        let policies = Policies {
            cap_ladder: CapLadder::new(vec![1_000_000, 3_000_000]).unwrap(),
            ..Policies::default()
        };
        let prepared = issuer.prepare("test phone");
        let (body, _) = issuer.answer(&prepared.body, &policies, NOW);
        let ok = check_answer(
            prepared,
            &issuer.public(),
            201,
            &serde_json::to_vec(&body).unwrap(),
            NOW,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn server_time_must_be_within_a_day() {
        let issuer = Issuer::new();
        for (server, ok) in [
            (NOW + MAX_SERVER_SKEW_SECS, true),
            (NOW - MAX_SERVER_SKEW_SECS, true),
            (NOW + MAX_SERVER_SKEW_SECS + 1, false),
            (NOW - MAX_SERVER_SKEW_SECS - 1, false),
            (0, false),
        ] {
            let prepared = issuer.prepare("test phone");
            let (body, _) = issuer.answer(&prepared.body, &Policies::default(), server);
            let r = check_answer(
                prepared,
                &issuer.public(),
                201,
                &serde_json::to_vec(&body).unwrap(),
                NOW,
            );
            if ok {
                assert!(r.is_ok(), "{server}");
            } else {
                assert!(
                    matches!(r, Err(CoreError::ServerTimeImplausible { .. })),
                    "{server}"
                );
            }
        }
    }

    #[test]
    fn http_errors_are_typed() {
        let issuer = Issuer::new();
        let check = |status, body: &str| {
            let prepared = issuer.prepare("x");
            check_answer(prepared, &issuer.public(), status, body.as_bytes(), NOW).err()
        };
        assert_eq!(
            check(403, r#"{"error":"activation_refused","message":"no"}"#),
            Some(CoreError::ActivationRefused)
        );
        assert_eq!(
            check(400, r#"{"error":"invalid_code","message":"no"}"#),
            Some(CoreError::IssuerError {
                status: 400,
                code: "invalid_code".into()
            })
        );
        assert_eq!(
            check(502, "<html>Bad <b>gateway</b> \u{202e}</html>"),
            Some(CoreError::IssuerError {
                status: 502,
                code: String::new()
            })
        );
        assert_eq!(
            check(500, r#"{"error":"Evil\n<script>","message":""}"#),
            Some(CoreError::IssuerError {
                status: 500,
                code: "vilscript".into()
            })
        );
        assert_eq!(
            check(201, "not json"),
            Some(CoreError::BadResponse("not the expected JSON"))
        );
        let big = vec![b' '; MAX_RESPONSE_BYTES + 1];
        let prepared = issuer.prepare("x");
        assert_eq!(
            check_answer(prepared, &issuer.public(), 201, &big, NOW).err(),
            Some(CoreError::BadResponse("answer too large"))
        );
    }

    #[test]
    fn the_request_is_sealed_to_the_pinned_key_and_fresh_each_time() {
        let issuer = Issuer::new();
        let prepared = issuer.prepare("Pixel 8");
        let text = String::from_utf8(prepared.body.clone()).unwrap();
        // Nothing readable: not the code, not the phone, not the label.
        for secret in [
            CODE,
            PHONE,
            "Pixel 8",
            &hex::encode(prepared.device_public_key),
        ] {
            assert!(!text.contains(secret), "{secret} visible in {text}");
        }
        let wire: SealedActivationRequest = serde_json::from_str(&text).unwrap();
        let enc = hex::decode(&wire.enc).unwrap();
        let sealed = hex::decode(&wire.sealed).unwrap();
        let req = open_request(&issuer.activation, &enc, &sealed).unwrap();
        assert_eq!(req.phone, PHONE);
        assert_eq!(req.code, CODE);
        assert_eq!(req.device_label, "Pixel 8");
        assert_eq!(
            hex::decode(&req.device_public_key).unwrap(),
            prepared.device_public_key
        );
        // Another issuer's key cannot open it.
        let other = Issuer::new();
        assert!(open_request(&other.activation, &enc, &sealed).is_err());
        // A fresh device key and encapsulation every time.
        let again = issuer.prepare("Pixel 8");
        assert_ne!(prepared.device_public_key, again.device_public_key);
        assert_ne!(prepared.enc, again.enc);
        // A key that is not a P-256 point is refused before anything.
        assert_eq!(
            prepare(PHONE, CODE, "x", &[4u8; 65])
                .err()
                .map(|e| e.code()),
            Some("invalid_field")
        );
    }

    #[test]
    fn the_answer_must_sign_this_requests_encapsulation() {
        // An answer for another sealing of the same request (a replayed or
        // swapped `enc`/`sealed`) does not verify.
        let issuer = Issuer::new();
        let first = issuer.prepare("x");
        let second = issuer.prepare("x");
        let (body, _) = issuer.answer(&first.body, &Policies::default(), NOW);
        let r = check_answer(
            second,
            &issuer.public(),
            201,
            &serde_json::to_vec(&body).unwrap(),
            NOW,
        );
        assert_eq!(r.err(), Some(CoreError::BadSignature));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Arbitrary bytes with any status are never accepted and
            /// never panic.
            #[test]
            fn arbitrary_answers_are_refused(
                status in prop::sample::select(vec![200u16, 201, 400, 403, 500]),
                body in prop::collection::vec(any::<u8>(), 0..512),
            ) {
                let issuer_key = [7u8; 32];
                let prepared = Issuer::new().prepare("x");
                prop_assert!(check_answer(prepared, &issuer_key, status, &body, NOW).is_err());
            }

            /// A genuine answer with any one byte of its JSON changed is
            /// refused, or (when the change is invisible to the parser,
            /// such as whitespace) yields the very same seed.
            #[test]
            fn one_changed_byte_never_yields_another_seed(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let issuer = Issuer::new();
                let prepared = issuer.prepare("x");
                let (body, seed) = issuer.answer(&prepared.body, &Policies::default(), NOW);
                let mut bytes = serde_json::to_vec(&body).unwrap();
                let i = pos.index(bytes.len());
                bytes[i] = byte;
                if let Ok(a) = check_answer(prepared, &issuer.public(), 201, &bytes, NOW) {
                    prop_assert_eq!(a.seed, seed);
                }
            }
        }
    }
}
