//! The worked vectors in docs/protocol.md are what the code computes.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use pooya_protocol::{
    CardSeed, Policies, Transaction, TxType, first_pin, pin, second_pin, transaction_pin,
};

const DOC: &str = include_str!("../../docs/protocol.md");
const TIME: u64 = 1_763_700_000;

fn table() -> Vec<(String, String)> {
    let start = DOC.find("<!-- vectors:begin -->").expect("begin marker");
    let end = DOC.find("<!-- vectors:end -->").expect("end marker");
    DOC[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() == 4 && cells[2].starts_with('`'))
                .then(|| (cells[1].to_owned(), cells[2].trim_matches('`').to_owned()))
        })
        .collect()
}

#[test]
fn worked_vectors_match() {
    let seed = CardSeed::from_bytes(core::array::from_fn(|i| i as u8));
    let keys = seed.derive_keys();
    let p = Policies::default();
    let rows = table();
    assert_eq!(rows.len(), 13, "every row parsed");
    for (what, value) in rows {
        let computed = match what.as_str() {
            "key first" => hex::encode(keys.first.expose_secret()),
            "key second" => hex::encode(keys.second.expose_secret()),
            "key transaction" => hex::encode(keys.tx.expose_secret()),
            "first PIN" => first_pin(&keys, &p, TIME).unwrap().code,
            other if other.starts_with("transaction ") => {
                // "transaction question, purchase of 1250000 Rials to IR-SHOP-42"
                let (what, rest) = other
                    .strip_prefix("transaction ")
                    .and_then(|r| r.split_once(", "))
                    .unwrap_or_else(|| panic!("unknown row {other}"));
                let (tx_type, rest) = rest.split_once(" of ").expect("type of");
                let (amount, payee) = rest.split_once(" Rials to ").expect("Rials to");
                let tx = Transaction::new(
                    TxType::parse(tx_type).unwrap(),
                    amount.parse().unwrap(),
                    payee,
                );
                match what {
                    "question" => pin::transaction_question(&tx).unwrap(),
                    "PIN" => transaction_pin(&keys, &p, &tx, TIME).unwrap().code,
                    _ => panic!("unknown row {other}"),
                }
            }
            other => {
                let cap: u64 = other
                    .strip_prefix("second PIN, cap ")
                    .unwrap_or_else(|| panic!("unknown row {other}"))
                    .parse()
                    .unwrap();
                second_pin(&keys, &p, cap, TIME).unwrap().code
            }
        };
        assert_eq!(computed, value, "{what}");
    }
}

// ---------------------------------------------------------------------------
// Activation v2 (docs/protocol.md, "Activation v2 worked vector").

const ACTIVATION_BEGIN: &str = "<!-- activation-vector:begin -->";
const ACTIVATION_END: &str = "<!-- activation-vector:end -->";

fn block(begin: &str, end: &str) -> &'static str {
    let start = DOC.find(begin).unwrap_or_else(|| panic!("{begin} missing"));
    let stop = DOC.find(end).unwrap_or_else(|| panic!("{end} missing"));
    DOC[start + begin.len()..stop].trim()
}

fn line(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("  {name:<30}{value}\n"));
}

/// Renders the worked vector from the code: every value below is computed
/// here, none is copied from the doc.
fn activation_vector() -> String {
    use hpke::kem::DhP256HkdfSha256;
    use hpke::{Kem as _, Serializable};
    use pooya_protocol::activation::{
        ActivationPlaintext, ActivationResponse, ActivationSecretKey, ActivationTranscript,
        SealedActivationRequest, derive_card_seed, open_request, seal_request,
    };
    use pooya_protocol::ids::join_activation_code;
    use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
    use x25519_dalek::{PublicKey, StaticSecret};

    let activation_ikm = [0x01u8; 32];
    let ikm_e = [0x02u8; 32];
    let device_sk = [0x03u8; 32];
    let issuer_eph_sk = [0x04u8; 32];
    let ed25519_seed = [0x05u8; 32];
    let (atm_part, sms_part) = ("12345", "67897");
    let phone = "+989121234567";
    let label = "Pixel 8";
    let card_id = "crd_00112233445566778899";
    let masked_pan = "6104 33•• •••• 0001";
    let last4 = "0001";
    let bank_name = "بانک ملت";
    let policies = Policies::default();
    let server_time = 1_763_700_000u64;

    let key = ActivationSecretKey::derive(&activation_ikm);
    let activation_public = key.public_key();
    let code = join_activation_code(atm_part, sms_part).expect("a valid code");

    let device_secret = StaticSecret::from(device_sk);
    let device_public = PublicKey::from(&device_secret);
    let issuer_secret = StaticSecret::from(issuer_eph_sk);
    let issuer_public = PublicKey::from(&issuer_secret);
    let shared = device_secret.diffie_hellman(&issuer_public).to_bytes();
    assert_eq!(
        shared,
        issuer_secret.diffie_hellman(&device_public).to_bytes(),
        "both sides agree"
    );

    let plaintext = ActivationPlaintext {
        phone: phone.into(),
        code: code.clone(),
        device_public_key: hex::encode(device_public.as_bytes()),
        device_label: label.into(),
    };
    let plaintext_json = serde_json::to_string(&plaintext).expect("json");
    let (enc, sealed) = seal_request(&activation_public, &plaintext, &ikm_e).expect("sealed");
    // The doc's claim: enc is the public key of DeriveKeyPair(ikm_e).
    let (_, pk_e) = DhP256HkdfSha256::derive_keypair(&ikm_e);
    assert_eq!(
        pk_e.to_bytes().as_slice(),
        &enc[..],
        "enc = DeriveKeyPair(ikm_e)"
    );
    assert_eq!(open_request(&key, &enc, &sealed).expect("opens"), plaintext);
    let request_body = serde_json::to_string(&SealedActivationRequest {
        enc: hex::encode(enc),
        sealed: hex::encode(&sealed),
    })
    .expect("json");

    let transcript = ActivationTranscript {
        enc: &enc,
        sealed: &sealed,
        phone,
        code: &code,
        device_public_key: device_public.as_bytes(),
        device_label: label,
        issuer_ephemeral_public_key: issuer_public.as_bytes(),
        card_id,
        masked_pan,
        last4,
        bank_name,
        policies: &policies,
        server_time,
    };
    let bytes = transcript.to_bytes();
    let seed = derive_card_seed(&shared, &bytes);
    let signer = Ed25519KeyPair::from_seed_unchecked(&ed25519_seed).expect("seed");
    let signature = signer.sign(&bytes);
    UnparsedPublicKey::new(&ED25519, signer.public_key().as_ref())
        .verify(&bytes, signature.as_ref())
        .expect("the signature verifies");
    let response_body = serde_json::to_string(&ActivationResponse {
        card_id: card_id.into(),
        masked_pan: masked_pan.into(),
        last4: last4.into(),
        bank_name: bank_name.into(),
        policies: policies.clone(),
        server_time,
        issuer_ephemeral_public_key: hex::encode(issuer_public.as_bytes()),
        signature: hex::encode(signature.as_ref()),
    })
    .expect("json");
    let pin = first_pin(&seed.derive_keys(), &policies, server_time)
        .expect("pin")
        .code;

    // The transcript, field by field, parsed back from the bytes: each
    // field is a 4-byte big-endian length and then that many bytes, and
    // nothing else is in it.
    let names = [
        "label",
        "enc",
        "sealed",
        "phone",
        "code",
        "device public key",
        "device label",
        "issuer ephemeral public key",
        "card id",
        "masked PAN",
        "last4",
        "bank name",
        "first digits",
        "first step",
        "first window",
        "second digits",
        "second step",
        "second window",
        "cap tiers",
        "server time",
    ];
    let mut fields = String::new();
    let mut rest = &bytes[..];
    for name in names {
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let (field, tail) = rest[4..].split_at(len);
        fields.push_str(&format!(
            "  {name:<30}{} {}\n",
            hex::encode(&rest[..4]),
            hex::encode(field)
        ));
        rest = tail;
    }
    assert!(rest.is_empty(), "the transcript has exactly these fields");

    let mut out = String::from("```text\ninputs\n");
    line(&mut out, "activation key IKM", &hex::encode(activation_ikm));
    line(
        &mut out,
        "activation private key",
        &hex::encode(key.expose_secret()),
    );
    line(
        &mut out,
        "activation public key",
        &hex::encode(activation_public),
    );
    line(&mut out, "ikm_e", &hex::encode(ikm_e));
    line(
        &mut out,
        "device X25519 private key",
        &hex::encode(device_sk),
    );
    line(
        &mut out,
        "device X25519 public key",
        &hex::encode(device_public.as_bytes()),
    );
    line(
        &mut out,
        "issuer ephemeral private key",
        &hex::encode(issuer_eph_sk),
    );
    line(
        &mut out,
        "issuer ephemeral public key",
        &hex::encode(issuer_public.as_bytes()),
    );
    line(&mut out, "Ed25519 seed", &hex::encode(ed25519_seed));
    line(
        &mut out,
        "Ed25519 public key",
        &hex::encode(signer.public_key().as_ref()),
    );
    line(&mut out, "phone", phone);
    line(&mut out, "code ATM part", atm_part);
    line(&mut out, "code SMS part", sms_part);
    line(&mut out, "code (joined)", &code);
    line(&mut out, "device label", label);
    line(&mut out, "card id", card_id);
    line(&mut out, "masked PAN", masked_pan);
    line(&mut out, "last4", last4);
    line(&mut out, "bank name", bank_name);
    line(
        &mut out,
        "policies",
        &serde_json::to_string(&policies).expect("json"),
    );
    line(&mut out, "server time", &server_time.to_string());
    out.push_str("phone → issuer\n");
    line(&mut out, "plaintext", &plaintext_json);
    line(&mut out, "enc", &hex::encode(enc));
    line(&mut out, "sealed", &hex::encode(&sealed));
    line(&mut out, "request body", &request_body);
    out.push_str("transcript (name, 4-byte length, bytes)\n");
    out.push_str(&fields);
    line(&mut out, "transcript length", &bytes.len().to_string());
    line(
        &mut out,
        "SHA-256(transcript)",
        &hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes)),
    );
    out.push_str("issuer → phone\n");
    line(&mut out, "signature", &hex::encode(signature.as_ref()));
    line(&mut out, "response body", &response_body);
    out.push_str("both sides\n");
    line(&mut out, "X25519 shared secret", &hex::encode(shared));
    line(&mut out, "card seed", &hex::encode(seed.expose_secret()));
    line(&mut out, "first PIN at server time", &pin);
    out.push_str("```");
    out
}

#[test]
fn activation_v2_vector_matches() {
    let computed = activation_vector();
    let doc = block(ACTIVATION_BEGIN, ACTIVATION_END);
    for (i, (d, c)) in doc.lines().zip(computed.lines()).enumerate() {
        assert_eq!(d, c, "line {} of the activation vector", i + 1);
    }
    assert_eq!(
        doc.lines().count(),
        computed.lines().count(),
        "the activation vector has every line:\n{computed}"
    );
}

// ---------------------------------------------------------------------------
// QN questions (docs/protocol.md, "Questions").

#[test]
fn qn_padding_example_matches() {
    let doc = block("<!-- qn-example:begin -->", "<!-- qn-example:end -->");
    let suite: pooya_protocol::OcraSuite = "OCRA-1:HOTP-SHA256-8:QN16-T1M".parse().unwrap();
    let mut rows = 0;
    for l in doc.lines() {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let question = cells[1].trim_matches('`');
        let hex_text = cells[2].trim_matches('`');
        let first_bytes = cells[3].trim_matches('`');
        let block = suite.encode_question(question).unwrap();
        let n = first_bytes.split(' ').count();
        let computed: Vec<String> = block[..n].iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(computed.join(" "), first_bytes, "question {question}");
        // The hex text, padded with '0' digits on the right to 256 digits,
        // is the whole block; the doc's hex text is the number in hex.
        assert_eq!(
            u128::from_str_radix(hex_text, 16).unwrap(),
            question.parse::<u128>().unwrap(),
            "{question} is {hex_text} in hex"
        );
        let padded = format!("{hex_text:0<256}");
        assert_eq!(hex::encode_upper(block), padded, "question {question}");
        rows += 1;
    }
    assert!(rows >= 2, "the example has rows");
}

// ---------------------------------------------------------------------------
// POST /v1/verify: `amount` is required, also for first PINs.

#[test]
fn verify_amount_is_required_even_for_first_pins() {
    use pooya_protocol::wire::{VerifyKind, VerifyRequest};
    let doc = block("<!-- verify-first:begin -->", "<!-- verify-first:end -->");
    let body = doc
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .expect("an example body")
        .trim();
    let req: VerifyRequest = serde_json::from_str(body).unwrap();
    assert_eq!(req.kind, VerifyKind::First);
    let without = body.replace(&format!("\"amount\":{},", req.amount), "");
    assert_ne!(without, body, "the example carries an amount");
    let err = serde_json::from_str::<VerifyRequest>(&without).unwrap_err();
    assert!(err.to_string().contains("missing field `amount`"), "{err}");
}

// ---------------------------------------------------------------------------
// Signed time (docs/protocol.md, "Signed time worked vector").

const TIME_BEGIN: &str = "<!-- time-vector:begin -->";
const TIME_END: &str = "<!-- time-vector:end -->";

/// The time vector, computed: the Ed25519 key of the activation vector
/// (seed `05 × 32`), nonce `00 01 … 0f`, time 1763700000.
fn time_vector() -> String {
    use pooya_protocol::time::{TIME_LABEL, time_signing_input};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let signer = Ed25519KeyPair::from_seed_unchecked(&[5u8; 32]).expect("seed");
    let nonce: Vec<u8> = (0u8..16).collect();
    let input = time_signing_input(&nonce, TIME);
    let sig = signer.sign(&input);
    let mut out = String::from("```text\n");
    line(
        &mut out,
        "Ed25519 public key",
        &hex::encode(signer.public_key().as_ref()),
    );
    line(&mut out, "nonce", &hex::encode(&nonce));
    line(&mut out, "server time", &TIME.to_string());
    line(
        &mut out,
        "label",
        &format!(
            "{} {}",
            hex::encode((TIME_LABEL.len() as u32).to_be_bytes()),
            hex::encode(TIME_LABEL)
        ),
    );
    line(
        &mut out,
        "nonce field",
        &format!(
            "{} {}",
            hex::encode(16u32.to_be_bytes()),
            hex::encode(&nonce)
        ),
    );
    line(
        &mut out,
        "time field",
        &format!(
            "{} {}",
            hex::encode(8u32.to_be_bytes()),
            hex::encode(TIME.to_be_bytes())
        ),
    );
    line(&mut out, "signing input", &hex::encode(&input));
    line(&mut out, "signature", &hex::encode(sig.as_ref()));
    let body = serde_json::to_string(&pooya_protocol::time::TimeAnswer {
        nonce: hex::encode(&nonce),
        server_time: TIME,
        signature: hex::encode(sig.as_ref()),
    })
    .expect("json");
    line(&mut out, "answer body", &body);
    out.push_str("```");
    out
}

#[test]
fn time_vector_matches() {
    let computed = time_vector();
    let doc = block(TIME_BEGIN, TIME_END);
    for (i, (d, c)) in doc.lines().zip(computed.lines()).enumerate() {
        assert_eq!(d, c, "line {} of the time vector", i + 1);
    }
    assert_eq!(
        doc.lines().count(),
        computed.lines().count(),
        "the time vector has every line:\n{computed}"
    );
}

// ---------------------------------------------------------------------------
// Card requests (docs/protocol.md, "Card requests worked vector").

const CARD_REQUEST_BEGIN: &str = "<!-- card-request-vector:begin -->";
const CARD_REQUEST_END: &str = "<!-- card-request-vector:end -->";

/// The card-request vector, computed: the seed of the worked vectors
/// (bytes 0 to 31), the activation vector's card id, time 1763700000.
fn card_request_vector() -> String {
    use pooya_protocol::card_request::{CardAction, proof, proof_input};
    let seed = CardSeed::from_bytes(core::array::from_fn(|i| i as u8));
    let key = seed.device_key();
    let card_id = "crd_00112233445566778899";
    let mut out = String::from("```text\n");
    line(&mut out, "seed", &hex::encode(seed.expose_secret()));
    line(&mut out, "device key", &hex::encode(key.expose_secret()));
    line(&mut out, "card id", card_id);
    line(&mut out, "time", &TIME.to_string());
    for (name, action) in [
        ("remove", CardAction::Remove),
        ("status", CardAction::Status),
    ] {
        line(
            &mut out,
            &format!("{name} proof input"),
            &hex::encode(proof_input(action, card_id, TIME)),
        );
        line(
            &mut out,
            &format!("{name} proof"),
            &hex::encode(proof(&key, action, card_id, TIME)),
        );
    }
    out.push_str("```");
    out
}

#[test]
fn card_request_vector_matches() {
    let computed = card_request_vector();
    let doc = block(CARD_REQUEST_BEGIN, CARD_REQUEST_END);
    for (i, (d, c)) in doc.lines().zip(computed.lines()).enumerate() {
        assert_eq!(d, c, "line {} of the card-request vector", i + 1);
    }
    assert_eq!(
        doc.lines().count(),
        computed.lines().count(),
        "the card-request vector has every line:\n{computed}"
    );
}

// ---------------------------------------------------------------------------
// Signed card answers (docs/protocol.md, "Signed card answers worked
// vector").

const CARD_ANSWER_BEGIN: &str = "<!-- card-answer-vector:begin -->";
const CARD_ANSWER_END: &str = "<!-- card-answer-vector:end -->";

/// The card-answer vector, computed: the Ed25519 key of the activation
/// vector (seed `05 × 32`) answering the status request of the
/// card-request vector with `suspended`.
fn card_answer_vector() -> String {
    use pooya_protocol::card_request::{
        ANSWER_LABEL, AppStatus, CardAction, CardStatusAnswer, NOT_FOUND_OUTCOME,
        answer_signing_input, not_found_signing_input, proof,
    };
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let signer = Ed25519KeyPair::from_seed_unchecked(&[5u8; 32]).expect("seed");
    let seed = CardSeed::from_bytes(core::array::from_fn(|i| i as u8));
    let card_id = "crd_00112233445566778899";
    let request_proof = proof(&seed.device_key(), CardAction::Status, card_id, TIME);
    let status = AppStatus::Suspended;
    let input = answer_signing_input(CardAction::Status, card_id, status, TIME, &request_proof);
    let sig = signer.sign(&input);
    let field = |bytes: &[u8]| {
        format!(
            "{} {}",
            hex::encode((bytes.len() as u32).to_be_bytes()),
            hex::encode(bytes)
        )
    };
    let mut out = String::from("```text\n");
    line(
        &mut out,
        "Ed25519 public key",
        &hex::encode(signer.public_key().as_ref()),
    );
    line(&mut out, "label", &field(ANSWER_LABEL));
    line(&mut out, "action field", &field(CardAction::Status.label()));
    line(&mut out, "card id field", &field(card_id.as_bytes()));
    line(&mut out, "status field", &field(status.as_str().as_bytes()));
    line(&mut out, "time field", &field(&TIME.to_be_bytes()));
    line(&mut out, "proof field", &field(&request_proof));
    line(&mut out, "signing input", &hex::encode(&input));
    line(&mut out, "signature", &hex::encode(sig.as_ref()));
    let body = serde_json::to_string(&CardStatusAnswer {
        card_id: card_id.to_owned(),
        status,
        signature: hex::encode(sig.as_ref()),
    })
    .expect("json");
    line(&mut out, "answer body", &body);
    // The same request answered 404 `card_not_found` (a bank that does not
    // know the card): the outcome name in the status's place.
    let nf_input = not_found_signing_input(CardAction::Status, card_id, TIME, &request_proof);
    let nf_sig = signer.sign(&nf_input);
    line(
        &mut out,
        "not-found outcome field",
        &field(NOT_FOUND_OUTCOME.as_bytes()),
    );
    line(&mut out, "not-found signing input", &hex::encode(&nf_input));
    line(
        &mut out,
        "not-found signature",
        &hex::encode(nf_sig.as_ref()),
    );
    out.push_str("```");
    out
}

#[test]
fn card_answer_vector_matches() {
    let computed = card_answer_vector();
    let doc = block(CARD_ANSWER_BEGIN, CARD_ANSWER_END);
    for (i, (d, c)) in doc.lines().zip(computed.lines()).enumerate() {
        assert_eq!(d, c, "line {} of the card-answer vector", i + 1);
    }
    assert_eq!(
        doc.lines().count(),
        computed.lines().count(),
        "the card-answer vector has every line:\n{computed}"
    );
}

// The transaction question's input bytes (docs/protocol.md, "Worked
// vectors"): the doc's hex, built here independently, hashes to the
// purchase question of the table.

#[test]
fn transaction_question_bytes_match() {
    let doc = block("<!-- tx-bytes:begin -->", "<!-- tx-bytes:end -->");
    let bytes = hex::decode(doc.split_whitespace().collect::<String>()).unwrap();
    let mut want = b"pooya/v2/tx".to_vec();
    want.push(0);
    want.extend_from_slice(b"purchase");
    want.push(0);
    want.extend_from_slice(&1_250_000u64.to_be_bytes());
    want.extend_from_slice(b"IR-SHOP-42");
    assert_eq!(bytes, want);
    assert_eq!(bytes.len(), 39);
    let hash = hex::encode_upper(ring::digest::digest(&ring::digest::SHA256, &bytes));
    let tx = Transaction::new(TxType::Purchase, 1_250_000, "IR-SHOP-42");
    assert_eq!(pin::transaction_question(&tx).unwrap(), hash);
    assert!(DOC.contains(&format!("`{hash}`")), "the table has it");
}
