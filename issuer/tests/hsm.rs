//! The issuer with its keys in a PKCS#11 token (SoftHSM2, a token made by
//! the test in its own `SOFTHSM2_CONF` directory; issue 12, item 2): the
//! whole flow with no key file on disk, clear errors at start for a wrong
//! PIN, a missing key and an unplugged token, and a master key rotation in
//! the middle of a load that loses no verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use pooya_issuer::{InitOptions, Pkcs11Setup, Settings};
use pooya_issuer_pkcs11::testing::{SoftHsm, Token, shared_token};
use pooya_protocol::{Transaction, TxType, first_pin, second_pin, transaction_pin};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_pooya-issuer");
const PHONE: &str = "+989121234567";
const SHORT: &str = "30003303";

fn pin_file(dir: &Path, pin: &str) -> PathBuf {
    let path = dir.join("token.pin");
    std::fs::write(&path, pin).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Enrollment, activation, both app PINs, a transaction PIN, the SMS
/// version and a Harim PIN, with every key in the token; across a restart.
#[test]
fn the_whole_flow_with_the_keys_in_a_token() {
    let token = shared_token().unwrap();
    let pins = tempfile::tempdir().unwrap();
    let options = InitOptions {
        pkcs11: Some(Pkcs11Setup {
            module: token.module.clone(),
            token_label: token.label.clone(),
            pin_file: Some(pin_file(pins.path(), &token.pin)),
        }),
        ..InitOptions::default()
    };
    let mut bank = Bank::start_with_init(Settings::development(), options);
    // No key file: the database (SQLite here) and keys.json, which names
    // the token and no secret.
    let files = files_in(bank.dir.path());
    assert!(!files.iter().any(|f| f.contains("master")), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("hash.keys")), "{files:?}");
    let keys_json = std::fs::read_to_string(bank.dir.path().join("keys.json")).unwrap();
    assert!(!keys_json.contains(&token.pin), "{keys_json}");
    assert!(keys_json.contains("pkcs11"), "{keys_json}");

    let p = pan(301);
    let card = bank.enroll_and_activate(&p, PHONE);
    let policies = card.response.policies.clone();
    let first = first_pin(&card.keys, &policies, T0).unwrap();
    let v = bank.verify(&p, &first.code, 0, None, "first");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    let cap = policies.cap_ladder.tiers()[0];
    let second = second_pin(&card.keys, &policies, cap, T0).unwrap();
    let v = bank.verify(&p, &second.code, cap, None, "second");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    bank.clock.advance(60);
    let tx = transaction_pin(
        &card.keys,
        &policies,
        &Transaction::new(TxType::Purchase, 250_000, "IR-SHOP-9"),
        T0 + 60,
    )
    .unwrap();
    let v = bank.verify(&p, &tx.code, 250_000, Some("IR-SHOP-9"), "second");
    assert_eq!(v.json()["matched"], "transaction", "{}", v.body);
    let v = bank.verify(&p, "00000000", cap, None, "second");
    assert_eq!(v.json()["reason"], "wrong_code", "{}", v.body);

    // The SMS version beside the app, and a Harim PIN.
    assert_eq!(bank.enroll(&p, PHONE, "sms").status, 201);
    let n = bank.outbox(PHONE).len();
    assert_eq!(bank.inbound(PHONE, SHORT, &p[p.len() - 4..]).status, 200);
    let code = bank.one_time_code(PHONE, n + 1);
    let v = bank.verify(&p, &code, 1_000_000, None, "second");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    assert_eq!(bank.harim(&p, 990_000, "Shop", "IR-SHOP-1").status, 202);
    let h = bank.one_time_code(PHONE, n + 2);
    let v = bank.verify(&p, &h, 990_000, Some("IR-SHOP-1"), "second");
    assert_eq!(v.json()["matched"], "transaction", "{}", v.body);

    // A restart opens the same token keys.
    bank.restart();
    bank.clock.advance(60);
    let first = first_pin(&card.keys, &policies, T0 + 120).unwrap();
    let v = bank.verify(&p, &first.code, 0, None, "first");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    let q = pan(302);
    let card_q = bank.enroll_and_activate(&q, "+989121234568");
    let first = first_pin(&card_q.keys, &card_q.response.policies, T0 + 120).unwrap();
    let v = bank.verify(&q, &first.code, 0, None, "first");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
}

/// A `pooya-issuer` data directory on a token of its own directory.
struct HsmBank {
    dir: tempfile::TempDir,
    hsm: SoftHsm,
    token: Token,
    init: Value,
}

impl HsmBank {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        let (name, conf) = self.hsm.env();
        cmd.args(args)
            .arg("--data")
            .arg(self.data())
            .env(name, conf)
            .env("POOYA_PKCS11_PIN", &self.token.pin)
            .env_remove("POOYA_DATABASE_URL");
        cmd
    }

    /// `init --keys pkcs11` through the binary.
    fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hsm = SoftHsm::new().unwrap();
        let token = hsm.token("bank").unwrap();
        let mut bank = Self {
            dir,
            hsm,
            token,
            init: Value::Null,
        };
        let module = bank.token.module.display().to_string();
        let label = bank.token.label.clone();
        let out = bank
            .command(&[
                "init",
                "--json",
                "--keys",
                "pkcs11",
                "--pkcs11-module",
                &module,
                "--pkcs11-token",
                &label,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bank.init = serde_json::from_slice(&out.stdout).unwrap();
        let files = files_in(&bank.data());
        assert!(files.contains(&"keys.json".to_owned()), "{files:?}");
        assert!(
            files
                .iter()
                .all(|f| f == "keys.json" || f.starts_with("issuer.db")),
            "no key file: {files:?}"
        );
        std::fs::write(
            bank.dir.path().join("settings.json"),
            r#"{"sms": {"sender": "dev_recorder", "poll_interval_ms": 50}}"#,
        )
        .unwrap();
        bank
    }

    fn token(&self, role: &str) -> String {
        self.init["tokens"][role].as_str().unwrap().to_owned()
    }

    fn pinned(&self) -> Pinned {
        Pinned {
            public_key: self.init["issuer_public_key"].as_str().unwrap().to_owned(),
            activation_key: self.init["activation_public_key"]
                .as_str()
                .unwrap()
                .to_owned(),
        }
    }

    /// `serve`: the node, or its exit's stderr when it does not start.
    fn serve_with(&self, f: impl FnOnce(&mut Command)) -> Result<Node, String> {
        let settings = self.dir.path().join("settings.json");
        let settings = settings.display().to_string();
        let mut cmd = self.command(&["serve", "--listen", "127.0.0.1:0", "--config", &settings]);
        f(&mut cmd);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => Ok(Node {
                client: Client::new(&format!("http://{addr}")),
                child,
                _stdout: stdout,
            }),
            None => {
                let out = child.wait_with_output().unwrap();
                assert!(!out.status.success());
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        }
    }

    fn serve(&self) -> Node {
        self.serve_with(|_| {}).unwrap()
    }

    fn messages(&self, node: &Node, phone: &str, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let a = node.client.get(
                &format!("/v1/sms/outbox?phone={}", phone.replace('+', "%2B")),
                Some(&self.token("ops")),
            );
            assert_eq!(a.status, 200, "{}", a.body);
            let msgs = a.json()["messages"].as_array().unwrap().clone();
            if msgs.len() >= n {
                return msgs;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{phone}: {} messages",
                msgs.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn card(&self, node: &Node, n: u64) -> (String, String, PhoneCard) {
        let p = pan(n);
        let phone = format!("+98912{:07}", n);
        let e = node.client.post(
            "/v1/enrollments",
            Some(&self.token("atm")),
            &json!({"pan": p, "phone": phone, "channel": "app"}),
        );
        assert_eq!(e.status, 201, "{}", e.body);
        let msgs = self.messages(node, &phone, 1);
        let body = msgs.last().unwrap()["body"].as_str().unwrap().to_owned();
        let code = pooya_issuer::messages::find_activation_code(&body).unwrap();
        let (status, card) = Phone::new().activate(&node.client, &phone, &code, &self.pinned());
        assert_eq!(status, 201);
        (p, phone, card.unwrap())
    }

    fn keys_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.data().join("keys.json")).unwrap())
            .unwrap()
    }

    fn set_keys_json(&self, v: &Value) {
        std::fs::write(self.data().join("keys.json"), v.to_string()).unwrap();
    }
}

struct Node {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    client: Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `init --keys pkcs11` writes no key file; `serve` finds its keys in the
/// token; a wrong PIN, a missing key, an unplugged token and no PIN are
/// each a clear error with its stable code at start, never a running
/// server.
#[test]
fn serve_with_a_token_and_clear_errors_at_start() {
    let bank = HsmBank::init();
    let keys = bank.keys_json();
    assert_eq!(keys["provider"], "pkcs11");
    assert!(!keys.to_string().contains(&bank.token.pin));
    {
        let node = bank.serve();
        assert_eq!(node.client.get("/healthz", None).status, 200);
        let (p, _, card) = bank.card(&node, 401);
        let code = first_pin(&card.keys, &card.response.policies, now()).unwrap();
        let v = node.client.post(
            "/v1/verify",
            Some(&bank.token("gateway")),
            &json!({"pan": p, "code": code.code, "amount": 0, "kind": "first"}),
        );
        assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    }

    let err = bank
        .serve_with(|c| {
            c.env("POOYA_PKCS11_PIN", "0000-0000");
        })
        .err()
        .expect("a wrong PIN does not start");
    assert!(err.contains("hsm_pin_incorrect"), "{err}");
    assert!(
        !err.contains("0000-0000"),
        "the PIN is never printed: {err}"
    );

    let err = bank
        .serve_with(|c| {
            c.env_remove("POOYA_PKCS11_PIN");
        })
        .err()
        .expect("no PIN does not start");
    assert!(err.contains("invalid_settings"), "{err}");

    let mut other = keys.clone();
    other["label_prefix"] = json!("another-bank");
    bank.set_keys_json(&other);
    let err = bank
        .serve_with(|_| {})
        .err()
        .expect("missing keys do not start");
    assert!(err.contains("hsm_key_missing"), "{err}");

    let mut unplugged = keys.clone();
    other = unplugged.clone();
    let zeros = bank.dir.path().join("not-a-module.so");
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();
    unplugged["module"] = json!(zeros);
    bank.set_keys_json(&unplugged);
    let err = bank
        .serve_with(|_| {})
        .err()
        .expect("a broken module does not start");
    assert!(err.contains("hsm_unavailable"), "{err}");
    other["module"] = json!(bank.dir.path().join("no-such-module.so"));
    bank.set_keys_json(&other);
    let err = bank
        .serve_with(|_| {})
        .err()
        .expect("a missing module does not start");
    assert!(err.contains("hsm_unavailable"), "{err}");

    for e in ["hsm_pin_incorrect", "hsm_key_missing", "hsm_unavailable"] {
        assert!(!err.contains("panicked"), "{e}: {err}");
    }
    bank.set_keys_json(&keys);
    let node = bank.serve();
    assert_eq!(node.client.get("/healthz", None).status, 200);
}

/// `rotate-keys` while four threads verify PINs of 48 cards and new cards
/// are activated: every right code is accepted (each card's code of a
/// kind is sent once per step, never replayed), the old master key version
/// is retired, and nothing is left under it (`--finish` finds nothing); a
/// restarted node, which can no longer find version 1, opens every card's
/// keys.
#[test]
fn rotation_in_the_middle_of_a_load_loses_no_verification() {
    let bank = HsmBank::init();
    let node = bank.serve();
    let cards: Vec<(String, String, PhoneCard)> = std::thread::scope(|s| {
        let node = &node;
        let bank = &bank;
        let parts: Vec<_> = (0..4u64)
            .map(|t| {
                s.spawn(move || {
                    (0..12u64)
                        .map(|i| bank.card(node, 500 + t * 12 + i))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let load_cards: Arc<Vec<(String, PhoneCard)>> = Arc::new(
        cards
            .iter()
            .map(|(p, _, c)| (p.clone(), c.clone()))
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let gateway = bank.token("gateway");
    let bases = vec![node.client.base.clone()];
    let load: Vec<_> = (0..4usize)
        .map(|lane| {
            let (cards, stop, gateway, bases) = (
                Arc::clone(&load_cards),
                Arc::clone(&stop),
                gateway.clone(),
                bases.clone(),
            );
            std::thread::spawn(move || {
                fresh_code_load(
                    &bases,
                    &gateway,
                    &cards,
                    lane,
                    4,
                    &stop,
                    Duration::from_millis(150),
                )
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    let rotate = bank
        .command(&["rotate-keys", "--settle-secs", "3"])
        .spawn_output();
    // Cards activated while the rotation runs are sealed under one version
    // or the other; both must come out under the new one.
    let late: Vec<_> = (0..3).map(|i| bank.card(&node, 600 + i)).collect();
    let out = rotate.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let accepted: u64 = load.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(
        accepted >= 40,
        "{accepted} verifications accepted during the test"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The running node seals under version 2 now: a card activated on it
    // after the retirement opens after a restart, with version 1 gone.
    let mut late = late;
    late.push(bank.card(&node, 610));
    let m = node.client.get("/metrics", Some(&bank.token("ops")));
    assert!(
        m.body.contains("pooya_issuer_master_key_version 2\n"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("pooya_issuer_key_provider{provider=\"pkcs11\"} 1\n"),
        "{}",
        m.body
    );
    assert_eq!(report["to"], 2, "{report}");
    assert_eq!(report["retired"], json!([1]), "{report}");
    assert!(
        report["resealed"]["card_keys"].as_u64().unwrap() >= 48,
        "{report}"
    );
    assert!(
        report["resealed"]["card_pan"].as_u64().unwrap() >= 48,
        "{report}"
    );
    assert!(
        report["resealed"]["meta"].as_u64().unwrap() >= 1,
        "{report}"
    );

    // Nothing is left under version 1.
    let finish = bank.command(&["rotate-keys", "--finish"]).output().unwrap();
    assert!(
        finish.status.success(),
        "{}",
        String::from_utf8_lossy(&finish.stderr)
    );
    let finish: Value = serde_json::from_slice(&finish.stdout).unwrap();
    assert_eq!(finish["passes"], 1, "{finish}");
    assert_eq!(finish["resealed"], json!({}), "{finish}");
    assert_eq!(finish["retired"], json!([]), "{finish}");

    // A restarted node opens every card's keys: a wrong code is a wrong
    // code (a blob it cannot open would be a 500), and the late cards'
    // right codes are accepted.
    drop(node);
    let node = bank.serve();
    for (p, _, _) in cards.iter() {
        let v = node.client.post(
            "/v1/verify",
            Some(&gateway),
            &json!({"pan": p, "code": "000000", "amount": 0, "kind": "first"}),
        );
        assert_eq!(v.status, 200, "{}", v.body);
        assert_eq!(v.json()["reason"], "wrong_code", "{}", v.body);
    }
    for (p, _, card) in &late {
        let code = first_pin(&card.keys, &card.response.policies, now()).unwrap();
        let v = node.client.post(
            "/v1/verify",
            Some(&gateway),
            &json!({"pan": p, "code": code.code, "amount": 0, "kind": "first"}),
        );
        assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    }
}

/// Runs a command on a thread, for its output.
trait SpawnOutput {
    fn spawn_output(self) -> std::thread::JoinHandle<std::process::Output>;
}

impl SpawnOutput for Command {
    fn spawn_output(mut self) -> std::thread::JoinHandle<std::process::Output> {
        std::thread::spawn(move || self.output().unwrap())
    }
}
