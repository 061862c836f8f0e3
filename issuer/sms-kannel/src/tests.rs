#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::*;

/// How the tiny Kannel stand-in answers.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16, &'static str),
    /// Reads the request and never answers.
    Silent,
}

/// A one-thread HTTP server on 127.0.0.1 that records each request line's
/// target and answers as told; the base URL and the recorded targets.
fn kannel_stand_in(answer: Answer) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
            log.lock().unwrap().push(target);
            match answer {
                Answer::Status(status, body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Answer::Silent => std::thread::sleep(Duration::from_secs(5)),
            }
        }
    });
    (base, seen)
}

fn secret() -> Arc<GatewaySecret> {
    Arc::new(GatewaySecret::new(Zeroizing::new(
        "gw-secret-0123456789abcdefghijklmnop".into(),
    )))
}

fn sender(base: &str, timeout_ms: u64) -> KannelSender {
    KannelSender::new(KannelConfig {
        sendsms_url: format!("{base}/cgi-bin/sendsms"),
        username: "pooya".into(),
        password: Zeroizing::new("p@ss word".into()),
        from: None,
        public_base_url: "http://10.0.0.5:8080/".into(),
        gateway_secret: secret(),
        timeout: Duration::from_millis(timeout_ms),
    })
}

fn sms() -> Sms {
    Sms {
        message_id: "msg_00ff".into(),
        to: "+989121234567".into(),
        from: "30003303".into(),
        // "رمز ۱۲" (Persian letters, a space, Persian digits).
        body: Zeroizing::new("\u{0631}\u{0645}\u{0632} \u{06F1}\u{06F2}".into()),
        created_at: 5,
    }
}

#[test]
fn sendsms_carries_the_exact_query_and_takes_accepted_and_queued() {
    for body in ["0: Accepted for delivery", "3: Queued for later delivery"] {
        let (base, seen) = kannel_stand_in(Answer::Status(202, body));
        assert_eq!(sender(&base, 2000).send(&sms()).unwrap(), None);
        let tag = secret().dlr_tag("msg_00ff");
        assert_eq!(tag.len(), 32);
        let expected = format!(
            "/cgi-bin/sendsms?username=pooya&password=p%40ss%20word&from=30003303\
             &to=%2B989121234567&charset=UTF-8&coding=2\
             &text=%D8%B1%D9%85%D8%B2%20%DB%B1%DB%B2&dlr-mask=31\
             &dlr-url=http%3A%2F%2F10.0.0.5%3A8080%2Fv1%2Fsms%2Fkannel%2Fdlr%3Fmsg%3Dmsg_00ff\
             %26type%3D%25d%26tag%3D{tag}"
        );
        assert_eq!(*seen.lock().unwrap(), vec![expected]);
    }
}

#[test]
fn a_configured_sender_number_replaces_the_messages() {
    let (base, seen) = kannel_stand_in(Answer::Status(202, "0: Accepted for delivery"));
    let mut s = sender(&base, 2000);
    s.config.from = Some("98300".into());
    s.send(&sms()).unwrap();
    assert!(seen.lock().unwrap()[0].contains("&from=98300&"));
}

#[test]
fn refusals_failures_and_timeouts_are_sms_errors() {
    for (status, body) in [
        (403, "Authorization failed for sendsms"),
        (202, "4: Something new"),
        (503, "Temporal failure, try again later."),
        (200, "0: Accepted for delivery"),
    ] {
        let (base, _) = kannel_stand_in(Answer::Status(status, body));
        let e = sender(&base, 2000).send(&sms()).unwrap_err();
        assert_eq!(e.code(), "sms_failed");
        let text = e.to_string();
        assert!(text.contains(&status.to_string()), "{text}");
        assert!(!text.contains("p@ss") && !text.contains("p%40ss"), "{text}");
    }
    let (base, _) = kannel_stand_in(Answer::Silent);
    let started = std::time::Instant::now();
    let e = sender(&base, 300).send(&sms()).unwrap_err();
    assert_eq!(e.code(), "sms_failed");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = sender(&format!("http://127.0.0.1:{port}"), 1000)
        .send(&sms())
        .unwrap_err();
    assert_eq!(e.code(), "sms_failed");
    assert!(e.to_string().contains("connection failed"), "{e}");
}

#[test]
fn debug_never_shows_the_secrets() {
    let s = sender("http://127.0.0.1:1", 100);
    let text = format!("{s:?} {:?}", secret());
    assert!(
        !text.contains("p@ss") && !text.contains("gw-secret"),
        "{text}"
    );
}

#[test]
fn dlr_tags_name_one_message_under_one_secret() {
    let s = secret();
    let tag = s.dlr_tag("msg_1");
    assert!(s.verify_dlr_tag("msg_1", tag.as_bytes()));
    assert!(!s.verify_dlr_tag("msg_2", tag.as_bytes()));
    assert!(!s.verify_dlr_tag("msg_1", &tag.as_bytes()[1..]));
    let other = GatewaySecret::new(Zeroizing::new("another-secret-0123456789abcdefghij".into()));
    assert!(!other.verify_dlr_tag("msg_1", tag.as_bytes()));
    assert!(s.matches(b"gw-secret-0123456789abcdefghijklmnop"));
    assert!(!s.matches(b"gw-secret-0123456789abcdefghijklmnoq"));
    assert!(!s.matches(b""));
}

#[test]
fn delivery_reports_parse() {
    let q = DlrQuery::parse("msg=msg_1&type=8&tag=ab").unwrap();
    assert_eq!(
        (q.message_id.as_str(), q.report, q.tag.as_str()),
        ("msg_1", DeliveryReport::SmscSubmitted, "ab")
    );
    for (t, r) in [
        (1, DeliveryReport::Delivered),
        (2, DeliveryReport::Failed),
        (4, DeliveryReport::Buffered),
        (16, DeliveryReport::SmscRejected),
    ] {
        assert_eq!(report_of_type(t), Some(r));
    }
    for (raw, code) in [
        ("msg=msg_1&type=3&tag=ab", "invalid_report"),
        ("msg=msg_1&type=%d&tag=ab", "invalid_report"),
        ("msg=msg_1&type=1", "invalid_query"),
        ("msg=msg_1&type=1&tag=ab&tag=cd", "invalid_query"),
        ("msg=msg_1&type=1&tag=ab&x=1", "invalid_query"),
        ("msg=%FF&type=1&tag=ab", "invalid_query"),
    ] {
        assert_eq!(DlrQuery::parse(raw).unwrap_err().code(), code, "{raw}");
    }
}

#[test]
fn inbound_texts_decode_in_utf8_and_ucs2() {
    // "۰۰۰۱" recoded to UTF-8 by Kannel (mo-recode), and as UCS-2.
    let utf8 = InboundQuery::parse(
        "secret=s&from=09121234567&to=30003303&coding=0&charset=UTF-8\
         &text=%DB%B0%DB%B0%DB%B0%DB%B1",
    )
    .unwrap();
    assert_eq!(utf8.text().unwrap().as_str(), "۰۰۰۱");
    assert_eq!(
        (utf8.from.as_str(), utf8.to.as_str()),
        ("09121234567", "30003303")
    );
    assert_eq!(utf8.secret.as_slice(), b"s");
    let ucs2 = InboundQuery::parse(
        "secret=s&from=%2B989121234567&to=30003303&coding=2&charset=UTF-16BE\
         &text=%06%F0%06%F0%06%F0%06%F1",
    )
    .unwrap();
    assert_eq!(ucs2.text().unwrap().as_str(), "۰۰۰۱");
    assert_eq!(ucs2.from, "+989121234567");
    let plain = InboundQuery::parse("secret=s&from=0912&to=3000&text=00+01").unwrap();
    assert_eq!(plain.text().unwrap().as_str(), "00 01");
    for (raw, code) in [
        ("secret=s&from=1&to=2", "invalid_query"),
        ("secret=s&from=1&to=2&text=a&other=1", "invalid_query"),
        ("secret=s&from=1&to=2&text=a&coding=7", "invalid_query"),
        ("secret=s&from=1&to=2&text=%FF", "invalid_text"),
        ("secret=s&from=1&to=2&text=%06&coding=2", "invalid_text"),
        ("secret=s&from=1&to=2&text=%D8%00&coding=2", "invalid_text"),
        (
            "secret=s&from=1&to=2&text=a&charset=ISO-8859-1",
            "invalid_text",
        ),
    ] {
        let e = InboundQuery::parse(raw).and_then(|q| q.text()).unwrap_err();
        assert_eq!(e.code(), code, "{raw}");
    }
    let dbg = format!("{utf8:?}");
    assert!(!dbg.contains('۰') && !dbg.contains("secret: "), "{dbg}");
}

proptest! {
    #[test]
    fn query_parsers_never_panic(raw in ".{0,200}") {
        let _ = DlrQuery::parse(&raw);
        let _ = InboundQuery::parse(&raw).and_then(|q| q.text());
    }

    #[test]
    fn any_text_round_trips_through_the_sendsms_encoding(text in "\\PC{0,80}") {
        let encoded = enc(&text).to_string();
        let back = InboundQuery::parse(&format!("secret=s&from=1&to=2&text={encoded}")).unwrap();
        let decoded = back.text().unwrap();
        prop_assert_eq!(decoded.as_str(), text.as_str());
    }
}
