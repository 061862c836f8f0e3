//! Harim over real HTTP on 127.0.0.1: two real issuers (BINs 610433 and
//! 603799, each its own keys and data directory) behind one Harim; a dead,
//! a hung and a returning bank; gateway auth, rate limits, reloads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../issuer/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Bank, Client};
use pooya_harim::{BackgroundHarim, HarimConfig};
use pooya_issuer::ManualClock;
use pooya_protocol::ids;
use serde_json::{Value, json};

const GATEWAY: &str = "gw-shaparak-token-0001";
const GATEWAY2: &str = "gw-sepehr-token-000002";
const ADMIN: &str = "harim-admin-token-0001";
const OPS: &str = "harim-ops-token-000001";
const PAYEE: &str = "IR-SHOP-42";

/// A card number of `bin` (6 digits) with `n` in the middle.
fn card(bin: &str, n: u64) -> String {
    let payload = format!("{bin}{n:09}");
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

/// Harim's clock, standing with the banks' manual clock.
struct BankClock(ManualClock);

impl pooya_harim::Clock for BankClock {
    fn now(&self) -> u64 {
        pooya_issuer::Clock::now(&self.0)
    }
}

/// An issuer entry of Harim's settings, its token in a file.
fn issuer_entry(
    dir: &Path,
    name: &str,
    base: &str,
    bins: &[&str],
    token: &str,
    extra: Value,
) -> Value {
    let path = dir.join(format!("{name}.token"));
    std::fs::write(&path, format!("{token}\n")).unwrap();
    let mut v = json!({"name": name, "base_url": base, "bins": bins, "token": {"file": path}});
    if let Value::Object(m) = extra {
        for (k, x) in m {
            v[k] = x;
        }
    }
    v
}

struct Setup {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), ADMIN).unwrap();
        let path = dir.path().join("harim.json");
        Self { dir, path }
    }

    /// Writes the settings with these issuers and the gateways.
    fn write(&self, issuers: &[Value], gateways: Value) {
        let v = json!({
            "admin_token": {"file": self.dir.path().join("admin.token")},
            "ops_token": {"env": "HARIM_OPS"},
            "gateways": gateways,
            "issuers": issuers,
        });
        std::fs::write(&self.path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    fn default_gateways() -> Value {
        json!([{"name": "shaparak", "token": {"env": "HARIM_GW"}, "rate_per_sec": 1000, "burst": 1000}])
    }

    /// The settings entry of a real `bank` owning `bin`, with its gateway
    /// token and `extra` settings.
    fn bank_entry(&self, name: &str, bank: &Bank, bin: &str, extra: Value) -> Value {
        issuer_entry(
            self.dir.path(),
            name,
            &bank.client.base,
            &[bin],
            bank.gateway(),
            extra,
        )
    }

    /// Writes the settings of Mellat (BIN 610433) and Saderat (BIN 603799),
    /// both with `extra`, and the default gateway.
    fn write_two_banks(&self, mellat: &Bank, saderat: &Bank, extra: &Value) {
        self.write(
            &[
                self.bank_entry("mellat", mellat, "610433", extra.clone()),
                self.bank_entry("saderat", saderat, "603799", extra.clone()),
            ],
            Self::default_gateways(),
        );
    }

    /// Starts Harim on `clock` and a client of it.
    fn start_with_client(&self, clock: &ManualClock) -> (BackgroundHarim, Client) {
        let server = self.start(clock);
        let client = Client::new(&server.base_url());
        (server, client)
    }

    fn start(&self, clock: &ManualClock) -> BackgroundHarim {
        let mut cfg = HarimConfig::new(&self.path);
        cfg.listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.clock = Arc::new(BankClock(clock.clone()));
        let env: HashMap<&str, &str> = [
            ("HARIM_GW", GATEWAY),
            ("HARIM_GW2", GATEWAY2),
            ("HARIM_OPS", OPS),
        ]
        .into();
        cfg.env = Arc::new(move |k| env.get(k).map(|v| (*v).to_owned()));
        pooya_harim::spawn_on_thread(cfg).unwrap()
    }
}

fn otp_body(pan: &str, amount: u64) -> Value {
    json!({"pan": pan, "amount": amount, "payee_id": PAYEE, "type": "purchase"})
}

fn verify_body(pan: &str, code: &str, amount: u64) -> Value {
    json!({"pan": pan, "code": code, "amount": amount, "payee": PAYEE, "type": "purchase", "kind": "second"})
}

/// The code of the `nth` (1-based) Harim PIN SMS `bank` sent to `phone`
/// (the only texts naming the payee), waiting up to 10 s: SMS go out after
/// the answer.
fn harim_pin(bank: &Bank, phone: &str, nth: usize) -> String {
    let start = Instant::now();
    loop {
        let pins: Vec<String> = bank
            .outbox(phone)
            .iter()
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .filter(|b| b.contains("فروشگاه نمونه"))
            .collect();
        if pins.len() >= nth {
            return pooya_issuer::messages::find_one_time_code(&pins[nth - 1])
                .unwrap_or_else(|| panic!("no code in {}", pins[nth - 1]));
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{phone} got {} Harim PINs",
            pins.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a bank's server, keeping its port.
fn kill(bank: &mut Bank) -> SocketAddr {
    let s = bank.server.take().unwrap();
    let addr = s.local_addr();
    s.shutdown().unwrap();
    addr
}

/// Starts a bank's server again on `addr`.
fn revive(bank: &mut Bank, addr: SocketAddr) {
    let mut cfg = pooya_issuer::ServerConfig::new(bank.dir.path());
    cfg.listen = addr;
    cfg.clock = Arc::new(bank.clock.clone());
    cfg.settings = bank.settings.clone();
    bank.server = Some(pooya_issuer::spawn_on_thread(cfg).unwrap());
}

fn metrics(harim: &Client) -> String {
    let a = harim.get("/metrics", Some(OPS));
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

/// Two banks, cards enrolled and activated at each; Harim routes PIN
/// requests and verifications to the right bank; an unknown BIN gets the
/// unknown-card answer, byte for byte.
#[test]
fn two_banks_behind_one_harim() {
    let mellat = Bank::start();
    let saderat = Bank::start();
    let setup = Setup::new();
    setup.write_two_banks(&mellat, &saderat, &json!({}));
    let (harim_server, harim) = setup.start_with_client(&mellat.clock);

    let cards = [
        (&mellat, card("610433", 11), "09121110001"),
        (&saderat, card("603799", 22), "09122220002"),
    ];
    for (bank, pan, phone) in &cards {
        // The app at the card's own bank (the same phone app holds both).
        bank.enroll_and_activate(pan, phone);
        bank.register_merchant(PAYEE, "فروشگاه نمونه");
    }
    for (i, (bank, pan, phone)) in cards.iter().enumerate() {
        let a = harim.post("/v1/otp-requests", Some(GATEWAY), &otp_body(pan, 1_250_000));
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.json()["status"], "requested");
        // The PIN SMS lands in this bank's outbox, and only there.
        let code = harim_pin(bank, phone, 1);
        let other = cards[1 - i].0;
        assert!(
            other.outbox(phone).is_empty(),
            "the other bank texted {phone}"
        );
        let wrong = harim.post(
            "/v1/verify",
            Some(GATEWAY),
            &verify_body(pan, "0000000", 1_250_000),
        );
        assert_eq!(wrong.status, 200);
        assert_eq!(wrong.json()["reason"], "wrong_code", "{}", wrong.body);
        let ok = harim.post(
            "/v1/verify",
            Some(GATEWAY),
            &verify_body(pan, &code, 1_250_000),
        );
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(
            ok.json(),
            json!({"result": "accepted", "reason": "ok", "matched": "transaction"})
        );
        // The bank's answer is passed back unchanged: a replay, as the bank says it.
        let again = harim.post(
            "/v1/verify",
            Some(GATEWAY),
            &verify_body(pan, &code, 1_250_000),
        );
        assert_eq!(again.json()["reason"], "replayed", "{}", again.body);
    }
    let m = metrics(&harim);
    for name in ["mellat", "saderat"] {
        assert!(m.contains(&format!("pooya_harim_issuer_requests_total{{issuer=\"{name}\",route=\"/v1/verify\",status=\"200\"}} 3")), "{m}");
        assert!(
            m.contains(&format!(
                "pooya_harim_issuer_breaker_state{{issuer=\"{name}\"}} 0"
            )),
            "{m}"
        );
        assert!(
            m.contains(&format!(
                "pooya_harim_issuer_in_flight{{issuer=\"{name}\"}} 0"
            )),
            "{m}"
        );
    }
    assert!(
        m.contains(
            "pooya_harim_gateway_requests_total{gateway=\"shaparak\",route=\"/v1/verify\"} 6"
        ),
        "{m}"
    );

    // A card of a BIN no bank owns gets what a bank answers a card it does
    // not know, byte for byte: the same body sent to a real issuer.
    let unknown = card("589210", 33);
    let unknown_of_mellat = card("610433", 99);
    let same = |path: &str, body: &[u8]| {
        let h = harim.raw(
            "POST",
            path,
            Some(GATEWAY),
            Some("application/json"),
            Some(body),
        );
        let b = mellat.client.raw(
            "POST",
            path,
            Some(mellat.gateway()),
            Some("application/json"),
            Some(body),
        );
        assert_eq!(
            (h.status, &h.body),
            (b.status, &b.body),
            "{path} {}",
            String::from_utf8_lossy(body)
        );
        h
    };
    let a = same(
        "/v1/otp-requests",
        otp_body(&unknown, 5000).to_string().as_bytes(),
    );
    assert_eq!(a.status, 202);
    let a = same(
        "/v1/verify",
        verify_body(&unknown, "1234567", 5000)
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        a.json(),
        json!({"result": "rejected", "reason": "wrong_code"})
    );
    // ... and the same as a bank's own unknown card through Harim.
    let through = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&unknown_of_mellat, "1234567", 5000),
    );
    assert_eq!(through.body, a.body);
    let bad_pan = unknown.replace("589210", "589211");
    for (path, body) in [
        ("/v1/verify", json!({"pan": bad_pan, "code": "1", "amount": 1, "kind": "second"}).to_string()),
        ("/v1/verify", json!({"pan": "12", "code": "1", "amount": 1, "kind": "second"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 1, "kind": "second", "x": 1}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "amount": 1, "kind": "second"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "12a", "amount": 1, "kind": "second"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 0, "kind": "second"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 1, "kind": "third"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 1, "kind": "second", "payee": "a b"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 1, "kind": "second", "payee": PAYEE}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 1, "kind": "second", "type": "bill"}).to_string()),
        ("/v1/verify", json!({"pan": unknown, "code": "1", "amount": 1, "kind": "first", "payee": PAYEE, "type": "bill"}).to_string()),
        ("/v1/verify", "{\"pan\":".to_owned()),
        ("/v1/otp-requests", json!({"pan": bad_pan, "amount": 1, "payee_id": PAYEE, "type": "purchase"}).to_string()),
        ("/v1/otp-requests", json!({"pan": unknown, "amount": 0, "payee_id": PAYEE, "type": "purchase"}).to_string()),
        ("/v1/otp-requests", json!({"pan": unknown, "amount": 1, "payee_id": "-x", "type": "purchase"}).to_string()),
        ("/v1/otp-requests", json!({"pan": unknown, "amount": 1, "payee_id": PAYEE}).to_string()),
        ("/v1/otp-requests", json!({"pan": unknown, "amount": 1, "payee_id": PAYEE, "type": "gift"}).to_string()),
        ("/v1/otp-requests", json!({"pan": unknown, "amount": 1, "payee_id": PAYEE, "type": "bill", "payee_name": "x"}).to_string()),
    ] {
        let a = same(path, body.as_bytes());
        assert_eq!(a.status, 400, "{body}: {}", a.body);
    }
    // A body past body_limit_bytes, as the issuer.
    let big = format!(
        r#"{{"pan":"{unknown}","code":"{}","amount":1,"kind":"second"}}"#,
        "1".repeat(20_000)
    );
    let h = same("/v1/verify", big.as_bytes());
    assert_eq!(
        (h.status, h.error_code().as_str()),
        (413, "payload_too_large")
    );
    // Content type, as the issuer.
    let h = harim.raw(
        "POST",
        "/v1/verify",
        Some(GATEWAY),
        Some("text/plain"),
        Some(b"{}"),
    );
    let b = mellat.client.raw(
        "POST",
        "/v1/verify",
        Some(mellat.gateway()),
        Some("text/plain"),
        Some(b"{}"),
    );
    assert_eq!((h.status, h.body), (b.status, b.body));

    // Gateway auth: the issuer's 401 and 403, byte for byte.
    for token in [
        None,
        Some("wrong-token-000000000000"),
        Some(mellat.gateway()),
    ] {
        let h = harim.post("/v1/verify", token, &verify_body(&cards[0].1, "1", 1));
        let b = mellat.client.post(
            "/v1/verify",
            token.map(|_| "wrong-token"),
            &verify_body(&cards[0].1, "1", 1),
        );
        assert_eq!(h.status, 401);
        assert_eq!(h.error_code(), "unauthorized");
        assert_eq!(h.body, b.body);
    }
    let h = harim.post("/v1/otp-requests", Some(OPS), &otp_body(&cards[0].1, 1));
    let b = mellat.client.post(
        "/v1/otp-requests",
        Some(mellat.ops()),
        &otp_body(&cards[0].1, 1),
    );
    assert_eq!((h.status, &h.body), (403, &b.body));
    assert_eq!(
        harim.get("/metrics", Some(GATEWAY)).error_code(),
        "forbidden"
    );
    assert_eq!(harim.get("/metrics", None).error_code(), "unauthorized");
    assert_eq!(harim.get("/healthz", None).json(), json!({"status": "ok"}));
    // The served OpenAPI document is the committed one.
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/openapi/harim.json"
    ))
    .unwrap();
    assert_eq!(harim.get("/openapi.json", None).body, committed);
    harim_server.shutdown().unwrap();
}

/// A dead bank: its cards get `issuer_unavailable` within the timeout
/// while the other bank's cards are served as before, concurrently; the
/// breaker opens, and after the bank returns its cards recover.
#[test]
fn a_dead_bank_does_not_stall_the_other_and_recovers() {
    let mellat = Bank::start();
    let mut saderat = Bank::start();
    let setup = Setup::new();
    let breaker = json!({"timeout_ms": 500, "breaker": {"failures": 3, "cool_down_ms": 800}});
    setup.write_two_banks(&mellat, &saderat, &breaker);
    let (harim_server, harim) = setup.start_with_client(&mellat.clock);
    let m_card = card("610433", 44);
    let s_card = card("603799", 55);
    let s_ok = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&s_card, "1234567", 10),
    );
    assert_eq!(s_ok.status, 200);

    let addr = kill(&mut saderat);
    // Mellat's cards, concurrently, all along.
    let stop = Arc::new(Mutex::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let worker = {
        let harim = harim.clone();
        let stop = Arc::clone(&stop);
        let served = Arc::clone(&served);
        let m_card = m_card.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !*stop.lock().unwrap() {
                let t = Instant::now();
                let a = harim.post(
                    "/v1/verify",
                    Some(GATEWAY),
                    &verify_body(&m_card, "1234567", 10),
                );
                assert_eq!(a.status, 200, "{}", a.body);
                assert!(a.json()["result"].is_string(), "{}", a.body);
                assert!(
                    t.elapsed() < Duration::from_millis(500),
                    "{:?}",
                    t.elapsed()
                );
                n += 1;
                served.store(n, Ordering::SeqCst);
            }
            n
        })
    };
    let mut i = 0;
    // Saderat's cards while Mellat's are served, at least 6 of each.
    while i < 6 || served.load(Ordering::SeqCst) < 6 {
        i += 1;
        assert!(
            i < 500,
            "mellat served only {}",
            served.load(Ordering::SeqCst)
        );
        let t = Instant::now();
        let a = harim.post(
            "/v1/verify",
            Some(GATEWAY),
            &verify_body(&s_card, "1234567", 10),
        );
        let took = t.elapsed();
        assert_eq!(a.status, 503, "{}", a.body);
        assert_eq!(a.json()["error"], "issuer_unavailable");
        assert!(a.json()["message"].is_string());
        // Within the timeout (a refused connection is faster still).
        assert!(
            took < Duration::from_millis(500 + 500),
            "request {i} took {took:?}"
        );
        let a = harim.post("/v1/otp-requests", Some(GATEWAY), &otp_body(&s_card, 10));
        assert_eq!(a.error_code(), "issuer_unavailable");
    }
    let m = metrics(&harim);
    assert!(
        m.contains("pooya_harim_issuer_breaker_state{issuer=\"saderat\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("pooya_harim_issuer_breaker_state{issuer=\"mellat\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("pooya_harim_issuer_errors_total{issuer=\"saderat\",kind=\"breaker_open\"}"),
        "{m}"
    );
    *stop.lock().unwrap() = true;
    assert!(worker.join().unwrap() >= 6);

    // The bank comes back on its address; after the cool-down a probe
    // closes the breaker and its cards are served again.
    revive(&mut saderat, addr);
    let start = Instant::now();
    let recovered = loop {
        let a = harim.post(
            "/v1/verify",
            Some(GATEWAY),
            &verify_body(&s_card, "1234567", 10),
        );
        if a.status == 200 {
            break a;
        }
        assert_eq!(a.error_code(), "issuer_unavailable");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "saderat's cards never recovered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(recovered.json()["result"].is_string());
    assert!(metrics(&harim).contains("pooya_harim_issuer_breaker_state{issuer=\"saderat\"} 0"));
    harim_server.shutdown().unwrap();
}

/// A listener that accepts connections and never answers.
fn hung_bank() -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            match l.accept() {
                Ok((mut s, _)) => {
                    let mut b = [0u8; 1024];
                    s.set_nonblocking(true).unwrap();
                    let _ = s.read(&mut b);
                    held.push(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (base, t)
}

/// A hung bank (accepts, never answers) is cut at its timeout; past
/// `max_in_flight` its cards are refused at once; the other bank's are not
/// affected.
#[test]
fn a_hung_bank_is_cut_at_the_timeout_and_bounded() {
    let mellat = Bank::start();
    let (hung, _t) = hung_bank();
    let setup = Setup::new();
    setup.write(
        &[
            setup.bank_entry("mellat", &mellat, "610433", json!({})),
            issuer_entry(setup.dir.path(), "hung", &hung, &["603799"], "hung-bank-token-00000001",
                json!({"timeout_ms": 600, "max_in_flight": 2, "breaker": {"failures": 100, "cool_down_ms": 1000}})),
        ],
        Setup::default_gateways(),
    );
    let (harim_server, harim) = setup.start_with_client(&mellat.clock);
    let s_card = card("603799", 66);
    let t = Instant::now();
    let a = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&s_card, "1234567", 10),
    );
    let took = t.elapsed();
    assert_eq!(a.error_code(), "issuer_unavailable");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // Two in flight fill the bulkhead: a third is refused at once, and
    // the other bank's card is served meanwhile.
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let harim = harim.clone();
            let s_card = s_card.clone();
            std::thread::spawn(move || {
                harim.post(
                    "/v1/verify",
                    Some(GATEWAY),
                    &verify_body(&s_card, "1234567", 10),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let a = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&s_card, "1234567", 10),
    );
    assert_eq!(a.error_code(), "issuer_unavailable");
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let m = metrics(&harim);
    assert!(
        m.contains("pooya_harim_issuer_in_flight{issuer=\"hung\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("pooya_harim_issuer_errors_total{issuer=\"hung\",kind=\"saturated\"} 1"),
        "{m}"
    );
    let t = Instant::now();
    let a = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&card("610433", 77), "1234567", 10),
    );
    assert_eq!(a.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    for w in waiting {
        assert_eq!(w.join().unwrap().error_code(), "issuer_unavailable");
    }
    assert!(
        metrics(&harim)
            .contains("pooya_harim_issuer_errors_total{issuer=\"hung\",kind=\"timeout\"} 3")
    );
    harim_server.shutdown().unwrap();
}

/// Per-gateway token buckets: past the burst, 429 `rate_limited` with
/// `Retry-After`; another gateway is not affected.
#[test]
fn gateways_are_rate_limited_each_on_its_own() {
    let mellat = Bank::start();
    let setup = Setup::new();
    setup.write(
        &[setup.bank_entry("mellat", &mellat, "610433", json!({}))],
        json!([
            {"name": "shaparak", "token": {"env": "HARIM_GW"}, "rate_per_sec": 0.2, "burst": 3},
            {"name": "sepehr", "token": {"env": "HARIM_GW2"}},
        ]),
    );
    let (harim_server, harim) = setup.start_with_client(&mellat.clock);
    let body = verify_body(&card("610433", 88), "1234567", 10);
    for _ in 0..3 {
        assert_eq!(harim.post("/v1/verify", Some(GATEWAY), &body).status, 200);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&format!("{}/v1/verify", harim_server.base_url()))
        .header("Authorization", format!("Bearer {GATEWAY}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"], "rate_limited");
    assert_eq!(v["retry_after_secs"], retry);
    assert_eq!(harim.post("/v1/verify", Some(GATEWAY2), &body).status, 200);
    let m = metrics(&harim);
    assert!(
        m.contains("pooya_harim_gateway_rate_limited_total{gateway=\"shaparak\"} 1"),
        "{m}"
    );
    harim_server.shutdown().unwrap();
}

/// A tiny issuer that answers `/v1/verify` after `delay` with a fixed
/// verdict (to tell a forwarded answer from Harim's own).
fn slow_bank(delay: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                use std::io::Write as _;
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                // Read the head and the body (Content-Length).
                loop {
                    let n = s.read(&mut b).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&b[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                std::thread::sleep(delay);
                let body = r#"{"result":"accepted","reason":"ok","matched":"second"}"#;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    base
}

/// A reload adds a third BIN; a bad file keeps the table in force and
/// says why; a request in flight finishes on the table it started with.
#[test]
fn reload_adds_a_bin_keeps_the_old_table_on_a_bad_file_and_lets_requests_finish() {
    let mellat = Bank::start();
    let saderat = Bank::start();
    let slow = slow_bank(Duration::from_millis(700));
    let setup = Setup::new();
    let m = setup.bank_entry("mellat", &mellat, "610433", json!({}));
    let s = setup.bank_entry("saderat", &saderat, "603799", json!({}));
    let slow_entry = issuer_entry(
        setup.dir.path(),
        "slow",
        &slow,
        &["589210"],
        "slow-bank-token-00000001",
        json!({}),
    );
    setup.write(&[m.clone(), slow_entry], Setup::default_gateways());
    let (harim_server, harim) = setup.start_with_client(&mellat.clock);
    let s_card = card("603799", 12);
    saderat.enroll(&s_card, "09123330003", "sms");
    saderat.register_merchant(PAYEE, "فروشگاه نمونه");
    // Not routed yet: the unknown-card answer, no SMS.
    let a = harim.post("/v1/otp-requests", Some(GATEWAY), &otp_body(&s_card, 700));
    assert_eq!(a.status, 202);

    // A request in flight to the slow bank while the table changes.
    let inflight = {
        let harim = harim.clone();
        std::thread::spawn(move || {
            harim.post(
                "/v1/verify",
                Some(GATEWAY),
                &verify_body(&card("589210", 1), "1234567", 10),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // A bad file: refused, naming the field; the old table stays.
    let bad_bins = setup.bank_entry("saderat", &saderat, "6104331", json!({}));
    setup.write(&[m.clone(), bad_bins], Setup::default_gateways());
    let r = harim.post("/v1/admin/reload", Some(ADMIN), &json!({}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.error_code(), "invalid_settings");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("issuers[1].bins[0]"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(saderat.gateway()));
    // Only the admin may reload.
    assert_eq!(
        harim
            .post("/v1/admin/reload", Some(GATEWAY), &json!({}))
            .error_code(),
        "forbidden"
    );
    assert_eq!(
        harim
            .post("/v1/admin/reload", None, &json!({}))
            .error_code(),
        "unauthorized"
    );
    // The good file: saderat's BIN added, the slow bank's removed.
    setup.write(&[m, s], Setup::default_gateways());
    let r = harim.post("/v1/admin/reload", Some(ADMIN), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"status": "reloaded", "issuers": 2, "gateways": 1, "bins": 2})
    );
    // The request that started on the old table got the slow bank's answer.
    let a = inflight.join().unwrap();
    assert_eq!(a.json()["result"], "accepted", "{}", a.body);
    // New requests use the new table: the slow bank's BIN is unknown now…
    let a = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&card("589210", 1), "1234567", 10),
    );
    assert_eq!(
        a.json(),
        json!({"result": "rejected", "reason": "wrong_code"})
    );
    // …and saderat's card is routed: its PIN SMS arrives.
    let a = harim.post("/v1/otp-requests", Some(GATEWAY), &otp_body(&s_card, 800));
    assert_eq!(a.status, 202, "{}", a.body);
    let code = harim_pin(&saderat, "09123330003", 1);
    let ok = harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&s_card, &code, 800),
    );
    assert_eq!(ok.json()["result"], "accepted", "{}", ok.body);
    let m = metrics(&harim);
    assert!(
        m.contains("pooya_harim_reloads_total{result=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("pooya_harim_reloads_total{result=\"refused\"} 1"),
        "{m}"
    );
    harim_server.shutdown().unwrap();
}

/// The binary: serves, reloads on SIGHUP, stops on SIGTERM; its logs (at
/// debug) name routes, issuers and outcomes and never a card number, a
/// code or a token.
#[test]
fn the_binary_reloads_on_sighup_and_logs_no_secrets() {
    let mellat = Bank::start();
    let setup = Setup::new();
    let m = setup.bank_entry("mellat", &mellat, "610433", json!({}));
    setup.write(std::slice::from_ref(&m), Setup::default_gateways());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pooya-harim"))
        .args(["serve", "--config"])
        .arg(&setup.path)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .env("HARIM_GW", GATEWAY)
        .env("HARIM_GW2", GATEWAY2)
        .env("HARIM_OPS", OPS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let harim = Client::new(&format!("http://{addr}"));
    let pan = card("610433", 5);
    mellat.enroll(&pan, "09124440004", "sms");
    mellat.register_merchant(PAYEE, "فروشگاه نمونه");
    let a = harim.post("/v1/otp-requests", Some(GATEWAY), &otp_body(&pan, 900));
    assert_eq!(a.status, 202, "{}", a.body);
    let code = harim_pin(&mellat, "09124440004", 1);
    let a = harim.post("/v1/verify", Some(GATEWAY), &verify_body(&pan, &code, 900));
    assert_eq!(a.json()["result"], "accepted");
    let unknown = card("589210", 6);
    harim.post(
        "/v1/verify",
        Some(GATEWAY),
        &verify_body(&unknown, "7654321", 900),
    );
    // The second gateway is not known yet; SIGHUP after adding it.
    assert_eq!(
        harim
            .post("/v1/verify", Some(GATEWAY2), &verify_body(&pan, "1", 1))
            .status,
        401
    );
    setup.write(
        &[m],
        json!([
            {"name": "shaparak", "token": {"env": "HARIM_GW"}},
            {"name": "sepehr", "token": {"env": "HARIM_GW2"}},
        ]),
    );
    let kill = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    kill("-HUP");
    let start = Instant::now();
    loop {
        let a = harim.post(
            "/v1/verify",
            Some(GATEWAY2),
            &verify_body(&pan, "1111111", 900),
        );
        if a.status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "SIGHUP did not reload: {}",
            a.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kill("-TERM");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("forwarded") && logs.contains("mellat") && logs.contains("settings reloaded"),
        "{logs}"
    );
    for secret in [
        pan.as_str(),
        &pan[6..],
        unknown.as_str(),
        code.as_str(),
        "7654321",
        GATEWAY,
        GATEWAY2,
        OPS,
        ADMIN,
        mellat.gateway(),
    ] {
        assert!(!logs.contains(secret), "the logs show {secret}:\n{logs}");
    }
}

/// Slow clients, as at the issuer: a connection that never finishes its
/// header is closed at `limits.header_read_timeout_ms`, and a request
/// whose body never arrives is answered 408 `request_timeout`; others are
/// served meanwhile.
#[test]
fn slow_clients_are_cut_off() {
    use std::io::Write as _;
    let mellat = Bank::start();
    let setup = Setup::new();
    let m = setup.bank_entry("mellat", &mellat, "610433", json!({}));
    let v = json!({
        "admin_token": {"file": setup.dir.path().join("admin.token")},
        "gateways": Setup::default_gateways(),
        "issuers": [m],
        "limits": {"header_read_timeout_ms": 300, "body_read_timeout_ms": 300},
    });
    std::fs::write(&setup.path, v.to_string()).unwrap();
    let harim_server = setup.start(&mellat.clock);
    let addr = harim_server.local_addr();
    let mut half = std::net::TcpStream::connect(addr).unwrap();
    half.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut slow_body = std::net::TcpStream::connect(addr).unwrap();
    write!(
        slow_body,
        "POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GATEWAY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pan\""
    )
    .unwrap();
    let harim = Client::new(&harim_server.base_url());
    assert_eq!(harim.get("/healthz", None).status, 200);
    let t = Instant::now();
    half.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = Vec::new();
    let _ = half.read_to_end(&mut buf);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    slow_body
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut answer = String::new();
    let _ = slow_body.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    harim_server.shutdown().unwrap();
}

/// `pooya-harim check`: a good file is summarised; a bad one ends in
/// `error [invalid_settings]: FIELD: …`, exit status 1, no secret shown.
#[test]
fn the_binary_checks_settings_files() {
    let setup = Setup::new();
    let good = issuer_entry(
        setup.dir.path(),
        "mellat",
        "http://127.0.0.1:9",
        &["610433"],
        "bank-token-secret-000001",
        json!({}),
    );
    setup.write(std::slice::from_ref(&good), Setup::default_gateways());
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pooya-harim"))
            .args(["check", "--config"])
            .arg(&setup.path)
            .env("HARIM_GW", GATEWAY)
            .env("HARIM_OPS", OPS)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: 1 issuers, 1 gateways, 1 BIN prefixes\n"
    );
    let overlapping = issuer_entry(
        setup.dir.path(),
        "saderat",
        "http://127.0.0.1:9",
        &["61043312"],
        "bank-token-secret-000002",
        json!({}),
    );
    setup.write(&[good, overlapping], Setup::default_gateways());
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error [invalid_settings]: invalid settings: issuers[1].bins[0]: overlaps BIN prefix 610433 (of issuer mellat)"), "{err}");
    assert!(
        !err.contains("bank-token-secret") && !err.contains(GATEWAY),
        "{err}"
    );
}

/// Generated bodies for a BIN no bank owns, sent to Harim and, the same
/// bytes, to a real issuer (for which the card is unknown): the same
/// status and body every time. Holds Harim's copy of the issuer's checks
/// to the issuer itself.
#[test]
fn unknown_bin_answers_match_a_real_issuer_for_generated_bodies() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mellat = Bank::start();
    mellat.register_merchant(PAYEE, "فروشگاه نمونه");
    let setup = Setup::new();
    let m = setup.bank_entry("mellat", &mellat, "610433", json!({}));
    setup.write(&[m], Setup::default_gateways());
    let (harim_server, harim) = setup.start_with_client(&mellat.clock);
    let pick = |options: Vec<Option<Value>>| proptest::sample::select(options);
    let field = |name: &'static str, options: Vec<Option<Value>>| {
        pick(options).prop_map(move |v| (name, v))
    };
    // A fresh card number of a BIN no bank owns, each time (an issuer
    // counts failures per card number).
    let pan = (0u64..1_000_000_000, 0usize..5).prop_map(|(n, form)| {
        let p = card("589210", n);
        Some(match form {
            0 | 1 => json!(p),
            2 => json!(
                p.chars()
                    .map(|c| char::from_u32('۰' as u32 + c.to_digit(10).unwrap()).unwrap())
                    .collect::<String>()
            ),
            3 => json!(format!("{}9", &p[..15])),
            _ => json!("12"),
        })
    });
    let verify = (
        pan.clone(),
        field(
            "code",
            vec![
                Some(json!("1234567")),
                Some(json!("12 34")),
                Some(json!("12a")),
                Some(json!("")),
                Some(json!(5)),
                None,
            ],
        ),
        field(
            "amount",
            vec![
                Some(json!(0)),
                Some(json!(5000)),
                Some(json!(-1)),
                Some(json!("x")),
                None,
            ],
        ),
        field(
            "payee",
            vec![
                None,
                None,
                Some(json!(PAYEE)),
                Some(json!("a b")),
                Some(json!("-x")),
            ],
        ),
        field(
            "type",
            vec![None, None, Some(json!("purchase")), Some(json!("gift"))],
        ),
        field(
            "kind",
            vec![
                Some(json!("second")),
                Some(json!("first")),
                Some(json!("third")),
                None,
            ],
        ),
        field("extra", vec![None, None, None, Some(json!(1))]),
    )
        .prop_map(|(pan, a, b, c, d, e, f)| ("/v1/verify", pan, vec![a, b, c, d, e, f]));
    let otp = (
        pan,
        field(
            "amount",
            vec![Some(json!(0)), Some(json!(5000)), Some(json!("x")), None],
        ),
        field(
            "payee_id",
            vec![
                Some(json!(PAYEE)),
                Some(json!(PAYEE)),
                Some(json!("a b")),
                None,
            ],
        ),
        field(
            "type",
            vec![
                None,
                Some(json!("purchase")),
                Some(json!("bill")),
                Some(json!("gift")),
            ],
        ),
        field("payee_name", vec![None, None, None, Some(json!("x"))]),
    )
        .prop_map(|(pan, a, b, c, d)| ("/v1/otp-requests", pan, vec![a, b, c, d]));
    let bodies = prop_oneof![verify, otp];
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&bodies, |(path, pan, fields)| {
            let mut body = serde_json::Map::new();
            if let Some(p) = pan {
                body.insert("pan".into(), p);
            }
            for (name, v) in fields {
                if let Some(v) = v {
                    body.insert(name.into(), v);
                }
            }
            let bytes = Value::Object(body).to_string();
            let h = harim.raw(
                "POST",
                path,
                Some(GATEWAY),
                Some("application/json"),
                Some(bytes.as_bytes()),
            );
            let b = mellat.client.raw(
                "POST",
                path,
                Some(mellat.gateway()),
                Some("application/json"),
                Some(bytes.as_bytes()),
            );
            prop_assert_eq!(
                (h.status, &h.body),
                (b.status, &b.body),
                "{} {}",
                path,
                bytes
            );
            Ok(())
        })
        .unwrap();
    harim_server.shutdown().unwrap();
}
