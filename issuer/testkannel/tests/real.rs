//! The harness against the real Kannel binaries: an MO message reaches the
//! `get-url`, a `sendsms` message reaches the fake SMS centre (joined from
//! its parts), and a stopped gateway refuses until it is started again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pooya_testkannel::{PASSWORD, TestKannel, USERNAME};

/// A local HTTP server recording request targets, answering 200.
fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            log.lock()
                .unwrap()
                .push(line.split(' ').nth(1).unwrap_or_default().to_owned());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

fn sendsms(k: &TestKannel, text: &str) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let url = format!(
        "{}?username={USERNAME}&password={PASSWORD}&from=30003303&to=09121234567\
         &charset=UTF-8&coding=2&text={}",
        k.sendsms_url(),
        text.bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let mut resp = agent.get(&url).call().map_err(|e| e.to_string())?;
    Ok((
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    ))
}

#[test]
fn a_real_kannel_carries_messages_both_ways_and_restarts() {
    let (port, seen) = recorder();
    let k =
        TestKannel::start(&format!("http://127.0.0.1:{port}/in?from=%p&to=%P&text=%a")).unwrap();
    k.send_mo("09121234567", "30003303", "۰۰۰۱").unwrap();
    let start = Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "no get-url call");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        seen.lock().unwrap()[0],
        "/in?from=09121234567&to=30003303&text=%DB%B0%DB%B0%DB%B0%DB%B1"
    );
    // Longer than one UCS-2 part (70 characters): sent in two, joined.
    let long = "پیام آزمایشی ".repeat(8);
    assert_eq!(
        sendsms(&k, &long).unwrap(),
        (202, "0: Accepted for delivery".into())
    );
    let got = k
        .wait_messages("09121234567", 1, Duration::from_secs(10))
        .unwrap();
    assert_eq!(got[0].ucs2_text().unwrap(), long);
    assert_eq!((got[0].from.as_str(), got[0].parts), ("30003303", 2));
    k.stop();
    assert!(sendsms(&k, "x").is_err());
    k.start_again().unwrap();
    assert_eq!(sendsms(&k, "دوباره").unwrap().0, 202);
    let got = k
        .wait_messages("09121234567", 2, Duration::from_secs(10))
        .unwrap();
    assert_eq!(got[1].ucs2_text().unwrap(), "دوباره");
}
