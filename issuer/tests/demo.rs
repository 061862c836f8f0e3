//! The demo payment page's routes: they answer only loopback `Host`s (DNS
//! rebinding), and the outbox panel shows only one-time PIN messages of
//! the card the page last used, never an activation code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::{Client, PHONE, T0, pan};
use pooya_issuer::{DemoGateway, InitOptions, ManualClock, ServerConfig};
use serde_json::{Value, json};

/// A raw HTTP/1.1 GET with the given `Host`: (status, body).
fn get_with_host(addr: &str, path: &str, host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_owned())
}

fn outbox_bodies(client: &Client) -> Vec<String> {
    let a = client.get("/demo/api/outbox", None);
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn demo_routes_refuse_foreign_hosts_and_show_only_one_time_pins() {
    let dir = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(dir.path(), &InitOptions::default()).unwrap();
    let mut cfg = ServerConfig::new(dir.path());
    cfg.clock = Arc::new(ManualClock::new(T0));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.demo_gateway = Some(DemoGateway {
        gateway_token: init.tokens.gateway.clone(),
    });
    let server = pooya_issuer::spawn_on_thread(cfg).unwrap();
    let base = server.base_url();
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let client = Client::new(&base);

    // DNS rebinding: a page on evil.example resolved to 127.0.0.1.
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        "127.0.0.1".to_owned(),
        "localhost:1".to_owned(),
        format!("127.0.0.2:{port}"),
    ] {
        for path in ["/demo/api/outbox", "/demo/pay", "/demo/pay.js"] {
            let (status, body) = get_with_host(&addr, path, &host);
            assert_eq!(status, 421, "{host} {path}: {body}");
            assert!(body.contains("misdirected_request"), "{body}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            get_with_host(&addr, "/demo/api/outbox", &host).0,
            200,
            "{host}"
        );
    }
    // The public API is not the demo's: it keeps its own rules.
    assert_eq!(get_with_host(&addr, "/healthz", "evil.example").0, 200);

    // Two cards enrolled for the app: activation codes are in the outbox.
    let atm = init.tokens.atm.expose_secret();
    let other_phone = "09127654321";
    for (p, phone) in [(pan(1), PHONE), (pan(2), other_phone)] {
        let a = client.post(
            "/v1/enrollments",
            Some(atm),
            &json!({"pan": p, "phone": phone, "channel": "app"}),
        );
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let m = client.raw(
        "PUT",
        "/v1/merchants/S",
        Some(init.tokens.ops.expose_secret()),
        Some("application/json"),
        Some("{\"name\": \"کتاب\u{200C}فروشی\"}".as_bytes()),
    );
    assert_eq!(m.status, 201, "{}", m.body);
    // Before the page used a card, the panel shows nothing.
    assert!(outbox_bodies(&client).is_empty());
    // The page asks for a Harim PIN for card 1.
    let harim = |n: u64| {
        let a = client.post(
            "/demo/api/otp-request",
            None,
            &json!({"pan": pan(n), "amount": "12,345", "payee_id": "S", "type": "bill"}),
        );
        assert_eq!(a.status, 202, "{}", a.body);
    };
    harim(1);
    let wait = |n: usize| -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            let b = outbox_bodies(&client);
            if b.len() >= n {
                return b;
            }
            assert!(start.elapsed().as_secs() < 10, "{b:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let shown = wait(1);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        pooya_issuer::messages::find_one_time_code(&shown[0]).is_some(),
        "{shown:?}"
    );
    // Never the activation code sent to the same phone.
    assert!(
        shown
            .iter()
            .all(|b| pooya_issuer::messages::find_activation_code(b).is_none()),
        "{shown:?}"
    );
    // Card 2 (another phone): only its PINs, not card 1's.
    harim(2);
    let shown: Vec<Value> = client.get("/demo/api/outbox", None).json()["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        shown.iter().all(|m| m["to"] == "+989127654321"),
        "{shown:?}"
    );
    let shown = wait(1);
    assert_eq!(shown.len(), 1, "{shown:?}");
    server.shutdown().unwrap();
}

/// Issue 14: a demo gateway sending to a Harim that does not answer says
/// so with its own code (502 `harim_unreachable`), the page's other
/// routes still work; asking for both a local and a Harim gateway is
/// refused at start.
#[test]
fn a_demo_gateway_without_its_harim_says_harim_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(dir.path(), &InitOptions::default()).unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let harim = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let settings = json!({
        "harim": {"base_url": harim, "token": {"env": "GW"}},
        "timeout_ms": 2000,
    });
    let demo = pooya_issuer::DemoHarim::from_json(settings.to_string().as_bytes(), &|name| {
        (name == "GW").then(|| "gw-demo-page-token-0001".to_owned())
    })
    .unwrap();

    let mut both = ServerConfig::new(dir.path());
    both.demo_gateway = Some(DemoGateway {
        gateway_token: init.tokens.gateway.clone(),
    });
    both.demo_harim = Some(demo.clone());
    let refused = pooya_issuer::spawn_on_thread(both).unwrap_err();
    assert_eq!(refused.code(), "invalid_settings", "{refused}");

    let mut cfg = ServerConfig::new(dir.path());
    cfg.clock = Arc::new(ManualClock::new(T0));
    cfg.demo_harim = Some(demo);
    let server = pooya_issuer::spawn_on_thread(cfg).unwrap();
    let client = Client::new(&server.base_url());
    let a = client.post(
        "/demo/api/otp-request",
        None,
        &json!({"pan": pan(5), "amount": "1,000", "payee_id": "IR-SHOP-42", "type": "purchase"}),
    );
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.error_code(), "harim_unreachable");
    let a = client.post(
        "/demo/api/pay",
        None,
        &json!({"pan": pan(5), "amount": "1,000", "payee_id": "IR-SHOP-42", "type": "purchase", "code": "1234567"}),
    );
    assert_eq!(a.error_code(), "harim_unreachable", "{}", a.body);
    // The page's own checks come first, as without Harim.
    let a = client.post(
        "/demo/api/pay",
        None,
        &json!({"pan": pan(5), "amount": "lots", "payee_id": "IR-SHOP-42", "type": "purchase", "code": "1"}),
    );
    assert_eq!(a.error_code(), "invalid_amount", "{}", a.body);
    // No bank listed: the panel reads this issuer's store, as without Harim.
    let a = client.get("/demo/api/outbox", None);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["messages"], json!([]));
    server.shutdown().unwrap();
}
