//! `cargo xtask`: build and test automation for the Pooya workspace.
//!
//! - `cargo xtask test`: what CI runs. Installs what a fresh machine lacks,
//!   (Debian's Chromium and ChromeDriver, cargo-fuzz, the Kotlin compiler),
//!   then formatting, clippy, the workspace tests (the browser test among
//!   them), the fuzz target, the Kotlin binding tests and the Swift binding
//!   generation.
//! - `cargo xtask fuzz [SECONDS]`: runs the parser fuzz target.
//! - `cargo xtask kotlin`: builds the cdylib, generates the Kotlin and Swift
//!   bindings and runs the Kotlin tests on the JVM.
//! - `cargo xtask kotlin-bench`: the Kotlin → Rust call benchmark.
//! - `cargo xtask schemathesis`: the HTTP APIs held to their OpenAPI
//!   contracts by schemathesis against live servers (also run by `test`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod kotlin;
mod schemathesis;

/// Where the workspace is and where tools are installed.
pub struct Context {
    /// The workspace root.
    pub root: PathBuf,
    /// `.tools/` under the root (gitignored): locally installed tools.
    pub tools: PathBuf,
}

impl Context {
    fn new() -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("xtask has no parent directory")?
            .to_path_buf();
        let tools = root.join(".tools");
        Ok(Self { root, tools })
    }

    /// A command run from the workspace root with `.tools/cargo/bin` on
    /// the PATH.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.root);
        let path = env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.tools.join("cargo/bin")];
        paths.extend(env::split_paths(&path));
        if let Ok(joined) = env::join_paths(paths) {
            c.env("PATH", joined);
        }
        // Python packages the tests use (pyotp), installed by
        // `ensure_python_packages` into .tools/python.
        let py = env::var_os("PYTHONPATH").unwrap_or_default();
        let mut py_paths = vec![self.tools.join("python")];
        py_paths.extend(env::split_paths(&py));
        if let Ok(joined) = env::join_paths(py_paths) {
            c.env("PYTHONPATH", joined);
        }
        c
    }
}

/// Runs a command, failing with its description when it fails.
pub fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("\n==> {what}");
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    eprintln!("<== {what}: {:.1}s", start.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Whether a program answers `--version`.
pub fn have(ctx: &Context, program: &str) -> bool {
    ctx.cmd(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian packages that are missing (CI runs as root on a fresh
/// machine; a developer's machine may already have them).
pub fn apt_install(ctx: &Context, packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run("apt-get update", ctx.cmd("apt-get").arg("update").arg("-q"))?;
    run(
        &format!("apt-get install {}", missing.join(" ")),
        ctx.cmd("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn ensure_cargo_fuzz(ctx: &Context) -> Result<(), String> {
    if ctx.tools.join("cargo/bin/cargo-fuzz").exists() {
        return Ok(());
    }
    run(
        "install cargo-fuzz",
        ctx.cmd("cargo")
            .args([
                "install",
                "cargo-fuzz",
                "--version",
                "0.13.2",
                "--locked",
                "--root",
            ])
            .arg(ctx.tools.join("cargo")),
    )
}

fn fuzz(ctx: &Context, seconds: u32) -> Result<(), String> {
    ensure_cargo_fuzz(ctx)?;
    // `-s none`: the stable toolchain cannot build sanitizers; coverage
    // guidance still works.
    let mut c = ctx.cmd("cargo");
    c.current_dir(ctx.root.join("fuzz"));
    c.args(["fuzz", "run", "-s", "none", "parsers", "--"]);
    c.arg(format!("-max_total_time={seconds}"));
    run(&format!("fuzz parsers for {seconds}s"), &mut c)
}

/// Debian packages the tests need: Chromium and ChromeDriver for the
/// payment-page browser test; PostgreSQL (initdb, pg_ctl, psql) for the
/// issuer's PostgreSQL tests, which start throwaway clusters of their own
/// through pooya-testpg (Debian's default cluster is not used); SoftHSM2
/// for the PKCS#11 key provider's tests, which make tokens in their own
/// directories; Kannel (bearerbox, smsbox) and kannel-extras (fakesmsc)
/// for the SMS gateway tests, which start their own boxes on ephemeral
/// ports (Debian's kannel service is not used).
const APT_PACKAGES: &[&str] = &[
    "chromium",
    "chromium-driver",
    "postgresql",
    "softhsm2",
    "kannel",
    "kannel-extras",
    // libfaketime: the CLI's wrong-phone-clock test (cli/tests/time.rs).
    "faketime",
];

/// PyPI packages the tests use: pyotp, the independent TOTP/HOTP
/// implementation the OTP accounts are cross-checked against
/// (protocol/tests/otpauth_pyotp.rs). Installed into `.tools/python`, on
/// the `PYTHONPATH` of every command the xtask runs.
const PYTHON_PACKAGES: &[&str] = &["pyotp==2.12.1"];

fn ensure_python_packages(ctx: &Context) -> Result<(), String> {
    let have = ctx
        .cmd("python3")
        .args(["-c", "import pyotp"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    run(
        &format!("pip install {}", PYTHON_PACKAGES.join(" ")),
        ctx.cmd("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(ctx.tools.join("python"))
            .args(PYTHON_PACKAGES),
    )
}

fn test(ctx: &Context) -> Result<(), String> {
    apt_install(ctx, APT_PACKAGES)?;
    ensure_python_packages(ctx)?;
    run(
        "cargo fmt --check",
        ctx.cmd("cargo").args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo fmt --check (fuzz)",
        ctx.cmd("cargo")
            .args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]),
    )?;
    run(
        "cargo clippy",
        ctx.cmd("cargo").args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run("cargo test", ctx.cmd("cargo").args(["test", "--workspace"]))?;
    // The issuer's HTTP acceptance suites once more on PostgreSQL (a
    // throwaway cluster the tests start; docs/issuer.md, "Testing against
    // PostgreSQL").
    run(
        "cargo test (issuer on PostgreSQL)",
        ctx.cmd("cargo")
            .args([
                "test",
                "-p",
                "pooya-issuer",
                "--test",
                "api",
                "--test",
                "otp",
                "--test",
                "rules",
                "--test",
                "merchants",
            ])
            .env("POOYA_TEST_BACKEND", "postgres"),
    )?;
    run(
        "cargo test (phone end to end on PostgreSQL)",
        ctx.cmd("cargo")
            .args(["test", "-p", "pooya-e2e"])
            .env("POOYA_TEST_BACKEND", "postgres"),
    )?;
    fuzz(ctx, 15)?;
    // The OpenAPI contracts, held by schemathesis (issue 14, item 3).
    schemathesis::run(ctx)?;
    kotlin::run(ctx)?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&ctx),
        Some("kotlin") => kotlin::run(&ctx),
        Some("kotlin-bench") => kotlin::bench(&ctx),
        Some("schemathesis") => schemathesis::run(&ctx),
        Some("fuzz") => {
            let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
            fuzz(&ctx, secs)
        }
        _ => Err(
            "usage: cargo xtask test | fuzz [SECONDS] | kotlin | kotlin-bench | schemathesis"
                .into(),
        ),
    };
    match result {
        Ok(()) => {
            eprintln!("\nxtask: all passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}
