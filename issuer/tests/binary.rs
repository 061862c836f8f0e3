//! The `pooya-issuer` binary: `init --json`, `serve` printing its address,
//! and no plaintext PAN, seed, code or token in the database files or the
//! logs after a full flow.

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
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
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
    let msgs = client.get("/v1/sms/outbox", Some(&token("ops"))).json();
    let body = msgs["messages"][0]["body"].as_str().unwrap().to_owned();
    let code = pooya_issuer::messages::find_activation_code(&body).unwrap();
    let (status, card) = Phone::new().activate(&client, PHONE, &code, &pk);
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
