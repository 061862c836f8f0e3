//! The `pooya-issuer` binary: `init --json`, `serve` printing its address,
//! and no plaintext PAN, seed, code or token in the database files or the
//! logs after a full flow; `serve --demo-gateway`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use pooya_protocol::second_pin;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_pooya-issuer");

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn init_serve_and_no_plaintext_at_rest_or_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args(["init", "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pk = init["issuer_public_key"].as_str().unwrap().to_owned();
    assert_eq!(hex::decode(&pk).unwrap().len(), 32);
    let tokens = init["tokens"].as_object().unwrap();
    assert_eq!(tokens.len(), 4);
    let token = |r: &str| tokens[r].as_str().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second init refuses.
    let again = Command::new(BIN)
        .args(["init", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already_initialized"));

    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dev_settings(dir.path()))
        .arg("--data")
        .arg(&data)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // `serve` prints the two keys phones pin (for an issuer made before
    // activation v2, the only place its new activation key is shown).
    let mut keys = String::new();
    stdout.read_line(&mut keys).unwrap();
    stdout.read_line(&mut keys).unwrap();
    assert_eq!(
        keys,
        format!(
            "issuer public key: {pk}\nactivation public key: {}\n",
            init["activation_public_key"].as_str().unwrap()
        )
    );
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"));
    let client = Client::new(&format!("http://{addr}"));

    let p = pan(42);
    let a = client.post(
        "/v1/enrollments",
        Some(&token("atm")),
        &json!({"pan": p, "phone": PHONE, "channel": "app"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    // Messages leave the durable outbox just after the answer.
    let messages = |n: usize| {
        let start = std::time::Instant::now();
        loop {
            let msgs = client.get("/v1/sms/outbox", Some(&token("ops"))).json();
            let msgs = msgs["messages"].as_array().unwrap().clone();
            if msgs.len() >= n {
                return msgs;
            }
            assert!(start.elapsed().as_secs() < 10, "no SMS");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let body = messages(1)[0]["body"].as_str().unwrap().to_owned();
    let code = pooya_issuer::messages::find_activation_code(&body).unwrap();
    let pinned = Pinned {
        public_key: pk.clone(),
        activation_key: init["activation_public_key"].as_str().unwrap().to_owned(),
    };
    let (status, card) = Phone::new().activate(&client, PHONE, &code, &pinned);
    assert_eq!(status, 201);
    let card = card.unwrap();
    let pol = &card.response.policies;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let pin = second_pin(&card.keys, pol, pol.cap_ladder.tiers()[0], now)
        .unwrap()
        .code;
    let verify = |code: &str| {
        client
            .post(
                "/v1/verify",
                Some(&token("gateway")),
                &json!({"pan": p, "code": code, "amount": 1000, "kind": "second"}),
            )
            .json()
    };
    assert_eq!(verify(&pin)["result"], "accepted");

    // The SMS version and a Harim request on the same card.
    let newest_code = |n: usize| {
        let body = messages(n)[n - 1]["body"].as_str().unwrap().to_owned();
        pooya_issuer::messages::find_one_time_code(&body).unwrap()
    };
    let a = client.post(
        "/v1/enrollments",
        Some(&token("atm")),
        &json!({"pan": p, "phone": PHONE, "channel": "sms"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    // The activation code, the activation notice, "SMS version on".
    let n = 3;
    messages(n);
    let a = client.post(
        "/v1/sms/inbound",
        Some(&token("sms")),
        &json!({"from": PHONE, "to": "30003303", "body": &p[12..]}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let sms_code = newest_code(n + 1);
    assert_eq!(verify(&sms_code)["result"], "accepted");
    let m = client.raw(
        "PUT",
        "/v1/merchants/S1",
        Some(&token("ops")),
        Some("application/json"),
        Some(br#"{"name": "Shop"}"#),
    );
    assert_eq!(m.status, 201, "{}", m.body);
    let a = client.post(
        "/v1/otp-requests",
        Some(&token("gateway")),
        &json!({"pan": p, "amount": 1000, "payee_id": "S1", "type": "purchase"}),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let harim_code = newest_code(n + 2);
    let v = client.post(
        "/v1/verify",
        Some(&token("gateway")),
        &json!({"pan": p, "code": harim_code, "amount": 1000, "payee": "S1", "type": "purchase", "kind": "second"}),
    );
    assert_eq!(v.json()["matched"], "transaction", "{}", v.body);

    for _ in 0..5 {
        verify("99999999");
    }
    assert_eq!(verify(&pin)["result"], "blocked");

    // Stop the server with SIGTERM: it shuts down cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // The secrets the flow handled.
    let seed_keys = &card.keys;
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("pan".into(), p.clone().into_bytes()),
        ("pan last 12".into(), p.as_bytes()[4..].to_vec()),
        ("activation code".into(), code.clone().into_bytes()),
        (
            "grouped code".into(),
            pooya_protocol::ids::format_activation_code(&code).into_bytes(),
        ),
        ("accepted pin".into(), pin.clone().into_bytes()),
        ("SMS one-time pin".into(), sms_code.clone().into_bytes()),
        ("Harim one-time pin".into(), harim_code.clone().into_bytes()),
    ];
    for (name, key) in [
        ("first key", seed_keys.first.expose_secret()),
        ("second key", seed_keys.second.expose_secret()),
        ("tx key", seed_keys.tx.expose_secret()),
    ] {
        secrets.push((name.into(), key.to_vec()));
        secrets.push((format!("{name} hex"), hex::encode(key).into_bytes()));
    }
    for r in ["atm", "gateway", "sms", "ops"] {
        let t = token(r);
        secrets.push((format!("{r} token"), t.clone().into_bytes()));
        let suffix = t.rsplit('_').next().unwrap().to_owned();
        secrets.push((format!("{r} token suffix"), suffix.into_bytes()));
    }
    let logs = std::fs::read(&log_path).unwrap();
    assert!(contains(&logs, b"enrolled"), "the log is being written");
    assert!(contains(&logs, b"card blocked"), "the log is being written");
    let mut files = vec![("server log".to_owned(), logs)];
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "master.key" {
            continue;
        }
        files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    assert!(files.iter().any(|(n, _)| n.ends_with("issuer.db")));
    for (file, bytes) in &files {
        for (name, secret) in &secrets {
            assert!(!contains(bytes, secret), "{name} found in {file}");
        }
    }
}

/// A settings file choosing the development SMS recorder (the binary
/// refuses to start without an SMS sender).
#[allow(clippy::unwrap_used)]
fn dev_settings(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("dev-settings.json");
    std::fs::write(&path, r#"{"sms": {"sender": "dev_recorder"}}"#).unwrap();
    path
}

/// Runs `serve` and returns the child and its first line, or the output of
/// a failed start.
fn serve(
    data: &std::path::Path,
    args: &[&str],
    env: Option<&str>,
) -> Result<(std::process::Child, String), String> {
    let mut cmd = Command::new(BIN);
    let settings = dev_settings(data.parent().unwrap_or(data));
    cmd.arg("serve")
        .args(args)
        .arg("--config")
        .arg(settings)
        .arg("--data")
        .arg(data);
    cmd.env_remove("POOYA_GATEWAY_TOKEN");
    if let Some(t) = env {
        cmd.env("POOYA_GATEWAY_TOKEN", t);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.starts_with("listening on ") {
        Ok((child, line))
    } else {
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_demo_gateway_needs_its_token_and_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(dir.path(), &pooya_issuer::InitOptions::default()).unwrap();
    let gateway = init.tokens.gateway.expose_secret();
    let local = ["--listen", "127.0.0.1:0", "--demo-gateway"];
    for (args, env, why) in [
        (&local[..], None, "POOYA_GATEWAY_TOKEN"),
        (
            &local[..],
            Some(init.tokens.ops.expose_secret()),
            "not a gateway token",
        ),
        (
            &["--listen", "0.0.0.0:0", "--demo-gateway"][..],
            Some(gateway),
            "loopback",
        ),
    ] {
        let err = serve(dir.path(), args, env).unwrap_err();
        assert!(
            err.contains("invalid_settings") && err.contains(why),
            "{err}"
        );
    }
    let (mut child, line) = serve(dir.path(), &local, Some(gateway)).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let client = Client::new(&format!("http://{addr}"));
    let m = client.raw(
        "PUT",
        "/v1/merchants/S",
        Some(init.tokens.ops.expose_secret()),
        Some("application/json"),
        Some(br#"{"name": "Shop"}"#),
    );
    assert_eq!(m.status, 201, "{}", m.body);
    let page = client.get("/demo/pay", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Request dynamic PIN"));
    assert!(!page.body.contains(gateway));
    assert_eq!(client.get("/demo/pay.js", None).status, 200);
    let a = client.post(
        "/demo/api/otp-request",
        None,
        &json!({"pan": pan(1), "amount": "12,34", "payee_id": "S", "type": "purchase"}),
    );
    assert_eq!((a.status, a.error_code().as_str()), (400, "invalid_amount"));
    // The page's routes pass the gateway's answers on.
    let a = client.post(
        "/demo/api/otp-request",
        None,
        &json!({"pan": pan(1), "amount": "۱۲٬۳۴۵", "payee_id": "S", "type": "purchase"}),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.json()["status"], "requested");
    let a = client.post(
        "/demo/api/pay",
        None,
        &json!({"pan": pan(1), "amount": "12345", "payee_id": "S", "type": "purchase", "code": "1234567"}),
    );
    assert_eq!(a.json()["reason"], "wrong_code", "{}", a.body);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn serve_refuses_to_start_without_an_sms_sender() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(
        Command::new(BIN)
            .args(["init", "--data"])
            .arg(&data)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid_settings") && err.contains("sms.sender"),
        "{err}"
    );
}

#[test]
fn serve_refuses_an_uninitialised_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_initialized"));
    let err =
        pooya_issuer::spawn_on_thread(pooya_issuer::ServerConfig::new(dir.path())).unwrap_err();
    assert_eq!(err.code(), "not_initialized");
}

#[test]
fn a_wrong_master_key_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    pooya_issuer::init(dir.path(), &pooya_issuer::InitOptions::default()).unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    let err =
        pooya_issuer::spawn_on_thread(pooya_issuer::ServerConfig::new(dir.path())).unwrap_err();
    assert_eq!(err.code(), "wrong_master_key");
}

/// Issue 14: `serve --demo-gateway --demo-harim FILE` reads Harim's URL
/// and the gateway's Harim token from the file (the token from its own
/// file), needs no POOYA_GATEWAY_TOKEN, and refuses a bad file naming the
/// field, never the token.
#[test]
fn the_demo_gateway_through_harim_reads_its_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    pooya_issuer::init(&data, &pooya_issuer::InitOptions::default()).unwrap();
    let token = dir.path().join("harim-gw.token");
    let demo = dir.path().join("demo-harim.json");
    // A port nothing listens on, for a Harim that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let harim = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let write = |text: &str| {
        std::fs::write(&token, format!("{text}\n")).unwrap();
        std::fs::write(
            &demo,
            json!({"harim": {"base_url": harim, "token": {"file": token}}}).to_string(),
        )
        .unwrap();
    };
    let demo_arg = demo.to_str().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--demo-gateway",
        "--demo-harim",
        demo_arg,
    ];
    write("short-secret");
    let err = serve(&data, &args, None).unwrap_err();
    assert!(
        err.contains("error [invalid_settings]") && err.contains("harim.token"),
        "{err}"
    );
    assert!(!err.contains("short-secret"), "{err}");

    write("gw-demo-page-token-0001");
    let (mut child, line) = serve(&data, &args, None).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let client = Client::new(&format!("http://{addr}"));
    assert_eq!(client.get("/demo/pay", None).status, 200);
    let a = client.post(
        "/demo/api/otp-request",
        None,
        &json!({"pan": pan(9), "amount": "1000", "payee_id": "S", "type": "purchase"}),
    );
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.error_code(), "harim_unreachable");
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("gw-demo-page-token-0001"), "{log}");
}
