//! Crash safety: a child process (this test binary, re-executed) adds
//! cards, changes the password or counts wrong passwords on a real vault
//! file, and is killed with SIGKILL at a random moment. After every kill
//! the parent opens the vault, runs `PRAGMA integrity_check`, and checks
//! the state is the one before the interrupted operation or the one after
//! it, never lost or mixed.
//!
//! 220 kills in a normal run; `POOYA_LONG=1` multiplies them by 10.
//! `POOYA_CRASH_SEED=<n>` replays a run. Runs only on Unix (SIGKILL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Rng, T0, label, long_run, new_card, seed};
use pooya_core::testing::{FakeBiometricGate, ManualClock};
use pooya_core::{CoreError, KdfParams, KeyFileKeystore, Vault, VaultConfig};

const BIO_KEY: [u8; 32] = [0x3c; 32];

fn password(generation: u64) -> String {
    format!("crash-pass-{generation}-q")
}

fn vault(path: &Path, now: u64) -> Vault {
    Vault::open(
        path,
        Arc::new(KeyFileKeystore::beside(path)),
        Some(Arc::new(FakeBiometricGate::with_key(BIO_KEY))),
        Arc::new(ManualClock::new(now)),
        VaultConfig::with_kdf(KdfParams::FLOOR),
    )
    .unwrap()
}

// ---- the child ------------------------------------------------------------

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn child(mode: &str) {
    let path = PathBuf::from(std::env::var("POOYA_CRASH_PATH").unwrap());
    let generation: u64 = std::env::var("POOYA_CRASH_GEN").unwrap().parse().unwrap();
    let mut v = vault(&path, T0);
    match mode {
        "add" => {
            v.unlock_with_biometrics().unwrap();
            let start = v.status().unwrap().card_count;
            say(&format!("ready {start}"));
            for i in start..start + 100_000 {
                say(&format!("adding {i}"));
                v.add_card(&new_card(i)).unwrap();
                say(&format!("added {i}"));
            }
        }
        "password" => {
            // A password change drops the biometric slot (it wraps the
            // rotated data key), so only the password opens it here.
            v.unlock_with_password(&password(generation)).unwrap();
            say("ready");
            for g in generation..generation + 100_000 {
                say(&format!("changing {g}"));
                v.change_password(&password(g), &password(g + 1)).unwrap();
                say(&format!("changed {}", g + 1));
            }
        }
        "attempts" => {
            let f = v.status().unwrap().failed_attempts;
            assert_eq!(f, 0);
            say("ready");
            for _ in 0..100_000 {
                for k in 0..4 {
                    say(&format!("wrong {k}"));
                    let e = v.unlock_with_password("not-the-password").unwrap_err();
                    assert!(matches!(e, CoreError::WrongPassword { .. }), "{e:?}");
                    say(&format!("failed {}", k + 1));
                }
                say("right 4");
                v.unlock_with_password(&password(generation)).unwrap();
                say("reset");
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

// ---- the parent -----------------------------------------------------------

/// Runs one child in `mode`, kills it `delay_ms` after it reported ready,
/// and returns the lines it wrote.
fn run_and_kill(path: &Path, mode: &str, generation: u64, delay_ms: u64) -> Vec<String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("POOYA_CRASH_CHILD", mode)
        .env("POOYA_CRASH_PATH", path)
        .env("POOYA_CRASH_GEN", generation.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let first = rx.recv_timeout(Duration::from_secs(30));
    match first {
        Ok(l) if l.starts_with("ready") => lines.push(l),
        other => {
            let _ = child.kill();
            panic!("child did not get ready: {other:?}");
        }
    }
    std::thread::sleep(Duration::from_millis(delay_ms));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child ended before the kill: {status:?}, last lines {:?}",
            &lines[lines.len().saturating_sub(3)..]
        );
    }
    lines
}

fn last_number(lines: &[String], prefix: &str) -> Option<u64> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(prefix).map(|n| n.trim().parse().unwrap()))
}

#[derive(Default)]
struct Stats {
    kills: u32,
    in_flight: u32,
    new_state_in_flight: u32,
}

fn check_add(path: &Path, lines: &[String], rng: &mut Rng, stats: &mut Stats) {
    let start = last_number(&lines[..1], "ready ").unwrap();
    let done = last_number(lines, "added ").map_or(start, |i| i + 1);
    let in_flight = lines.last().is_some_and(|l| l.starts_with("adding"));
    let mut v = vault(path, T0);
    v.integrity_check().unwrap();
    v.unlock_with_biometrics().unwrap();
    let cards = v.cards().unwrap();
    let n = cards.len() as u64;
    assert!(
        n == done || (in_flight && n == done + 1),
        "{n} cards after {done} confirmed adds (in flight: {in_flight})"
    );
    stats.in_flight += u32::from(in_flight);
    stats.new_state_in_flight += u32::from(in_flight && n == done + 1);
    let mut last_id = 0;
    for (k, c) in cards.iter().enumerate() {
        assert_eq!(c.label, label(k as u32));
        assert!(c.id > last_id);
        last_id = c.id;
    }
    let mut check_seed = |k: u64| {
        let c = &cards[k as usize];
        assert_eq!(v.card_secret(c.id).unwrap().seed, seed(k as u32));
    };
    if n > 0 {
        check_seed(n - 1);
        check_seed(rng.below(n));
    }
}

/// Returns the password generation now in force.
fn check_password(path: &Path, lines: &[String], generation: u64, stats: &mut Stats) -> u64 {
    let confirmed = last_number(lines, "changed ").unwrap_or(generation);
    let in_flight = lines.last().is_some_and(|l| l.starts_with("changing"));
    let mut v = vault(path, T0);
    v.integrity_check().unwrap();
    assert!(v.status().unwrap().failed_attempts <= 1);
    let now = match v.unlock_with_password(&password(confirmed)) {
        Ok(()) => {
            // Not mixed: the next password does not open it.
            v.lock();
            assert!(matches!(
                v.unlock_with_password(&password(confirmed + 1)),
                Err(CoreError::WrongPassword { .. })
            ));
            // Reset the counter for the next child.
            v.unlock_with_password(&password(confirmed)).unwrap();
            confirmed
        }
        Err(CoreError::WrongPassword { .. }) if in_flight => {
            v.unlock_with_password(&password(confirmed + 1)).unwrap();
            stats.new_state_in_flight += 1;
            confirmed + 1
        }
        Err(e) => panic!("generation {confirmed} does not unlock: {e:?}"),
    };
    stats.in_flight += u32::from(in_flight);
    // The data key was rotated all or nothing: every card opens under the
    // key the password slot holds, and the biometric slot (which wraps
    // the first key) is gone once any change committed.
    assert_eq!(v.status().unwrap().biometric_enabled, now == 0);
    for (k, c) in v.cards().unwrap().iter().enumerate().take(3) {
        assert_eq!(c.label, label(k as u32));
    }
    now
}

fn check_attempts(path: &Path, lines: &[String], generation: u64, stats: &mut Stats) {
    let f = vault(path, T0).status().unwrap().failed_attempts;
    let last = lines.last().unwrap();
    let allowed: Vec<u32> = if let Some(k) = last.strip_prefix("wrong ") {
        let k: u32 = k.parse().unwrap();
        stats.in_flight += 1;
        stats.new_state_in_flight += u32::from(f == k + 1);
        vec![k, k + 1]
    } else if let Some(k) = last.strip_prefix("failed ") {
        vec![k.parse().unwrap()]
    } else if last == "right 4" {
        stats.in_flight += 1;
        stats.new_state_in_flight += u32::from(f != 4);
        vec![4, 5, 0]
    } else {
        vec![0]
    };
    assert!(
        allowed.contains(&f),
        "{f} failures after {last:?} (allowed {allowed:?})"
    );
    // Reset the counter from a clock past any delay.
    let mut v = vault(path, T0 + 10 * 86_400);
    v.integrity_check().unwrap();
    v.unlock_with_password(&password(generation)).unwrap();
    assert_eq!(v.status().unwrap().failed_attempts, 0);
}

fn parent() {
    let factor = if long_run() { 10 } else { 1 };
    let mut rng = Rng::from_env("POOYA_CRASH_SEED");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    {
        let mut v = Vault::create(
            &path,
            &password(0),
            Arc::new(KeyFileKeystore::beside(&path)),
            Some(Arc::new(FakeBiometricGate::with_key(BIO_KEY))),
            Arc::new(ManualClock::new(T0)),
            VaultConfig::with_kdf(KdfParams::FLOOR),
        )
        .unwrap();
        v.enable_biometrics(&password(0)).unwrap();
    }
    let started = Instant::now();
    let mut generation = 0;
    let phases: [(&str, u32, u64); 3] = [
        ("add", 120, 25),
        ("password", 50, 120),
        ("attempts", 50, 250),
    ];
    for (mode, kills, max_delay_ms) in phases {
        let mut stats = Stats::default();
        for _ in 0..kills * factor {
            let delay = rng.below(max_delay_ms + 1);
            let lines = run_and_kill(&path, mode, generation, delay);
            stats.kills += 1;
            match mode {
                "add" => check_add(&path, &lines, &mut rng, &mut stats),
                "password" => {
                    generation = check_password(&path, &lines, generation, &mut stats);
                }
                _ => check_attempts(&path, &lines, generation, &mut stats),
            }
        }
        println!(
            "crash test: {mode}: {} kills, {} during an operation, {} of those after its commit",
            stats.kills, stats.in_flight, stats.new_state_in_flight
        );
        assert!(
            stats.in_flight * 2 >= stats.kills,
            "most kills must land during an operation"
        );
    }
    println!("crash test: ok in {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    if !cfg!(unix) {
        println!("crash test: SIGKILL needs Unix; skipped");
        return;
    }
    match std::env::var("POOYA_CRASH_CHILD") {
        Ok(mode) => child(&mode),
        Err(_) => parent(),
    }
}
