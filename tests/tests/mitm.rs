//! A TLS man in the middle of activation (issue 10, item 1): a proxy on
//! 127.0.0.1 between the phone and the bank that sees every byte both ways
//! (as a TLS-terminating proxy, a mis-issued certificate or an insider at
//! the load balancer would) and may rewrite any of them. With activation
//! v2 it never learns the activation code, the device key or the seed,
//! and every rewrite of the request or the answer fails: the bank refuses
//! it, or the phone does, and nothing is stored on the phone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use pooya_core::{CoreError, Phone};
use serde_json::{Value, json};

/// Rewrites a body in flight.
type Rewrite = Box<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

/// What the proxy does to the next exchanges.
#[derive(Default)]
struct Plan {
    request: Option<Rewrite>,
    answer: Option<Rewrite>,
}

/// The man in the middle: an HTTP/1.1 proxy that forwards each request to
/// the bank (one exchange per connection), keeps a copy of every byte seen
/// and applies the current plan's rewrites to the bodies.
struct Mitm {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
    plan: Arc<Mutex<Plan>>,
}

/// Splits an HTTP message into its head (request or status line and
/// headers) and its body, reading the body by `Content-Length`.
fn read_message(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed inside the head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (head, body)
}

/// The head with `Content-Length` set to `len` and `Connection: close`.
fn rebuild(head: &str, len: usize) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0
            && (name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-length: {len}\r\nconnection: close\r\n\r\n"
    ));
    out.into_bytes()
}

impl Mitm {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(Plan::default()));
        let (s, p) = (Arc::clone(&seen), Arc::clone(&plan));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { return };
                let (head, body) = read_message(&mut client);
                s.lock().unwrap().extend_from_slice(head.as_bytes());
                s.lock().unwrap().extend_from_slice(b"\r\n\r\n");
                s.lock().unwrap().extend_from_slice(&body);
                let body = match &p.lock().unwrap().request {
                    Some(f) => f(body),
                    None => body,
                };
                let mut bank = TcpStream::connect(upstream).unwrap();
                bank.write_all(&rebuild(&head, body.len())).unwrap();
                bank.write_all(&body).unwrap();
                let (ahead, abody) = read_message(&mut bank);
                s.lock().unwrap().extend_from_slice(ahead.as_bytes());
                s.lock().unwrap().extend_from_slice(b"\r\n\r\n");
                s.lock().unwrap().extend_from_slice(&abody);
                let abody = match &p.lock().unwrap().answer {
                    Some(f) => f(abody),
                    None => abody,
                };
                let _ = client.write_all(&rebuild(&ahead, abody.len()));
                let _ = client.write_all(&abody);
            }
        });
        Self { addr, seen, plan }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, request: Option<Rewrite>, answer: Option<Rewrite>) {
        *self.plan.lock().unwrap() = Plan { request, answer };
    }

    fn seen(&self) -> Vec<u8> {
        self.seen.lock().unwrap().clone()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Rewrites one JSON field of a body.
fn edit_json(body: &[u8], field: &str, f: impl Fn(&str) -> String) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    let old = v[field].as_str().unwrap().to_owned();
    v[field] = json!(f(&old));
    serde_json::to_vec(&v).unwrap()
}

/// Flips the low bit of the hex digit at `i` of a hex string.
fn flip_hex(text: &str, i: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let d = chars[i].to_digit(16).unwrap() ^ 1;
    chars[i] = char::from_digit(d, 16).unwrap();
    chars.into_iter().collect()
}

fn phone_via(bank: &Bank, device: &Device, mitm: &Mitm) -> Phone {
    let mut phone = device.create(Arc::new(HttpTransport));
    phone
        .add_issuer("bank", &mitm.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    phone
}

fn bank_addr(bank: &Bank) -> SocketAddr {
    bank.url().trim_start_matches("http://").parse().unwrap()
}

#[test]
fn a_passive_man_in_the_middle_learns_nothing_it_can_use() {
    let bank = Bank::start(T0);
    let mitm = Mitm::start(bank_addr(&bank));
    let device = Device::new(T0);
    let mut phone = phone_via(&bank, &device, &mitm);
    let card_pan = pan(501);
    let code = bank.enroll(&card_pan);
    phone.add_card("bank", &code, None).unwrap();
    let seen = mitm.seen();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("POST /v1/activations"), "{text}");
    // Not the code in any form, not the phone number, not the device name.
    let grouped = pooya_protocol::ids::format_activation_code(&code);
    for secret in [
        code.as_str(),
        grouped.as_str(),
        &code[..6],
        &code[4..],
        "+989121234567",
        "9121234567",
        "e2e phone",
    ] {
        assert!(
            !contains(&seen, secret.as_bytes()),
            "{secret} crossed the wire"
        );
    }
    // Replaying the captured request gets the attacker nothing: the code
    // is spent, and even a first use would give a seed only the phone's
    // X25519 key can derive.
    let request = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &seen[i + 4..])
        .unwrap();
    let request_body: Vec<u8> = request
        .iter()
        .copied()
        .take_while(|b| *b != b'}')
        .chain(std::iter::once(b'}'))
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let replay = agent
        .post(format!("{}/v1/activations", bank.url()))
        .content_type("application/json")
        .send(&request_body[..])
        .unwrap();
    assert_eq!(replay.status().as_u16(), 403);
    // The activation was announced to the customer.
    let sms = bank.sms();
    assert!(sms.last().unwrap().contains("e2e phone"));
}

#[test]
fn every_rewrite_of_the_request_is_refused_and_the_code_survives() {
    let bank = Bank::start(T0);
    let mitm = Mitm::start(bank_addr(&bank));
    let device = Device::new(T0);
    let mut phone = phone_via(&bank, &device, &mitm);
    let card_pan = pan(502);
    let code = bank.enroll(&card_pan);
    // The rewrites a man in the middle can make without the code: flip
    // bits of the ciphertext (its start, middle and tag) or of the
    // encapsulated key, cut the ciphertext, swap in another sealing's
    // `enc`, or send a request sealed to the bank's key with its own
    // device key and a guessed code.
    let other = {
        let device = Device::new(T0);
        let transport = Arc::new(Capture::default());
        let mut p = device.create(transport.clone());
        p.add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
            .unwrap();
        // Any well-formed code: the request is sealed, then dropped.
        let _ = p.add_card("bank", "1234567897", None);
        transport.body()
    };
    let other_enc = serde_json::from_slice::<Value>(&other).unwrap()["enc"]
        .as_str()
        .unwrap()
        .to_owned();
    let rewrites: Vec<(&str, Rewrite)> = vec![
        (
            "sealed[0]",
            Box::new(|b| edit_json(&b, "sealed", |s| flip_hex(s, 0))),
        ),
        (
            "sealed[mid]",
            Box::new(|b| edit_json(&b, "sealed", |s| flip_hex(s, s.len() / 2))),
        ),
        (
            "sealed tag",
            Box::new(|b| edit_json(&b, "sealed", |s| flip_hex(s, s.len() - 1))),
        ),
        (
            "sealed cut",
            Box::new(|b| edit_json(&b, "sealed", |s| s[..s.len() - 2].to_owned())),
        ),
        (
            "enc x",
            Box::new(|b| edit_json(&b, "enc", |s| flip_hex(s, 20))),
        ),
        (
            "enc y",
            Box::new(|b| edit_json(&b, "enc", |s| flip_hex(s, 129))),
        ),
        (
            "another enc",
            Box::new(move |b| edit_json(&b, "enc", |_| other_enc.clone())),
        ),
        (
            "the attacker's own request",
            Box::new(move |_| other.clone()),
        ),
    ];
    for (what, rewrite) in rewrites {
        mitm.set(Some(rewrite), None);
        let r = phone.add_card("bank", &code, None);
        assert!(
            matches!(
                &r,
                Err(CoreError::IssuerError { status: 400, code })
                    if code == "not_sealed_to_issuer"
            ) || matches!(&r, Err(CoreError::ActivationRefused)),
            "{what}: {r:?}"
        );
        assert!(phone.cards().unwrap().is_empty(), "{what}");
    }
    // None of it spent the code: the rewrites that do not open cost
    // nothing, and the attacker's own well-sealed guess costs one of the
    // phone's five guesses (as any stranger's guess at a live code does);
    // the honest request, untouched, activates.
    mitm.set(None, None);
    phone.add_card("bank", &code, None).unwrap();
    assert_eq!(phone.cards().unwrap().len(), 1);
}

#[test]
fn every_rewrite_of_the_answer_is_refused_by_the_phone() {
    let bank = Bank::start(T0);
    let mitm = Mitm::start(bank_addr(&bank));
    let device = Device::new(T0);
    let mut phone = phone_via(&bank, &device, &mitm);
    let rewrites: Vec<(&str, Rewrite)> = vec![
        (
            "issuer key",
            Box::new(|b| edit_json(&b, "issuer_ephemeral_public_key", |s| flip_hex(s, 5))),
        ),
        (
            "signature",
            Box::new(|b| edit_json(&b, "signature", |s| flip_hex(s, 0))),
        ),
        (
            "card id",
            Box::new(|b| edit_json(&b, "card_id", |s| format!("{s}0"))),
        ),
        (
            "masked PAN",
            Box::new(|b| edit_json(&b, "masked_pan", |s| s.replacen("6104", "6037", 1))),
        ),
        (
            "bank name",
            Box::new(|b| edit_json(&b, "bank_name", |_| "Evil Bank".into())),
        ),
        (
            "a fake refusal",
            Box::new(|_| br#"{"error":"activation_refused","message":"no"}"#.to_vec()),
        ),
    ];
    for (i, (what, rewrite)) in rewrites.into_iter().enumerate() {
        let card_pan = pan(510 + i as u64);
        let code = bank.enroll(&card_pan);
        mitm.set(None, Some(rewrite));
        let r = phone.add_card("bank", &code, None);
        assert!(
            matches!(
                &r,
                Err(CoreError::BadSignature)
                    | Err(CoreError::BadResponse(_))
                    | Err(CoreError::ActivationRefused)
            ),
            "{what}: {r:?}"
        );
        assert!(phone.cards().unwrap().is_empty(), "{what}");
        // The bank did activate the card, so the customer is told, and
        // can re-enroll; the seed it holds is one nobody else can derive.
        let sms = bank.sms();
        assert!(sms.last().unwrap().contains("e2e phone"), "{what}");
    }
    // Byte by byte over the whole answer body: no change the phone
    // accepts yields another seed (whitespace-only changes parse the same).
    let card_pan = pan(530);
    let mut accepted = 0;
    for pos in (0..400).step_by(23) {
        let code = bank.enroll(&card_pan);
        mitm.set(
            None,
            Some(Box::new(move |mut b: Vec<u8>| {
                let i = pos % b.len();
                b[i] ^= 0x01;
                b
            })),
        );
        if phone.add_card("bank", &code, None).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 0, "a changed answer was accepted");
}

/// A transport that keeps the request and never reaches a bank.
#[derive(Default)]
struct Capture {
    body: Mutex<Vec<u8>>,
}

impl Capture {
    fn body(&self) -> Vec<u8> {
        self.body.lock().unwrap().clone()
    }
}

impl pooya_core::hooks::Transport for Capture {
    fn post_json(
        &self,
        _url: &str,
        body: &[u8],
        _timeout_ms: u64,
    ) -> Result<pooya_core::hooks::HttpResponse, pooya_core::hooks::HostError> {
        *self.body.lock().unwrap() = body.to_vec();
        Err(pooya_core::hooks::HostError::new("captured"))
    }
}
