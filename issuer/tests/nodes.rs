//! Several `pooya-issuer serve` processes on one PostgreSQL database
//! (issue 11, item 3; docs/issuer.md, "Several nodes on PostgreSQL"): the
//! answers one process would give, across processes, and across a
//! `kill -9` of one of them. The database is a throwaway cluster
//! (`pooya-testpg`) or `POOYA_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use pooya_protocol::{first_pin, second_pin};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_pooya-issuer");

/// One issuer's data directory (the key file) and database.
struct Bank {
    dir: tempfile::TempDir,
    url: String,
    init: Value,
}

impl Bank {
    fn new() -> Self {
        let url = pooya_testpg::TestPostgres::shared()
            .unwrap()
            .fresh_database()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(["init", "--json", "--data"])
            .arg(dir.path().join("data"))
            .env("POOYA_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let init: Value = serde_json::from_slice(&out.stdout).unwrap();
        // --data holds only the key file.
        let files: Vec<_> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, vec!["master.key".to_owned()]);
        Self { dir, url, init }
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

    /// Starts a node: `serve` on an ephemeral port, with these settings.
    fn node(&self, name: &str, settings: &Value) -> Node {
        let config = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&config, settings.to_string()).unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(self.dir.path().join("data"))
            .env("POOYA_DATABASE_URL", &self.url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut line = String::new();
        // Kept open for the node's life: it prints its keys next.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name}: {line}"))
            .to_owned();
        Node {
            child,
            _stdout: stdout,
            client: Client::new(&format!("http://{addr}")),
        }
    }

    /// Messages the development recorder delivered to `phone`, once there
    /// are at least `n` (any node may deliver them).
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
                "{phone}: {} messages, expected {n}",
                msgs.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Enrolls a card on `a` and activates it through `b`.
    fn card(&self, a: &Node, b: &Node, n: u64, phone: &str) -> (String, PhoneCard) {
        let p = pan(n);
        let e = a.client.post(
            "/v1/enrollments",
            Some(&self.token("atm")),
            &json!({"pan": p, "phone": phone, "channel": "app"}),
        );
        assert_eq!(e.status, 201, "{}", e.body);
        let msgs = self.messages(b, phone, 1);
        let body = msgs.last().unwrap()["body"].as_str().unwrap().to_owned();
        let code = pooya_issuer::messages::find_activation_code(&body).unwrap();
        let (status, card) = Phone::new().activate(&b.client, phone, &code, &self.pinned());
        assert_eq!(status, 201);
        (p, card.unwrap())
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        // A failed test shows what the nodes logged.
        if std::thread::panicking() {
            for name in ["a", "b"] {
                if let Ok(log) =
                    std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                {
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    eprintln!("--- node {name} ---");
                    for line in tail.iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
    }
}

struct Node {
    child: Child,
    _stdout: BufReader<std::process::ChildStdout>,
    client: Client,
}

impl Node {
    fn verify(&self, gateway: &str, pan: &str, code: &str, kind: &str) -> Answer {
        self.client.post(
            "/v1/verify",
            Some(gateway),
            &json!({"pan": pan, "code": code, "amount": 1000, "kind": kind}),
        )
    }

    /// As [`Node::verify`], `None` when the node does not answer.
    fn try_verify(&self, gateway: &str, pan: &str, code: &str, kind: &str) -> Option<Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut resp = agent
            .post(format!("{}/v1/verify", self.client.base))
            .header("Authorization", format!("Bearer {gateway}"))
            .send_json(json!({"pan": pan, "code": code, "amount": 1000, "kind": kind}))
            .ok()?;
        resp.body_mut().read_json().ok()
    }

    /// `kill -9` (and reaps it; a node killed already is only reaped).
    fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }
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

fn dev() -> Value {
    json!({"sms": {"sender": "dev_recorder", "poll_interval_ms": 50}})
}

fn phone_of(n: u64) -> String {
    format!("+98912{n:07}")
}

#[test]
fn two_nodes_answer_as_one() {
    let bank = Bank::new();
    let a = bank.node("a", &dev());
    let b = bank.node("b", &dev());
    let gw = bank.token("gateway");

    // Enrolled on A, activated on B.
    let phone = phone_of(1);
    let (p, card) = bank.card(&a, &b, 1, &phone);
    let pol = &card.response.policies;
    let code = second_pin(&card.keys, pol, pol.cap_ladder.tiers()[0], now())
        .unwrap()
        .code;

    // 200 concurrent verifications of one valid code, half on each node:
    // exactly one accepted.
    let nodes = Arc::new([a.client.base.clone(), b.client.base.clone()]);
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (nodes, gw, p, code) = (Arc::clone(&nodes), &gw, &p, &code);
                s.spawn(move || {
                    Client::new(&nodes[i % 2])
                        .post(
                            "/v1/verify",
                            Some(gw),
                            &json!({"pan": p, "code": code, "amount": 1000, "kind": "second"}),
                        )
                        .json()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = answers.iter().filter(|v| v["result"] == "accepted").count();
    assert_eq!(accepted, 1, "{answers:?}");

    // 1,000 wrong codes over both nodes for another card: exactly five
    // rejected (the fifth blocks), then blocked; one block SMS.
    let phone2 = phone_of(2);
    let (p2, _) = bank.card(&a, &b, 2, &phone2);
    let before = bank.messages(&a, &phone2, 2).len();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (nodes, gw, p2) = (Arc::clone(&nodes), &gw, &p2);
                s.spawn(move || {
                    let client = Client::new(&nodes[t % 2]);
                    (0..125)
                        .map(|i| {
                            // Eight digits, never a PIN of this step: the
                            // app's codes are checked against the seed.
                            let code = format!("{:08}", 10_000_000 + t * 1000 + i);
                            client
                                .post(
                                    "/v1/verify",
                                    Some(gw),
                                    &json!({"pan": p2, "code": code, "amount": 1000, "kind": "second"}),
                                )
                                .json()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let count = |r: &str| answers.iter().filter(|v| v["result"] == r).count();
    assert_eq!(
        (count("rejected"), count("blocked"), count("accepted")),
        (5, 995, 0)
    );
    let msgs = bank.messages(&b, &phone2, before + 1);
    std::thread::sleep(Duration::from_millis(500));
    let msgs_later = bank.messages(&b, &phone2, before + 1);
    assert_eq!(msgs.len(), before + 1, "{msgs:?}");
    assert_eq!(msgs_later.len(), before + 1, "one block SMS, not more");
}

#[test]
fn kill_9_of_a_node_under_load_loses_no_spent_code() {
    let bank = Bank::new();
    let mut a = bank.node("a", &dev());
    let b = bank.node("b", &dev());
    let gw = bank.token("gateway");
    let cards: Vec<(String, PhoneCard)> = (10..30)
        .map(|n| bank.card(&a, &b, n, &phone_of(n)))
        .collect();
    // Each card's first and second PIN of this step: 40 codes.
    let t = now();
    let codes: Vec<(String, String, &str)> = cards
        .iter()
        .flat_map(|(p, c)| {
            let pol = &c.response.policies;
            [
                (p.clone(), first_pin(&c.keys, pol, t).unwrap().code, "first"),
                (
                    p.clone(),
                    second_pin(&c.keys, pol, pol.cap_ladder.tiers()[0], t)
                        .unwrap()
                        .code,
                    "second",
                ),
            ]
        })
        .collect();

    // B is watched throughout: every /healthz answers 200 within a second.
    let stop = AtomicBool::new(false);
    let a_pid = a.child.id().to_string();
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let (accepted_on_a, watch) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut worst = Duration::ZERO;
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let h = b.client.get("/healthz", None);
                assert_eq!(h.status, 200, "{}", h.body);
                worst = worst.max(started.elapsed());
                answered += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (answered, worst)
        });
        // The load on A from four connections at once; A is killed while
        // requests are in flight.
        let loaders: Vec<_> = codes
            .chunks(codes.len() / 4)
            .map(|chunk| {
                let (a, gw, answered) = (&a, &gw, &answered);
                s.spawn(move || {
                    let mut accepted = Vec::new();
                    for (p, code, kind) in chunk {
                        if let Some(r) = a.try_verify(gw, p, code, kind) {
                            answered.fetch_add(1, Ordering::Relaxed);
                            if r["result"] == "accepted" {
                                accepted.push((p.clone(), code.clone(), *kind));
                            }
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    accepted
                })
            })
            .collect();
        while answered.load(Ordering::Relaxed) < codes.len() / 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let killed = Command::new("kill").args(["-9", &a_pid]).status().unwrap();
        assert!(killed.success());
        let accepted: Vec<_> = loaders
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        stop.store(true, Ordering::Relaxed);
        (accepted, watcher.join().unwrap())
    });
    a.kill();
    assert!(
        accepted_on_a.len() >= codes.len() / 3 && accepted_on_a.len() < codes.len(),
        "A answered {} of {} before it was killed",
        accepted_on_a.len(),
        codes.len()
    );
    let (answered, worst) = watch;
    assert!(answered > 0 && worst < Duration::from_secs(1), "{watch:?}");
    // Every code A accepted is spent for B too; the rest are B's.
    for (p, code, kind) in &accepted_on_a {
        let r = b.verify(&gw, p, code, kind).json();
        assert_eq!(
            (r["result"].as_str(), r["reason"].as_str()),
            (Some("rejected"), Some("replayed"))
        );
    }
    // A code A committed but did not answer (killed in between) is spent
    // too; the others B accepts now. Nothing else.
    let mut accepted_on_b = 0;
    for (p, code, kind) in &codes {
        if accepted_on_a.iter().any(|(q, c, _)| q == p && c == code) {
            continue;
        }
        let r = b.verify(&gw, p, code, kind).json();
        match (r["result"].as_str(), r["reason"].as_str()) {
            (Some("accepted"), _) => accepted_on_b += 1,
            (Some("rejected"), Some("replayed")) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(accepted_on_b > 0, "A was killed before the end of the load");
}

#[test]
fn messages_committed_by_a_killed_node_are_delivered_once_by_another() {
    let bank = Bank::new();
    // A delivers nothing: every message it commits waits in the outbox.
    let mut a = bank.node(
        "a",
        &json!({"sms": {"sender": "dev_recorder", "delivery": false}}),
    );
    let atm = bank.token("atm");
    for n in 40..50 {
        let e = a.client.post(
            "/v1/enrollments",
            Some(&atm),
            &json!({"pan": pan(n), "phone": phone_of(n), "channel": "app"}),
        );
        assert_eq!(e.status, 201, "{}", e.body);
    }
    a.kill();
    let b = bank.node("b", &dev());
    for n in 40..50 {
        let msgs = bank.messages(&b, &phone_of(n), 1);
        assert!(
            pooya_issuer::messages::find_activation_code(msgs[0]["body"].as_str().unwrap())
                .is_some()
        );
    }
    // None is sent twice.
    std::thread::sleep(Duration::from_millis(500));
    for n in 40..50 {
        assert_eq!(bank.messages(&b, &phone_of(n), 1).len(), 1);
    }
    let m = b.client.get("/metrics", Some(&bank.token("ops")));
    assert!(
        m.body
            .contains("pooya_issuer_sms_outbox_messages{state=\"pending\"} 0\n"),
        "{}",
        m.body
    );
}

/// `rotate-keys` with the key files, on a database two loaded nodes share
/// (their data directories hold the same key files, as a bank copies
/// them): both adopt the new version, every right code is accepted
/// throughout, `master.key` is retired (the lookup-hash keys kept in
/// `hash.keys`), and a restarted node still knows every API token and
/// card.
#[test]
fn rotating_the_master_key_files_under_two_loaded_nodes() {
    let bank = Bank::new();
    let settings = dev();
    let a = bank.node("a", &settings);
    let b = bank.node("b", &settings);
    let cards: Vec<(String, PhoneCard)> = (0..24)
        .map(|i| bank.card(&a, &b, 700 + i, &phone_of(700 + i)))
        .collect();
    let cards = Arc::new(cards);
    let stop = Arc::new(AtomicBool::new(false));
    let gateway = bank.token("gateway");
    let bases = vec![a.client.base.clone(), b.client.base.clone()];
    let load: Vec<_> = (0..2usize)
        .map(|lane| {
            let (cards, stop, gateway, bases) = (
                Arc::clone(&cards),
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
                    2,
                    &stop,
                    Duration::from_millis(120),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let data = bank.dir.path().join("data");
    let rotate = {
        let mut cmd = Command::new(BIN);
        cmd.args(["rotate-keys", "--settle-secs", "3", "--data"])
            .arg(&data)
            .env("POOYA_DATABASE_URL", &bank.url);
        std::thread::spawn(move || cmd.output().unwrap())
    };
    // Activations on both nodes while it runs.
    let late: Vec<(String, PhoneCard)> = (0..2)
        .map(|i| bank.card(&b, &a, 800 + i, &phone_of(800 + i)))
        .collect();
    let out = rotate.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let accepted: u64 = load.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(accepted >= 20, "{accepted} accepted");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["retired"], json!([1]), "{report}");
    assert!(
        report["resealed"]["card_keys"].as_u64().unwrap() >= 24,
        "{report}"
    );
    // The running nodes seal under version 2 now: a card activated on
    // them after the retirement opens on a node that has only version 2.
    let mut late = late;
    late.push(bank.card(&a, &b, 810, &phone_of(810)));
    late.push(bank.card(&b, &a, 811, &phone_of(811)));
    let mut files: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec!["hash.keys", "master.v2.key"]);

    // A node started now has only version 2 and hash.keys: the tokens
    // still authenticate, every card's keys open, a late card's code is
    // accepted.
    let c = bank.node("c", &settings);
    for (p, _) in cards.iter() {
        let v = c.verify(&gateway, p, "000000", "first");
        assert_eq!(v.status, 200, "{}", v.body);
        assert_eq!(v.json()["reason"], "wrong_code", "{}", v.body);
    }
    for (p, card) in &late {
        let code = first_pin(&card.keys, &card.response.policies, now()).unwrap();
        let v = c.verify(&gateway, p, &code.code, "first");
        assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    }
}
