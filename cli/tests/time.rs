//! The wrong-phone-clock day for real (issue 13, item 1): `pooya` run under
//! libfaketime with the wall clock an hour ahead, after a `pooya time sync`
//! made with the right clock, still makes PINs a real issuer on 127.0.0.1
//! accepts. libfaketime moves the process's wall clock; the boot clock the
//! phone reads (`/proc/uptime`, `/proc/sys/kernel/random/boot_id`) is a
//! file it does not touch, which the test checks first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pooya_issuer::{InitOptions, ServerConfig};
use pooya_protocol::ids;
use serde_json::{Value, json};

const PHONE: &str = "09121234567";
const PASSWORD: &str = "test password 1379\n";
/// libfaketime's offset: the wall clock an hour ahead.
const AHEAD: &str = "+1h";

fn faketime() -> Command {
    let mut c = Command::new("faketime");
    // Only the wall clock moves, as when a user sets the phone's time.
    c.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    c.args(["-f", AHEAD]);
    c
}

fn output(mut c: Command, stdin: Option<&str>) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{c:?}: {e} (faketime: apt-get install faketime; cargo xtask test installs it)")
        });
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn pooya(vault: &Path, wrong_clock: bool, args: &[&str]) -> Value {
    let mut c = if wrong_clock {
        let mut c = faketime();
        c.arg(env!("CARGO_BIN_EXE_pooya"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_pooya"))
    };
    c.arg("--vault")
        .arg(vault)
        .args(args)
        .args(["--json", "--password-stdin"]);
    let out = output(c, Some(PASSWORD));
    assert!(
        out.status.success(),
        "{args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    if v.is_object() {
        v["stderr"] = json!(String::from_utf8_lossy(&out.stderr));
    }
    v
}

fn shell_number(mut c: Command) -> f64 {
    let out = output(std::mem::replace(&mut c, Command::new("true")), None);
    assert!(out.status.success(), "{c:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn an_hour_ahead_under_faketime_the_pins_still_pass() {
    // libfaketime moves the wall clock an hour and leaves the boot clock.
    let mut date = Command::new("date");
    date.arg("+%s");
    let real = shell_number(date);
    let mut date = faketime();
    date.args(["date", "+%s"]);
    let fake = shell_number(date);
    assert!(
        (fake - real - 3600.0).abs() < 5.0,
        "faketime: {real} → {fake}"
    );
    let mut up = Command::new("cat");
    up.arg("/proc/uptime");
    let before = shell_number(up);
    let mut up = faketime();
    up.args(["cat", "/proc/uptime"]);
    let faked = shell_number(up);
    assert!(
        (faked - before).abs() < 5.0,
        "faketime moved /proc/uptime: {before} → {faked}"
    );
    let read_id = || std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let mut id = faketime();
    id.args(["cat", "/proc/sys/kernel/random/boot_id"]);
    let out = output(id, None);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), read_id());

    // A bank on the real clock, and a phone set up with the right clock.
    let bank_dir = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(bank_dir.path(), &InitOptions::default()).unwrap();
    let server = pooya_issuer::spawn_on_thread(ServerConfig::new(bank_dir.path())).unwrap();
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |path: &str, token: &str, body: &Value| -> Value {
        let mut r = http
            .post(format!("{}{path}", server.base_url()))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .unwrap();
        assert_eq!(r.status().as_u16() / 100, 2);
        r.body_mut().read_json().unwrap()
    };
    let payload = "610433000000077";
    let card_pan = format!("{payload}{}", ids::luhn_check_digit(payload));
    post(
        "/v1/enrollments",
        init.tokens.atm.expose_secret(),
        &json!({"pan": card_pan, "phone": PHONE, "channel": "app"}),
    );
    let sms = pooya_issuer::read_outbox(bank_dir.path(), Some(PHONE)).unwrap();
    let code = pooya_issuer::messages::find_activation_code(&sms.last().unwrap().body).unwrap();
    let verify = |pin: &Value, kind: &str, amount: u64| -> Value {
        post(
            "/v1/verify",
            init.tokens.gateway.expose_secret(),
            &json!({"pan": card_pan, "code": pin["code"], "amount": amount, "kind": kind}),
        )
    };

    let phone_dir = tempfile::tempdir().unwrap();
    let v = phone_dir.path().join("vault.db");
    pooya(&v, false, &["init", "--phone", PHONE, "--kdf", "floor"]);
    pooya(
        &v,
        false,
        &[
            "issuer",
            "add",
            "bank",
            "--url",
            &server.base_url(),
            "--public-key",
            server.issuer_public_key(),
            "--activation-key",
            server.activation_public_key(),
        ],
    );
    let card = pooya(&v, false, &["card", "add", &code]);
    let last4 = card["last4"].as_str().unwrap().to_owned();
    let synced = pooya(&v, false, &["time", "sync"]);
    assert_eq!(synced["boot_anchored"], true, "{synced}");
    assert!(
        synced["time_offset_secs"].as_i64().unwrap().abs() <= 2,
        "{synced}"
    );

    // The day the phone's clock is an hour ahead.
    let status = pooya(&v, true, &["time", "status"]);
    assert_eq!(status["source"], "boot_clock", "{status}");
    let drift = status["wall_clock_drift_secs"].as_i64().unwrap();
    assert!((drift - 3600).abs() <= 5, "{status}");
    assert_eq!(status["sync_advised"], true);
    let first = pooya(&v, true, &["pin", "first", &last4]);
    assert!(
        first["stderr"]
            .as_str()
            .unwrap()
            .contains("from the bank's"),
        "the customer is told: {first}"
    );
    assert_eq!(verify(&first, "first", 0)["result"], "accepted", "{first}");
    let second = pooya(&v, true, &["pin", "second", &last4]);
    assert_eq!(verify(&second, "second", 1_000_000)["result"], "accepted");

    // The bank time the PINs used is the real time, not the phone's.
    let bank_time = status["bank_time"].as_u64().unwrap() as f64;
    assert!((bank_time - real).abs() < 30.0, "{status}, real {real}");
    assert!((fake - bank_time) > 3500.0, "{status}, fake {fake}");
}
