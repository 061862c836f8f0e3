//! Issue 10, item 9: no command panics when its standard output is a
//! closed pipe (`pooya pin first 0001 | head -c1`): a write that fails
//! with `BrokenPipe` ends the command quietly, with exit status 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pooya_issuer::{InitOptions, ServerConfig};
use pooya_protocol::ids;
use serde_json::{Value, json};

const PHONE: &str = "09121234567";
const PW_LINE: &str = "pipe password 1379\n";

/// Runs `pooya ARGS` with its standard output a pipe whose reading end
/// is closed before the command writes anything.
fn with_closed_stdout(vault: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pooya"))
        .arg("--vault")
        .arg(vault)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            // The child may already be gone (a write error here is fine).
            let _ = input.write_all(s.as_bytes());
        }
    }
    child.wait_with_output().unwrap()
}

fn quiet(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "{what} panicked on a closed pipe: {stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
    assert!(stderr.is_empty(), "{what} wrote to stderr: {stderr}");
}

/// Runs `pooya` normally and returns its standard output.
fn run(vault: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pooya"))
        .arg("--vault")
        .arg(vault)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn commands_without_a_vault_survive_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &[
            "oath",
            "hotp",
            "--key",
            "3132333435363738393031323334353637383930",
            "--counter",
            "1",
        ],
    ] {
        quiet(&with_closed_stdout(&v, args, None), &format!("{args:?}"));
    }
}

#[test]
fn pin_first_into_a_closed_pipe_does_not_panic() {
    // A vault with one card activated at a bank on 127.0.0.1.
    let bank_dir = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(bank_dir.path(), &InitOptions::default()).unwrap();
    let server = pooya_issuer::spawn_on_thread(ServerConfig::new(bank_dir.path())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    let pw = Some(PW_LINE);
    run(
        &v,
        &[
            "init",
            "--phone",
            PHONE,
            "--kdf",
            "floor",
            "--password-stdin",
        ],
        pw,
    );
    let url = server.base_url();
    let key = server.issuer_public_key().to_owned();
    let akey = server.activation_public_key().to_owned();
    run(
        &v,
        &[
            "issuer",
            "add",
            "bank",
            "--url",
            &url,
            "--public-key",
            &key,
            "--activation-key",
            &akey,
            "--password-stdin",
        ],
        pw,
    );
    let payload = "610433000000042";
    let pan = format!("{payload}{}", ids::luhn_check_digit(payload));
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = http
        .post(format!("{url}/v1/enrollments"))
        .header(
            "Authorization",
            format!("Bearer {}", init.tokens.atm.expose_secret()),
        )
        .send_json(json!({"pan": pan, "phone": PHONE, "channel": "app"}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let sms = pooya_issuer::read_outbox(bank_dir.path(), Some(PHONE)).unwrap();
    let code = pooya_issuer::messages::find_activation_code(&sms.last().unwrap().body).unwrap();
    let added: Value = serde_json::from_str(&run(
        &v,
        &["card", "add", &code, "--json", "--password-stdin"],
        pw,
    ))
    .unwrap();
    let last4 = &pan[pan.len() - 4..];
    assert_eq!(added["last4"], last4, "{added}");

    for args in [
        &["pin", "first", last4, "--password-stdin"][..],
        &["pin", "first", last4, "--json", "--password-stdin"],
        &["card", "list", "--password-stdin"],
        &["status"],
    ] {
        quiet(&with_closed_stdout(&v, args, pw), &format!("{args:?}"));
    }
}
