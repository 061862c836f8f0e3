//! Load-benchmark helper for `issuer/bench/run.sh`: enrolls and activates
//! cards over HTTP (playing the ATM and the phones), writes request bodies
//! for `oha -Z`, and summarises oha's JSON output.
//!
//! - `bench_prep enroll URL ATM_TOKEN OPS_TOKEN ISSUER_KEY ACTIVATION_KEY N CARDS_FILE`
//! - `bench_prep bodies CARDS_FILE accept|reject OUT_FILE`
//! - `bench_prep summary LABEL OHA_JSON METRICS_BEFORE METRICS_AFTER LOADAVG`
//! - `bench_prep get JSON_FILE POINTER`, `bench_prep wait-step STEP`
//!
//! The cards file holds the phones' card seeds: benchmark data in a
//! temporary directory, deleted by the script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pooya_protocol::activation::{
    ActivationPlaintext, ActivationResponse, ActivationTranscript, derive_card_seed, seal_request,
};
use pooya_protocol::{
    CardSeed, Policies, Transaction, TxType, first_pin, ids, second_pin, transaction_pin,
};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, UnparsedPublicKey as SigKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
struct Card {
    pan: String,
    seed: String,
    policies: Policies,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &Value) -> (u16, String) {
    let mut r = agent.post(url);
    if let Some(t) = token {
        r = r.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = r.send_json(body).unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn pan(i: usize) -> String {
    let payload = format!("610433{:09}", i);
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

fn enroll_one(
    agent: &ureq::Agent,
    url: &str,
    atm: &str,
    ops: &str,
    key: &str,
    activation_key: &str,
    i: usize,
) -> Card {
    let pan = pan(i);
    let phone = format!("0912{:07}", i);
    let (s, b) = post(
        agent,
        &format!("{url}/v1/enrollments"),
        Some(atm),
        &json!({"pan": pan, "phone": phone, "channel": "app"}),
    );
    assert_eq!(s, 201, "{b}");
    let norm_phone = pooya_protocol::normalize_phone(&phone).unwrap();
    // The SMS leaves the durable outbox just after the answer.
    let started = std::time::Instant::now();
    let body = loop {
        let mut resp = agent
            .get(format!("{url}/v1/sms/outbox?phone=%2B{}", &norm_phone[1..]))
            .header("Authorization", format!("Bearer {ops}"))
            .call()
            .unwrap();
        let outbox: Value = resp.body_mut().read_json().unwrap();
        if let Some(m) = outbox["messages"].as_array().unwrap().last() {
            break m["body"].as_str().unwrap().to_owned();
        }
        assert!(started.elapsed().as_secs() < 10, "no activation SMS");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let code = pooya_issuer::messages::find_activation_code(&body).unwrap();
    let rng = SystemRandom::new();
    let eph = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
    let public = eph.compute_public_key().unwrap().as_ref().to_vec();
    let mut ikm = [0u8; 32];
    rng.fill(&mut ikm).unwrap();
    let plaintext = ActivationPlaintext {
        phone: phone.clone(),
        code: code.clone(),
        device_public_key: hex::encode(&public),
        device_label: "bench".into(),
    };
    let (enc, sealed) =
        seal_request(&hex::decode(activation_key).unwrap(), &plaintext, &ikm).unwrap();
    let (s, b) = post(
        agent,
        &format!("{url}/v1/activations"),
        None,
        &json!({"enc": hex::encode(enc), "sealed": hex::encode(&sealed)}),
    );
    assert_eq!(s, 201, "{b}");
    let r: ActivationResponse = serde_json::from_str(&b).unwrap();
    let issuer_eph = hex::decode(&r.issuer_ephemeral_public_key).unwrap();
    let transcript = ActivationTranscript {
        enc: &enc,
        sealed: &sealed,
        phone: &norm_phone,
        code: &code,
        device_public_key: &public,
        device_label: "bench",
        issuer_ephemeral_public_key: &issuer_eph,
        card_id: &r.card_id,
        masked_pan: &r.masked_pan,
        last4: &r.last4,
        bank_name: &r.bank_name,
        policies: &r.policies,
        server_time: r.server_time,
    };
    let bytes = transcript.to_bytes();
    SigKey::new(&ED25519, hex::decode(key).unwrap())
        .verify(&bytes, &hex::decode(&r.signature).unwrap())
        .unwrap();
    let seed =
        agreement::agree_ephemeral(eph, &UnparsedPublicKey::new(&X25519, &issuer_eph), |ss| {
            derive_card_seed(ss, &bytes)
        })
        .unwrap();
    Card {
        pan,
        seed: hex::encode(seed.expose_secret()),
        policies: r.policies,
    }
}

fn enroll(args: &[String]) {
    let [url, atm, ops, key, activation_key, n, out] = args else {
        panic!("enroll URL ATM OPS ISSUER_KEY ACTIVATION_KEY N OUT");
    };
    let n: usize = n.parse().unwrap();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let mut cards: Vec<(usize, Card)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let next = &next;
                s.spawn(move || {
                    let agent = agent();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break mine;
                        }
                        mine.push((i, enroll_one(&agent, url, atm, ops, key, activation_key, i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    cards.sort_by_key(|c| c.0);
    let cards: Vec<Card> = cards.into_iter().map(|c| c.1).collect();
    std::fs::write(out, serde_json::to_vec(&cards).unwrap()).unwrap();
    eprintln!(
        "enrolled and activated {n} cards over HTTP in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Accept mode: for every card, its first PIN, a cap-bound second PIN and a
/// transaction-bound PIN, each for the current step and the next (all six
/// inside the verifier's window, none spending another's step). Reject
/// mode: one wrong 8-digit code per card and kind.
fn bodies(args: &[String]) {
    let [cards, mode, out] = args else {
        panic!("bodies CARDS accept|reject OUT");
    };
    let cards: Vec<Card> = serde_json::from_slice(&std::fs::read(cards).unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let t = now();
    let rng = SystemRandom::new();
    let mut lines = 0;
    for c in &cards {
        let seed = CardSeed::from_slice(&hex::decode(&c.seed).unwrap()).unwrap();
        let keys = seed.derive_keys();
        let p = &c.policies;
        let tier = p.cap_ladder.tiers()[1];
        let amount = tier / 2;
        let mut out_line = |code: &str, amount: u64, payee: Option<&str>, kind: &str| {
            let mut b = json!({"pan": c.pan, "code": code, "amount": amount, "kind": kind});
            if let Some(py) = payee {
                b["payee"] = json!(py);
                b["type"] = json!("purchase");
            }
            writeln!(f, "{b}").unwrap();
            lines += 1;
        };
        match mode.as_str() {
            "accept" => {
                for dt in [0, p.second.step] {
                    let first = first_pin(&keys, p, t + dt).unwrap();
                    out_line(&first.code, 0, None, "first");
                    let second = second_pin(&keys, p, tier, t + dt).unwrap();
                    out_line(&second.code, amount, None, "second");
                    let tx = transaction_pin(
                        &keys,
                        p,
                        &Transaction::new(TxType::Purchase, amount, "shop-42"),
                        t + dt,
                    )
                    .unwrap();
                    out_line(&tx.code, amount, Some("shop-42"), "second");
                }
            }
            "reject" => {
                for kind in ["first", "second"] {
                    let digits = if kind == "first" {
                        p.first.digits
                    } else {
                        p.second.digits
                    };
                    let mut b = vec![0u8; digits as usize];
                    rng.fill(&mut b).unwrap();
                    let code: String = b.iter().map(|x| char::from(b'0' + x % 10)).collect();
                    out_line(&code, amount, None, kind);
                }
            }
            other => panic!("mode {other}"),
        }
    }
    eprintln!("{lines} bodies written");
    // The step the codes belong to, for `wait-step`.
    println!("{}", t / 60);
}

fn counters(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("pooya_issuer_verifications_total"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn summary(args: &[String]) {
    let [label, oha, before, after, load] = args else {
        panic!("summary LABEL OHA_JSON METRICS_BEFORE METRICS_AFTER LOADAVG");
    };
    let v: Value = serde_json::from_slice(&std::fs::read(oha).unwrap()).unwrap();
    let s = &v["summary"];
    let lat = &v["latencyPercentiles"];
    let ms = |x: &Value| x.as_f64().unwrap_or(f64::NAN) * 1000.0;
    let before = counters(&std::fs::read_to_string(before).unwrap_or_default());
    let after = counters(&std::fs::read_to_string(after).unwrap_or_default());
    let mut verdicts = Vec::new();
    for r in ["accepted", "rejected", "blocked"] {
        let k = format!("pooya_issuer_verifications_total{{result=\"{r}\"}}");
        let d = after.get(&k).copied().unwrap_or(0.0) - before.get(&k).copied().unwrap_or(0.0);
        if d > 0.0 {
            verdicts.push(format!("{r} {d}"));
        }
    }
    let statuses = v["statusCodeDistribution"].to_string();
    println!(
        "| {label} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {load} |",
        s["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        ms(&lat["p50"]),
        ms(&lat["p99"]),
        ms(&lat["p99.9"]),
        s["successRate"].as_f64().unwrap_or(f64::NAN) * 100.0,
        statuses,
        if verdicts.is_empty() {
            "-".to_owned()
        } else {
            verdicts.join(", ")
        },
    );
}

/// Prints the JSON value at `pointer` (RFC 6901) of a file, unquoted.
fn get(args: &[String]) {
    let [file, pointer] = args else {
        panic!("get JSON_FILE POINTER");
    };
    let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    match v.pointer(pointer) {
        Some(Value::String(s)) => println!("{s}"),
        Some(other) => println!("{other}"),
        None => panic!("no {pointer} in {file}"),
    }
}

/// Sleeps until the 60-second step is at least `step` (so the codes of
/// the previous accept run's steps are out of the window).
fn wait_step(args: &[String]) {
    let [step] = args else {
        panic!("wait-step STEP");
    };
    let step: u64 = step.parse().unwrap();
    while now() / 60 < step {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("enroll") => enroll(&args[1..]),
        Some("bodies") => bodies(&args[1..]),
        Some("summary") => summary(&args[1..]),
        Some("get") => get(&args[1..]),
        Some("wait-step") => wait_step(&args[1..]),
        _ => {
            eprintln!("usage: bench_prep enroll|bodies|summary …");
            std::process::exit(2);
        }
    }
}
