//! Issue 10, item 4: slow clients cannot starve the server. Sockets that
//! send half a request header and stall are closed within the header-read
//! timeout, and while they are open `/healthz` and `/v1/verify` still
//! answer within a second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Bank, pan};
use pooya_issuer::Settings;
use serde_json::json;

/// Slow connections the test holds open at once.
const SLOW: usize = 500;
/// The header-read timeout the test runs with.
const HEADER_TIMEOUT_MS: u64 = 1500;

fn short_timeouts() -> Settings {
    let mut s = Settings::development();
    s.limits.header_read_timeout_ms = HEADER_TIMEOUT_MS;
    s
}

/// A socket that sends half a request header and then stalls.
fn stall(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: bank\r\nContent-Le")
        .unwrap();
    s
}

/// Reads until the server closes the socket or `deadline` passes; true
/// when it was closed.
fn closed_by(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            // The server may answer 408 before closing: keep reading.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(e) => panic!("reading a slow socket: {e}"),
        }
    }
}

#[test]
fn slow_clients_cannot_starve_the_server() {
    let bank = Bank::start_with(short_timeouts());
    let addr = bank.server.as_ref().unwrap().local_addr();
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW).map(|_| stall(addr)).collect();

    // While all of them are open, the real clients are answered promptly.
    let t = Instant::now();
    let h = bank.client.get("/healthz", None);
    assert_eq!(h.status, 200, "{}", h.body);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "/healthz took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let v = bank.client.post(
        "/v1/verify",
        Some(bank.gateway()),
        &json!({"pan": pan(1), "code": "123456", "amount": 1000, "kind": "first"}),
    );
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.json()["reason"], "wrong_code", "{}", v.body);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "/v1/verify took {:?}",
        t.elapsed()
    );

    // Every stalled socket is closed by the server within the header
    // timeout (plus scheduling slack on a shared machine).
    let deadline = opened + Duration::from_millis(HEADER_TIMEOUT_MS) + Duration::from_secs(3);
    let still_open = slow
        .iter_mut()
        .map(|s| closed_by(s, deadline))
        .filter(|c| !c)
        .count();
    assert_eq!(
        still_open, 0,
        "{still_open} of {SLOW} stalled sockets left open"
    );

    // And the server still answers afterwards.
    assert_eq!(bank.client.get("/healthz", None).status, 200);
}

#[test]
fn a_body_that_never_ends_is_cut_off() {
    let mut settings = short_timeouts();
    settings.limits.body_read_timeout_ms = 1000;
    let bank = Bank::start_with(settings);
    let addr = bank.server.as_ref().unwrap().local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    write!(
        s,
        "POST /v1/verify HTTP/1.1\r\nHost: bank\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"pan\":",
        bank.gateway()
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

#[test]
fn past_the_connection_cap_a_connection_is_closed_at_once() {
    let mut settings = short_timeouts();
    settings.limits.max_connections = 16;
    // A longer header timeout than the other tests', so "closed by the
    // cap" and "closed by the timeout" stay apart on a loaded machine.
    let header_timeout = Duration::from_millis(4_000);
    settings.limits.header_read_timeout_ms = 4_000;
    let bank = Bank::start_with(settings);
    let addr = bank.server.as_ref().unwrap().local_addr();
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..16).map(|_| stall(addr)).collect();
    // Let the server take all sixteen before the seventeenth knocks.
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = stall(addr);
    let t = Instant::now();
    assert!(
        closed_by(&mut extra, t + Duration::from_secs(1)),
        "the 17th was kept open"
    );
    assert!(
        opened.elapsed() < header_timeout,
        "closed by the cap, not the timeout"
    );
    // Once the header timeout frees the slots, clients are served again.
    let deadline = opened + header_timeout + Duration::from_secs(3);
    assert!(slow.iter_mut().all(|s| closed_by(s, deadline)));
    assert_eq!(bank.client.get("/healthz", None).status, 200);
}

#[test]
fn connection_limits_are_settings_with_bounds() {
    for bad in [
        r#"{"limits": {"header_read_timeout_ms": 0}}"#,
        r#"{"limits": {"header_read_timeout_ms": 600001}}"#,
        r#"{"limits": {"request_timeout_ms": 50}}"#,
        r#"{"limits": {"body_read_timeout_ms": 0}}"#,
        r#"{"limits": {"max_connections": 0}}"#,
        r#"{"limits": {"max_connections": 1000001}}"#,
    ] {
        let s: Settings = serde_json::from_str(bad).unwrap();
        assert_eq!(
            s.validate().unwrap_err().code(),
            "invalid_settings",
            "{bad}"
        );
    }
    let s: Settings = serde_json::from_str(r#"{"limits": {"max_connections": 64}}"#).unwrap();
    s.validate().unwrap();
    assert_eq!(s.limits.max_connections, 64);
    assert!(serde_json::from_str::<Settings>(r#"{"limits": {"nope": 1}}"#).is_err());
}
