//! `cargo xtask schemathesis` (and a step of `cargo xtask test`): the
//! HTTP APIs held to their OpenAPI contracts by schemathesis (PyPI),
//! against live servers on 127.0.0.1 (docs/issuer.md, "The OpenAPI
//! contract").
//!
//! [`hold_to_contract`] runs schemathesis over one target, once per role's
//! token and once without a token; each target (the issuer, and Harim in
//! front of a seeded issuer) is a small block in [`run`] that starts its
//! servers, seeds them and calls it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Context, run as run_step};

/// The pinned schemathesis, installed into `.tools/python`.
pub const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Test cases per operation and phase (with 2 workers): bounds the run.
const MAX_EXAMPLES: u32 = 25;

/// The checks: every one schemathesis has, but `positive_data_acceptance`
/// (a schema cannot say which card numbers pass Luhn, which codes are
/// right or which payees are registered, so a schema-valid request is
/// legitimately refused with a documented 4xx).
const EXCLUDED_CHECKS: &str = "positive_data_acceptance";

/// A server to hold to its contract: its name, where it listens, where
/// its document is, and each role's token.
pub struct Target {
    /// Shown in the output (`issuer`, `harim`).
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The served document (`{base_url}/openapi.json`).
    pub spec_url: String,
    /// `(role, bearer token)`; the run without a token is added.
    pub tokens: Vec<(String, String)>,
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("pooya-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether schemathesis imports, and installs the pinned one if not.
pub fn ensure(ctx: &Context) -> Result<(), String> {
    let have = ctx
        .cmd("python3")
        .args(["-c", "import schemathesis"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    run_step(
        &format!("pip install {SCHEMATHESIS}"),
        ctx.cmd("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(ctx.tools.join("python"))
            .arg(SCHEMATHESIS),
    )
}

/// Every target, one after the other.
pub fn run(ctx: &Context) -> Result<(), String> {
    ensure(ctx)?;
    let mut totals = Vec::new();
    // ---- the issuer ------------------------------------------------------
    {
        let dir = TempDir::new("schemathesis-issuer")?;
        let (server, target) = start_issuer(ctx, &dir.0)?;
        let cases = hold_to_contract(ctx, &target, &dir.0)?;
        drop(server);
        totals.push((target.name.clone(), cases));
    }
    // ---- end of the issuer -------------------------------------------------
    // ---- Harim, in front of a live issuer ----------------------------------
    {
        let dir = TempDir::new("schemathesis-harim")?;
        let (issuer, issuer_target) = start_issuer(ctx, &dir.0)?;
        let (server, target) = start_harim(ctx, &dir.0, &issuer_target)?;
        let cases = hold_to_contract(ctx, &target, &dir.0)?;
        drop(server);
        drop(issuer);
        totals.push((target.name.clone(), cases));
    }
    // ---- end of Harim --------------------------------------------------------
    for (name, cases) in &totals {
        eprintln!("schemathesis: {name}: {cases} test cases, all passed");
    }
    Ok(())
}

/// The target directory cargo builds into.
fn target_dir(ctx: &Context) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.root.join("target"))
}

/// Builds and starts `pooya-issuer` (SQLite in `dir`, 127.0.0.1, an
/// ephemeral port, the development SMS recorder), seeded with an
/// enrolled card of each channel and a registered merchant.
fn start_issuer(ctx: &Context, dir: &Path) -> Result<(Killed, Target), String> {
    run_step(
        "cargo build -p pooya-issuer --bin pooya-issuer",
        ctx.cmd("cargo")
            .args(["build", "-p", "pooya-issuer", "--bin", "pooya-issuer"]),
    )?;
    let bin = target_dir(ctx).join("debug/pooya-issuer");
    let data = dir.join("data");
    let out = Command::new(&bin)
        .args(["init", "--json", "--data"])
        .arg(&data)
        .output()
        .map_err(|e| format!("pooya-issuer init: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pooya-issuer init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let init: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("pooya-issuer init --json: {e}"))?;
    let settings = dir.join("settings.json");
    std::fs::write(&settings, r#"{"sms": {"sender": "dev_recorder"}}"#)
        .map_err(|e| format!("{}: {e}", settings.display()))?;
    let log = std::fs::File::create(dir.join("issuer.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&settings)
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("pooya-issuer serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("pooya-issuer serve: no stdout")?;
    let server = Killed(child);
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    stdout
        .read_line(&mut line)
        .map_err(|e| format!("pooya-issuer serve: {e}"))?;
    // The rest of its output (the keys it prints) is read and dropped: a
    // closed pipe would stop the server at its next line.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("pooya-issuer serve said {line:?}"))?
        .to_owned();
    let base_url = format!("http://{addr}");
    let token = |role: &str| -> Result<String, String> {
        init["tokens"][role]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("pooya-issuer init --json: no {role} token"))
    };
    let tokens: Vec<(String, String)> = ["atm", "gateway", "sms", "ops"]
        .into_iter()
        .map(|r| token(r).map(|t| (r.to_owned(), t)))
        .collect::<Result<_, _>>()?;
    seed_issuer(&base_url, &tokens)?;
    let target = Target {
        name: "issuer".into(),
        spec_url: format!("{base_url}/openapi.json"),
        base_url,
        tokens,
    };
    Ok((server, target))
}

/// Harim's tokens in the fuzzed run (given through its environment).
const HARIM_TOKENS: [(&str, &str, &str); 3] = [
    ("gateway", "HARIM_GATEWAY", "schemathesis-gateway-token-01"),
    ("admin", "HARIM_ADMIN", "schemathesis-admin-token-0001"),
    ("ops", "HARIM_OPS", "schemathesis-ops-token-000001"),
];

/// Builds and starts `pooya-harim` (127.0.0.1, an ephemeral port) routing
/// the seed cards' BIN to `issuer` with its gateway token, and one more
/// BIN to a closed port (so `issuer_unavailable` is among the answers).
fn start_harim(ctx: &Context, dir: &Path, issuer: &Target) -> Result<(Killed, Target), String> {
    run_step(
        "cargo build -p pooya-harim --bin pooya-harim",
        ctx.cmd("cargo")
            .args(["build", "-p", "pooya-harim", "--bin", "pooya-harim"]),
    )?;
    let bin = target_dir(ctx).join("debug/pooya-harim");
    let gateway = issuer
        .tokens
        .iter()
        .find(|(r, _)| r == "gateway")
        .map(|(_, t)| t.clone())
        .ok_or("the issuer has no gateway token")?;
    // A port nothing listens on: bound, read, released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a free port: {e}"))?;
    let settings = serde_json::json!({
        "listen": "127.0.0.1:0",
        "admin_token": {"env": "HARIM_ADMIN"},
        "ops_token": {"env": "HARIM_OPS"},
        "gateways": [{"name": "fuzz", "token": {"env": "HARIM_GATEWAY"},
                      "rate_per_sec": 100000, "burst": 1000000}],
        "issuers": [
            {"name": "seeded", "base_url": issuer.base_url, "bins": ["610433"],
             "token": {"env": "HARIM_ISSUER"}},
            {"name": "down", "base_url": format!("http://{closed}"), "bins": ["603799"],
             "token": {"env": "HARIM_ISSUER"}, "timeout_ms": 500},
        ],
    });
    let path = dir.join("harim.json");
    std::fs::write(&path, settings.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    let log = std::fs::File::create(dir.join("harim.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--config"])
        .arg(&path)
        .env("HARIM_ISSUER", &gateway)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    for (_, var, token) in HARIM_TOKENS {
        cmd.env(var, token);
    }
    let mut child = cmd.spawn().map_err(|e| format!("pooya-harim serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("pooya-harim serve: no stdout")?;
    let server = Killed(child);
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    stdout
        .read_line(&mut line)
        .map_err(|e| format!("pooya-harim serve: {e}"))?;
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("pooya-harim serve said {line:?}"))?
        .to_owned();
    let base_url = format!("http://{addr}");
    Ok((
        server,
        Target {
            name: "harim".into(),
            spec_url: format!("{base_url}/openapi.json"),
            base_url,
            tokens: HARIM_TOKENS
                .iter()
                .map(|(role, _, t)| ((*role).to_owned(), (*t).to_owned()))
                .collect(),
        },
    ))
}

/// The seed card numbers: test BIN 610433, Luhn-valid.
pub const SEED_PANS: [&str; 2] = ["6104337700000001", "6104337700000019"];
/// The seed customer's phone.
const SEED_PHONE: &str = "09121234567";
/// The seed merchant's payee id.
const SEED_PAYEE: &str = "shop-1";

/// An enrolled card (the app), one on the SMS version, a merchant: so
/// generated requests reach the code past the lookups.
fn seed_issuer(base: &str, tokens: &[(String, String)]) -> Result<(), String> {
    let bearer = |role: &str| {
        tokens
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, t)| format!("Bearer {t}"))
            .unwrap_or_default()
    };
    let agent = ureq::Agent::new_with_defaults();
    let send = |method: &str, path: &str, role: &str, body: serde_json::Value| {
        let url = format!("{base}{path}");
        let answer = match method {
            "PUT" => agent
                .put(&url)
                .header("Authorization", &bearer(role))
                .send_json(&body),
            _ => agent
                .post(&url)
                .header("Authorization", &bearer(role))
                .send_json(&body),
        };
        answer
            .map(|_| ())
            .map_err(|e| format!("seeding the issuer: {method} {path}: {e}"))
    };
    send(
        "POST",
        "/v1/enrollments",
        "atm",
        serde_json::json!({"pan": SEED_PANS[0], "phone": SEED_PHONE, "channel": "app"}),
    )?;
    send(
        "POST",
        "/v1/enrollments",
        "atm",
        serde_json::json!({"pan": SEED_PANS[1], "phone": SEED_PHONE, "channel": "sms"}),
    )?;
    send(
        "PUT",
        &format!("/v1/merchants/{SEED_PAYEE}"),
        "ops",
        serde_json::json!({"name": "Seed shop"}),
    )?;
    Ok(())
}

/// Runs schemathesis over every operation of `target`: once per role's
/// token and once without one, generated and mutated inputs (every phase),
/// every check but [`EXCLUDED_CHECKS`]. Returns the number of test cases
/// run; fails when schemathesis finds anything.
pub fn hold_to_contract(ctx: &Context, target: &Target, work: &Path) -> Result<u64, String> {
    let mut total = 0;
    let mut runs: Vec<(String, Option<String>)> = target
        .tokens
        .iter()
        .map(|(r, t)| (r.clone(), Some(t.clone())))
        .collect();
    runs.push(("no token".into(), None));
    for (who, token) in runs {
        let report = work.join(format!("report-{}", who.replace(' ', "-")));
        let mut c = ctx.cmd("python3");
        c.args(["-m", "schemathesis.cli", "run"])
            .arg(&target.spec_url)
            .args(["--url", &target.base_url])
            .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
            .args(["--max-examples", &MAX_EXAMPLES.to_string()])
            .args(["--workers", "2", "--seed", "14"])
            .args(["--request-timeout", "10", "--no-color"])
            .args(["--report", "junit", "--report-dir"])
            .arg(&report)
            .stdin(Stdio::null());
        if let Some(t) = &token {
            c.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let started = Instant::now();
        let what = format!("schemathesis: {} as {who}", target.name);
        eprintln!("\n==> {what}");
        c.stdout(Stdio::piped());
        let mut child = c
            .spawn()
            .map_err(|e| format!("{what}: cannot start: {e}"))?;
        let out = child.stdout.take().ok_or("schemathesis: no stdout")?;
        let mut cases = 0;
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("{what}: {e}"))?;
            eprintln!("{line}");
            if let Some(n) = generated(&line) {
                cases = n;
            }
        }
        let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
        eprintln!(
            "<== {what}: {cases} test cases in {:.0?}",
            Duration::from_secs(started.elapsed().as_secs())
        );
        total += cases;
        if !status.success() {
            return Err(format!(
                "{what} failed ({status}); its reports are in {}",
                report.display()
            ));
        }
    }
    Ok(total)
}

/// The `N` of schemathesis's summary line `N generated, …`.
fn generated(line: &str) -> Option<u64> {
    let (before, _) = line.split_once(" generated")?;
    before.split_whitespace().last()?.parse().ok()
}
