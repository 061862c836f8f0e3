//! Fuzzes every parser of pooya-protocol: OCRA suites, amounts, card
//! numbers, phone numbers, activation codes (whole and two-channel), payee
//! ids, cap ladders, payment request URIs and transaction types, and sealed
//! activation requests (HPKE open on arbitrary `enc` and ciphertext), and
//! the query strings Kannel calls the issuer with. None
//! may panic, and what parses must survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pooya_protocol::activation::{ActivationSecretKey, ENC_LEN, open_request};
use pooya_protocol::payment::MAX_URI_LEN;
use pooya_protocol::pin::normalize_payee;
use pooya_protocol::{
    CapLadder, Language, OcraSuite, Pan, PaymentRequest, TxType, format_rials, format_rials_fa,
    join_activation_code, normalize_activation_code, normalize_phone, parse_amount,
};

fuzz_target!(|data: &[u8]| {
    if data.len() >= ENC_LEN {
        static KEY: std::sync::OnceLock<ActivationSecretKey> = std::sync::OnceLock::new();
        let key = KEY.get_or_init(|| ActivationSecretKey::derive(&[7; 32]));
        let _ = open_request(key, &data[..ENC_LEN], &data[ENC_LEN..]);
    }
    if let Ok(tiers) = serde_json::from_slice::<Vec<u64>>(data) {
        if let Ok(ladder) = CapLadder::new(tiers) {
            assert!(ladder.tiers().windows(2).all(|w| w[0] < w[1]));
        }
    }
    // A migration payload (the protobuf inside otpauth-migration URIs).
    if let Ok(accounts) = pooya_protocol::otpauth::decode_migration_payload(data) {
        assert!(!accounts.is_empty());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What Kannel (the hostile SMS path) calls the issuer with: delivery
    // reports and inbound texts, parsed from raw query strings.
    if let Ok(dlr) = pooya_issuer_kannel::DlrQuery::parse(text) {
        assert!(pooya_issuer_kannel::report_of_type(1).is_some());
        let _ = dlr.report;
    }
    if let Ok(inbound) = pooya_issuer_kannel::InboundQuery::parse(text) {
        if let Ok(decoded) = inbound.text() {
            assert!(decoded.chars().count() <= text.len());
        }
    }
    if let Some((atm, sms)) = text.split_once('|') {
        if let Ok(code) = join_activation_code(atm, sms) {
            assert_eq!(normalize_activation_code(&code).ok(), Some(code.clone()));
        }
    }
    if let Ok(payee) = normalize_payee(text) {
        assert!(payee.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(normalize_payee(payee).ok(), Some(payee));
    }
    if let Ok(request) = PaymentRequest::parse(text) {
        let uri = request.to_uri();
        assert!(uri.len() <= MAX_URI_LEN);
        assert_eq!(PaymentRequest::parse(&uri).as_ref(), Ok(&request));
        assert!(request.amount() > 0);
        let now = request.expires_at().saturating_sub(1);
        if let Ok(view) = request.display(Language::Fa, now) {
            assert_eq!(view.amount, request.amount());
            assert_eq!(parse_amount(&view.amount_fa), Ok(request.amount()));
        }
    }
    if let Ok(t) = TxType::parse(text) {
        assert_eq!(t.as_str(), text);
    }
    if let Ok(suite) = OcraSuite::parse(text) {
        assert_eq!(suite.as_str(), text);
        assert_eq!(OcraSuite::parse(suite.as_str()).ok(), Some(suite.clone()));
        let _ = suite.encode_question(text);
    }
    if let Ok(amount) = parse_amount(text) {
        assert!(amount > 0);
        assert_eq!(parse_amount(&format_rials(amount)), Ok(amount));
        assert_eq!(parse_amount(&format_rials_fa(amount)), Ok(amount));
    }
    if let Ok(pan) = Pan::parse(text) {
        assert_eq!(Pan::parse(pan.expose_secret()).ok(), Some(pan.clone()));
    }
    if let Ok(phone) = normalize_phone(text) {
        assert_eq!(normalize_phone(&phone).ok(), Some(phone.clone()));
    }
    if let Ok(code) = normalize_activation_code(text) {
        assert_eq!(normalize_activation_code(&code).ok(), Some(code.clone()));
    }
    // Standard OTP accounts (issue 13, item 5): what parses prints back
    // to the same account, and a migration payload holds only valid ones.
    if let Ok(account) = pooya_protocol::OtpAccount::from_uri(text) {
        assert_eq!(
            pooya_protocol::OtpAccount::from_uri(&account.to_uri()).ok(),
            Some(account.clone())
        );
    }
    if let Ok(accounts) = pooya_protocol::OtpAccount::from_migration_uri(text) {
        assert!(accounts.iter().all(|a| a.validate().is_ok()));
    }
});
