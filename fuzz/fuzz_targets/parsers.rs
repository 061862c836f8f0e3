//! Fuzzes every text parser of pooya-protocol: OCRA suites, amounts, card
//! numbers, phone numbers and activation codes. None may panic, and what
//! parses must survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pooya_protocol::{
    OcraSuite, Pan, format_rials, format_rials_fa, normalize_activation_code, normalize_phone,
    parse_amount,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
});
