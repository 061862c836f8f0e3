//! Payment request URIs (docs/protocol.md, "Payment request URIs"): every
//! refusal code, the canonical round trip, no panic on any input, and the
//! worked example of the doc.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;

use pooya_protocol::payment::{MAX_URI_LEN, NumberError};
use pooya_protocol::{Language, PayeeName, PaymentError, PaymentRequest, TxType};
use proptest::prelude::*;

const DOC: &str = include_str!("../../docs/protocol.md");

const GOOD: &str =
    "pooya:pay?amount=1250000&payee=IR-SHOP-42&name=Ketab%20Iran&type=purchase&expires=1763700300";

fn good() -> PaymentRequest {
    PaymentRequest::new(
        1_250_000,
        "IR-SHOP-42",
        "Ketab Iran",
        TxType::Purchase,
        1_763_700_300,
    )
    .unwrap()
}

fn block(begin: &str, end: &str) -> &'static str {
    let start = DOC.find(begin).unwrap_or_else(|| panic!("{begin} missing"));
    let stop = DOC.find(end).unwrap_or_else(|| panic!("{end} missing"));
    DOC[start + begin.len()..stop].trim()
}

#[test]
fn the_good_uri_parses_and_is_canonical() {
    let r = PaymentRequest::parse(GOOD).unwrap();
    assert_eq!(r, good());
    assert_eq!(r.amount(), 1_250_000);
    assert_eq!(r.payee(), "IR-SHOP-42");
    assert_eq!(r.payee_name().as_str(), "Ketab Iran");
    assert_eq!(r.tx_type(), TxType::Purchase);
    assert_eq!(r.expires_at(), 1_763_700_300);
    assert_eq!(r.to_uri(), GOOD);
    assert_eq!(GOOD.parse::<PaymentRequest>(), Ok(good()));
}

#[test]
fn non_canonical_but_valid_forms_parse_to_the_same_request() {
    for uri in [
        // Another order.
        "pooya:pay?expires=1763700300&type=purchase&name=Ketab%20Iran&payee=IR-SHOP-42&amount=1250000",
        // The scheme in upper case (RFC 3986 §3.1).
        "POOYA:pay?amount=1250000&payee=IR-SHOP-42&name=Ketab%20Iran&type=purchase&expires=1763700300",
        // Lower-case hex, and percent-encoded unreserved characters (RFC 3986 §2.1, §2.3).
        "pooya:pay?amount=%31250000&payee=IR%2dSHOP-42&name=Ketab%20Iran&type=purchase&expires=1763700300",
    ] {
        assert_eq!(PaymentRequest::parse(uri), Ok(good()), "{uri}");
    }
    // encodeURIComponent leaves ' ( ) unencoded; they are query characters.
    let r = PaymentRequest::parse("pooya:pay?amount=5&payee=p&name=O'Brien&type=bill&expires=9")
        .unwrap();
    assert_eq!(r.payee_name().as_str(), "O'Brien");
    assert_eq!(
        r.to_uri(),
        "pooya:pay?amount=5&payee=p&name=O%27Brien&type=bill&expires=9"
    );
}

fn code_of(uri: &str) -> &'static str {
    match PaymentRequest::parse(uri) {
        Ok(r) => panic!("{uri} parsed as {r:?}"),
        Err(e) => e.code(),
    }
}

/// Replaces `param=…` in [`GOOD`] by `with` (the whole `param=value` part).
fn with(param: &str, part: &str) -> String {
    GOOD.split_once('?')
        .map(|(head, q)| {
            let parts: Vec<String> = q
                .split('&')
                .map(|p| {
                    if p.split_once('=').map(|(k, _)| k) == Some(param) {
                        part.to_owned()
                    } else {
                        p.to_owned()
                    }
                })
                .collect();
            format!("{head}?{}", parts.join("&"))
        })
        .unwrap()
}

/// Every refusal: the URI, its code, and for numbers the reason's code.
fn refusals() -> Vec<(String, &'static str, Option<&'static str>)> {
    let long_name = "a".repeat(MAX_URI_LEN);
    let mut v: Vec<(String, &'static str, Option<&'static str>)> = vec![
        (
            "https://bank.example/pay?amount=1".into(),
            "not_payment_uri",
            None,
        ),
        ("pooya:pay".into(), "not_payment_uri", None),
        ("pooya:Pay?amount=1".into(), "not_payment_uri", None),
        ("pooya:/pay?amount=1".into(), "not_payment_uri", None),
        ("pooyapay?amount=1".into(), "not_payment_uri", None),
        ("".into(), "not_payment_uri", None),
        (
            with("name", &format!("name={long_name}")),
            "uri_too_long",
            None,
        ),
        (with("name", "name=Ketab Iran"), "invalid_encoding", None),
        (with("name", "name=Ketab+Iran"), "invalid_encoding", None),
        (with("name", "name=کتاب"), "invalid_encoding", None),
        (with("name", "name=Ketab%2"), "invalid_encoding", None),
        (with("name", "name=Ketab%G0"), "invalid_encoding", None),
        (with("name", "name=%FF"), "invalid_encoding", None),
        (format!("{GOOD}#frag"), "invalid_encoding", None),
        (format!("{GOOD}&"), "malformed_parameter", None),
        (
            GOOD.replace("&payee", "&&payee"),
            "malformed_parameter",
            None,
        ),
        ("pooya:pay?".into(), "malformed_parameter", None),
        (with("type", "type"), "malformed_parameter", None),
        (with("type", "=purchase"), "malformed_parameter", None),
        (
            with("type", "type=purchase=bill"),
            "malformed_parameter",
            None,
        ),
        (format!("{GOOD}&bank=603799"), "unknown_parameter", None),
        (format!("{GOOD}&x-note=hi"), "unknown_parameter", None),
        (
            GOOD.replace("amount=", "%61mount="),
            "unknown_parameter",
            None,
        ),
        (
            GOOD.replace("amount=", "Amount="),
            "unknown_parameter",
            None,
        ),
        (
            format!("{GOOD}&amount=1250000"),
            "duplicate_parameter",
            None,
        ),
        (format!("{GOOD}&type=bill"), "duplicate_parameter", None),
        (with("expires", "type=bill"), "duplicate_parameter", None),
        (with("type", "amount=5"), "duplicate_parameter", None),
        (with("amount", "name=x"), "duplicate_parameter", None),
        (with("payee", "expires=1"), "duplicate_parameter", None),
        (with("name", "payee=x"), "duplicate_parameter", None),
        (
            GOOD.replace("&expires=1763700300", ""),
            "missing_parameter",
            None,
        ),
        (
            "pooya:pay?payee=a&name=b&type=bill&expires=1".into(),
            "missing_parameter",
            None,
        ),
        (with("amount", "amount=0"), "invalid_amount", Some("zero")),
        (with("amount", "amount="), "invalid_amount", Some("empty")),
        (
            with("amount", "amount=01250000"),
            "invalid_amount",
            Some("leading_zero"),
        ),
        (
            with("amount", "amount=00"),
            "invalid_amount",
            Some("leading_zero"),
        ),
        (
            with("amount", "amount=-5"),
            "invalid_amount",
            Some("not_digits"),
        ),
        (
            with("amount", "amount=%2B5"),
            "invalid_amount",
            Some("not_digits"),
        ),
        (
            with("amount", "amount=1%2C250%2C000"),
            "invalid_amount",
            Some("not_digits"),
        ),
        (
            with("amount", "amount=1.5"),
            "invalid_amount",
            Some("not_digits"),
        ),
        (
            with("amount", "amount=%DB%B1%DB%B2"),
            "invalid_amount",
            Some("not_digits"),
        ),
        (
            with("amount", "amount=18446744073709551616"),
            "invalid_amount",
            Some("overflow"),
        ),
        (with("expires", "expires="), "invalid_expiry", Some("empty")),
        (
            with("expires", "expires=0123"),
            "invalid_expiry",
            Some("leading_zero"),
        ),
        (
            with("expires", "expires=1e9"),
            "invalid_expiry",
            Some("not_digits"),
        ),
        (
            with("expires", "expires=99999999999999999999"),
            "invalid_expiry",
            Some("overflow"),
        ),
        (with("payee", "payee="), "invalid_payee", None),
        (with("payee", "payee=%20IR-SHOP-42"), "invalid_payee", None),
        (with("payee", "payee=-SHOP"), "invalid_payee", None),
        (with("payee", "payee=IR%2FSHOP"), "invalid_payee", None),
        (
            with("payee", &format!("payee={}", "a".repeat(65))),
            "invalid_payee",
            None,
        ),
        (with("name", "name="), "invalid_payee_name", None),
        (with("name", "name=%20Ketab"), "invalid_payee_name", None),
        (
            with("name", "name=Ketab%0AIran"),
            "invalid_payee_name",
            None,
        ),
        (with("name", "name=Ketab%00"), "invalid_payee_name", None),
        // U+202E RIGHT-TO-LEFT OVERRIDE, U+2067 RIGHT-TO-LEFT ISOLATE.
        (
            with("name", "name=Ketab%E2%80%AEnarI"),
            "invalid_payee_name",
            None,
        ),
        (
            with("name", "name=Ketab%E2%81%A7"),
            "invalid_payee_name",
            None,
        ),
        (
            with("name", "name=%C2%ABKetab%C2%BB"),
            "invalid_payee_name",
            None,
        ),
        (with("name", "name=Ketab%3A"), "invalid_payee_name", None),
        // "é" as e + U+0301 COMBINING ACUTE ACCENT: not NFC.
        (
            with("name", "name=Caf%65%CC%81"),
            "invalid_payee_name",
            None,
        ),
        (
            with("name", &format!("name={}", "a".repeat(65))),
            "invalid_payee_name",
            None,
        ),
        (with("type", "type="), "invalid_type", None),
        (with("type", "type=Purchase"), "invalid_type", None),
        (with("type", "type=card_to_card"), "invalid_type", None),
        (with("type", "type=bill%20"), "invalid_type", None),
    ];
    // The leftmost bad part is reported.
    v.push((
        "pooya:pay?amount=0&payee=-&name=&type=x&expires=01".into(),
        "invalid_amount",
        Some("zero"),
    ));
    v.push((
        "pooya:pay?type=x&amount=0&payee=-&name=&expires=01".into(),
        "invalid_type",
        None,
    ));
    v
}

#[test]
fn every_refusal_has_its_code() {
    for (uri, code, reason) in refusals() {
        let err = PaymentRequest::parse(&uri).expect_err(&uri);
        assert_eq!(err.code(), code, "{uri}: {err}");
        let got_reason = match err {
            PaymentError::InvalidAmount(r) | PaymentError::InvalidExpiry(r) => Some(r.code()),
            _ => None,
        };
        assert_eq!(got_reason, reason, "{uri}");
    }
    assert_eq!(code_of(&format!("{GOOD}&payee=x")), "duplicate_parameter");
}

#[test]
fn missing_parameters_are_named_in_canonical_order() {
    assert_eq!(
        PaymentRequest::parse("pooya:pay?name=b&type=bill"),
        Err(PaymentError::MissingParameter("amount"))
    );
    assert_eq!(
        PaymentRequest::parse("pooya:pay?amount=1&payee=a&name=b&type=bill"),
        Err(PaymentError::MissingParameter("expires"))
    );
    assert_eq!(
        PaymentRequest::parse(&format!("{GOOD}&bank=1")),
        Err(PaymentError::UnknownParameter("bank".into()))
    );
}

#[test]
fn the_uri_length_bound_is_exact() {
    // A name of 64 four-byte letters (U+1D400 MATHEMATICAL BOLD CAPITAL A):
    // the longest canonical URI.
    let name: String = std::iter::repeat_n('\u{1D400}', 64).collect();
    let r =
        PaymentRequest::new(u64::MAX, &"a".repeat(64), &name, TxType::Purchase, u64::MAX).unwrap();
    let uri = r.to_uri();
    assert_eq!(uri.len(), 925);
    assert_eq!(PaymentRequest::parse(&uri), Ok(r));
    let padded = format!("{GOOD}{}", "&".repeat(MAX_URI_LEN - GOOD.len()));
    assert_eq!(padded.len(), MAX_URI_LEN);
    assert_eq!(code_of(&padded), "malformed_parameter");
    assert_eq!(code_of(&format!("{padded}&")), "uri_too_long");
}

#[test]
fn constructors_refuse_what_the_parser_refuses() {
    let new = |amount, payee, name| {
        PaymentRequest::new(amount, payee, name, TxType::Transfer, 10)
            .unwrap_err()
            .code()
    };
    assert_eq!(new(0, "p", "n"), "invalid_amount");
    assert_eq!(new(1, " p", "n"), "invalid_payee");
    assert_eq!(new(1, "", "n"), "invalid_payee");
    assert_eq!(new(1, "p", "n "), "invalid_payee_name");
    assert_eq!(new(1, "p", "a\u{202E}b"), "invalid_payee_name");
    assert_eq!(PayeeName::new("").unwrap_err().code(), "invalid_payee_name");
    // ZWNJ inside a Persian word is fine.
    assert!(PayeeName::new("کتاب\u{200C}فروشی").is_ok());
}

#[test]
fn expiry_is_checked_at_the_time_of_use() {
    let r = good();
    assert_eq!(r.check(1_763_700_000), Ok(300));
    assert_eq!(r.check(1_763_700_299), Ok(1));
    for now in [1_763_700_300, 1_763_700_301, u64::MAX] {
        assert_eq!(
            r.check(now),
            Err(PaymentError::Expired {
                expires_at: 1_763_700_300,
                now
            })
        );
        assert_eq!(r.check(now).unwrap_err().code(), "expired");
        assert_eq!(r.display(Language::Fa, now).unwrap_err().code(), "expired");
    }
    // Parsing does not look at any clock: an expiry of 0 parses.
    let old = PaymentRequest::parse(&with("expires", "expires=0")).unwrap();
    assert_eq!(old.check(0).unwrap_err().code(), "expired");
}

#[test]
fn every_documented_code_is_tested_and_every_tested_code_documented() {
    let documented: BTreeSet<String> =
        block("<!-- payment-codes:begin -->", "<!-- payment-codes:end -->")
            .lines()
            .filter_map(|l| l.split('|').nth(1))
            .map(str::trim)
            .filter(|c| c.starts_with('`'))
            .map(|c| c.trim_matches('`').to_owned())
            .collect();
    let mut tested: BTreeSet<String> = refusals()
        .into_iter()
        .map(|(_, c, _)| c.to_owned())
        .collect();
    tested.insert(good().check(u64::MAX).unwrap_err().code().to_owned());
    assert_eq!(documented, tested);
    let reasons: BTreeSet<&str> = refusals().into_iter().filter_map(|(_, _, r)| r).collect();
    let all = [
        NumberError::Empty,
        NumberError::NotDigits,
        NumberError::LeadingZero,
        NumberError::Overflow,
        NumberError::Zero,
    ];
    assert_eq!(reasons, all.iter().map(|r| r.code()).collect());
    let doc_reasons = "`empty`, `not_digits`, `leading_zero`, `overflow`, `zero`";
    assert!(DOC.contains(doc_reasons));
}

#[test]
fn the_view_shows_both_digit_systems() {
    let r = PaymentRequest::new(2_000_000_000, "PAYEE-1", "Shop", TxType::Bill, 4000).unwrap();
    let fa = r.display(Language::Fa, 400).unwrap();
    assert_eq!(fa.amount, 2_000_000_000);
    assert_eq!(fa.amount_latin, "2,000,000,000");
    assert_eq!(fa.amount_fa, "۲٬۰۰۰٬۰۰۰٬۰۰۰");
    assert_eq!(fa.amount_text, "۲٬۰۰۰٬۰۰۰٬۰۰۰ ریال");
    assert_eq!(fa.tx_type, TxType::Bill);
    assert_eq!(fa.tx_type_name, "پرداخت قبض");
    assert_eq!(fa.seconds_left, 3600);
    assert_eq!(fa.time_left, "۶۰:۰۰");
    let en = r.display(Language::En, 3999).unwrap();
    assert_eq!(en.amount_text, "2,000,000,000 Rials");
    assert_eq!(en.tx_type_name, "Bill payment");
    assert_eq!(en.seconds_left, 1);
    assert_eq!(en.time_left, "0:01");
    assert_eq!(en.payee, "PAYEE-1");
    assert_eq!(en.payee_name, "Shop");
}

// ---------------------------------------------------------------------------
// The worked example (docs/protocol.md, "Payment request URIs").

const EXAMPLE_NOW: u64 = 1_763_700_000;

fn line(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("    {name:<18}{value}\n"));
}

/// Renders the example from the code; no value is copied from the doc.
fn example() -> String {
    let r = PaymentRequest::new(
        1_250_000,
        "IR-SHOP-42",
        "کتاب\u{200C}فروشی ایران",
        TxType::Purchase,
        1_763_700_300,
    )
    .unwrap();
    let uri = r.to_uri();
    assert_eq!(PaymentRequest::parse(&uri), Ok(r.clone()));
    let fa = r.display(Language::Fa, EXAMPLE_NOW).unwrap();
    let en = r.display(Language::En, EXAMPLE_NOW).unwrap();
    let mut out = String::new();
    line(&mut out, "uri", &uri);
    line(&mut out, "now", &EXAMPLE_NOW.to_string());
    line(&mut out, "amount (Latin)", &fa.amount_latin);
    line(&mut out, "amount (Persian)", &fa.amount_fa);
    line(&mut out, "amount, fa", &fa.amount_text);
    line(&mut out, "amount, en", &en.amount_text);
    line(&mut out, "payee", &fa.payee);
    line(&mut out, "payee name", &fa.payee_name);
    line(&mut out, "type, fa", fa.tx_type_name);
    line(&mut out, "type, en", en.tx_type_name);
    line(&mut out, "seconds left", &fa.seconds_left.to_string());
    line(&mut out, "time left, fa", &fa.time_left);
    line(&mut out, "time left, en", &en.time_left);
    out
}

#[test]
fn doc_example_matches() {
    let computed = example();
    let doc = block(
        "<!-- payment-example:begin -->",
        "<!-- payment-example:end -->",
    );
    assert_eq!(
        doc,
        computed.trim(),
        "docs/protocol.md example; computed:\n{computed}"
    );
    // The doc's URI parses to the example's request.
    let uri = doc
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("uri"))
        .map(str::trim)
        .unwrap();
    let r = PaymentRequest::parse(uri).unwrap();
    assert_eq!(r.payee_name().as_str(), "کتاب\u{200C}فروشی ایران");
    assert_eq!(r.check(EXAMPLE_NOW), Ok(300));
}

// ---------------------------------------------------------------------------
// Properties.

fn request_strategy() -> impl Strategy<Value = PaymentRequest> {
    (
        1u64..=u64::MAX,
        "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
        // Letters and digits of Latin and Persian, spaces, ZWNJ and the
        // allowed marks inside; a letter at each end.
        "[A-Za-zء-غف-يپچژگکی۰-۹][A-Za-zء-غف-يپچژگکی0-9۰-۹ \u{200C}\\-_.'+#/\u{2019}]{0,62}[A-Za-zء-غف-يپچژگکی]",
        prop::sample::select(TxType::ALL.to_vec()),
        any::<u64>(),
    )
        .prop_map(|(amount, payee, name, tx_type, expires)| {
            PaymentRequest::new(amount, &payee, &name, tx_type, expires)
                .unwrap_or_else(|e| panic!("strategy made an invalid request ({name:?}): {e}"))
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Remove(usize),
    Replace(usize, char),
    Truncate(usize),
    Repeat(usize, usize),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    let c = prop_oneof![
        prop::sample::select(vec![
            '&', '=', '%', '+', ' ', '0', '9', 'a', '-', '#', '?', ':'
        ]),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), c).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Repeat(i, j)),
    ]
}

fn mutate(uri: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = uri.chars().collect();
    let n = chars.len();
    match *m {
        Mutation::Insert(i, c) => chars.insert(i % (n + 1), c),
        Mutation::Remove(i) => {
            chars.remove(i % n);
        }
        Mutation::Replace(i, c) => chars[i % n] = c,
        Mutation::Truncate(i) => chars.truncate(i % n),
        Mutation::Repeat(i, j) => {
            let (a, b) = (i % n, j % n);
            let (a, b) = (a.min(b), a.max(b));
            let piece: Vec<char> = chars[a..b].to_vec();
            chars.splice(b..b, piece);
        }
    }
    chars.into_iter().collect()
}

/// What holds of anything the parser accepts.
fn accepted_is_canonicalisable(r: &PaymentRequest) {
    let uri = r.to_uri();
    assert!(uri.len() <= 925);
    assert_eq!(PaymentRequest::parse(&uri).as_ref(), Ok(r));
    assert!(r.amount() > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn to_uri_then_parse_is_the_identity(r in request_strategy()) {
        let uri = r.to_uri();
        prop_assert!(uri.len() <= MAX_URI_LEN);
        prop_assert!(uri.is_ascii());
        prop_assert_eq!(PaymentRequest::parse(&uri), Ok(r));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in any::<String>()) {
        if let Ok(r) = PaymentRequest::parse(&s) {
            accepted_is_canonicalisable(&r);
        }
    }

    #[test]
    fn parse_never_panics_on_uri_like_text(s in "(pooya|POOYA|x):(pay)?\\?[a-z=&%0-9A-F+ ._~-]{0,80}") {
        if let Ok(r) = PaymentRequest::parse(&s) {
            accepted_is_canonicalisable(&r);
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_uris(r in request_strategy(),
                                          ms in prop::collection::vec(mutation_strategy(), 1..4)) {
        let mut uri = r.to_uri();
        for m in &ms {
            if uri.is_empty() {
                break;
            }
            uri = mutate(&uri, m);
        }
        if let Ok(parsed) = PaymentRequest::parse(&uri) {
            accepted_is_canonicalisable(&parsed);
        }
    }

    #[test]
    fn a_changed_field_never_parses_as_the_original(r in request_strategy(), amount in 1u64..=u64::MAX) {
        prop_assume!(amount != r.amount());
        let uri = r.to_uri().replacen(&format!("amount={}", r.amount()), &format!("amount={amount}"), 1);
        let parsed = PaymentRequest::parse(&uri).unwrap();
        prop_assert_eq!(parsed.amount(), amount);
        prop_assert_ne!(parsed, r);
    }
}
