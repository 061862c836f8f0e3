//! `pooya account …` driven as a subprocess: add an otpauth:// URI (from
//! standard input) and a Google Authenticator export, list, codes that
//! pyotp (PyPI `pyotp`, an independent implementation) agrees with,
//! rename, remove, and an export that carries the standard accounts and
//! never a bank card's seed (a card activated at a real issuer on
//! 127.0.0.1). Fails, rather than skipping, without python3 and pyotp.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use pooya_core::hooks::SystemClock;
use pooya_core::{KeyFileKeystore, Vault, VaultConfig};
use pooya_issuer::{BackgroundServer, InitOptions, InitOutput, ServerConfig};
use pooya_protocol::otpauth::encode_migration_payload;
use pooya_protocol::{HashAlgorithm, OtpAccount, OtpKind, SecretBytes, ids};
use serde_json::{Value, json};

const PHONE: &str = "09121234567";
const PASSWORD: &str = "test password 1379";
/// The RFC 4226 Appendix D secret, base32.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn pooya(vault: &Path, args: &[&str], stdin: Option<&str>) -> Output {
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
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn ok_json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// The stable code of a failed `--json` command.
fn error_code(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

fn pw() -> Option<&'static str> {
    Some("test password 1379\n")
}

fn new_vault(dir: &tempfile::TempDir) -> PathBuf {
    let v = dir.path().join("vault.db");
    ok(&pooya(
        &v,
        &[
            "init",
            "--phone",
            PHONE,
            "--kdf",
            "floor",
            "--password-stdin",
        ],
        pw(),
    ));
    v
}

/// pyotp's code for `uri` at `factor` (Unix time for TOTP, the counter
/// for HOTP: pyotp counts from the URI's `counter`).
fn pyotp(uri: &str, factor: u64) -> String {
    let script = "import sys, pyotp\n\
        o = pyotp.parse_uri(sys.argv[1])\n\
        n = int(sys.argv[2])\n\
        print(o.at(n) if isinstance(o, pyotp.TOTP) else o.at(n - o.initial_count))\n";
    let out = Command::new("python3")
        .args(["-c", script, uri, &factor.to_string()])
        .output()
        .expect("python3 must be installed for this test");
    assert!(
        out.status.success(),
        "pyotp failed (install it: python3 -m pip install pyotp): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A Google Authenticator export of `accounts`.
fn migration_uri(accounts: &[OtpAccount]) -> String {
    let data = base64::engine::general_purpose::STANDARD
        .encode(encode_migration_payload(accounts).unwrap());
    format!(
        "otpauth-migration://offline?data={}",
        data.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    )
}

#[test]
fn add_list_code_rename_remove() {
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(&dir);
    let totp_uri = format!("otpauth://totp/GitHub:alice?secret={RFC_SECRET}&issuer=GitHub");

    // A bad URI is refused before the password is read (no stdin).
    let bad = pooya(
        &v,
        &[
            "account",
            "add",
            "otpauth://totp/x?secret=GEZDGNBV1",
            "--json",
        ],
        None,
    );
    assert_eq!(error_code(&bad), "invalid_input");
    // `-` with nothing on standard input.
    let empty = pooya(&v, &["account", "add", "-", "--json"], None);
    assert_eq!(error_code(&empty), "usage");

    // From standard input: the URI line, then the password line.
    let added = ok_json(&pooya(
        &v,
        &["account", "add", "-", "--json", "--password-stdin"],
        Some(&format!("{totp_uri}\n{PASSWORD}\n")),
    ));
    assert_eq!(added.as_array().unwrap().len(), 1);
    assert_eq!(added[0]["issuer"], "GitHub");
    assert_eq!(added[0]["name"], "alice");
    assert_eq!(added[0]["kind"], "totp");
    assert_eq!(added[0]["period"], 30);

    // A migration export: two accounts at once.
    let exported_accounts = [
        OtpAccount {
            kind: OtpKind::Totp { period: 30 },
            issuer: "Example".into(),
            name: "bob@example.com".into(),
            algorithm: HashAlgorithm::Sha256,
            digits: 8,
            secret: SecretBytes::new((0u8..32).map(|i| i.wrapping_mul(37) ^ 0xa5).collect()),
        },
        OtpAccount {
            kind: OtpKind::Hotp { counter: 7 },
            issuer: String::new(),
            name: "carol".into(),
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            secret: SecretBytes::new(b"12345678901234567890".to_vec()),
        },
    ];
    let two = ok_json(&pooya(
        &v,
        &[
            "account",
            "add",
            &migration_uri(&exported_accounts),
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert_eq!(two[1]["kind"], "hotp");
    assert_eq!(two[1]["counter"], 7);

    let list = ok_json(&pooya(
        &v,
        &["account", "list", "--json", "--password-stdin"],
        pw(),
    ));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob@example.com", "carol"]);
    assert_eq!(list[1]["algorithm"], "SHA256");
    assert_eq!(list[1]["digits"], 8);
    let text = ok(&pooya(&v, &["account", "list", "--password-stdin"], pw()));
    assert!(text.contains("GitHub:alice"), "{text}");
    assert!(!text.contains(RFC_SECRET), "{text}");

    // TOTP codes, by `issuer:name` and by id, agree with pyotp at the time
    // they were made (valid_until - seconds_left).
    let uris = [totp_uri.clone(), exported_accounts[0].to_uri().to_string()];
    for (selector, uri) in [("GitHub:alice", &uris[0]), ("2", &uris[1])] {
        let c = ok_json(&pooya(
            &v,
            &["account", "code", selector, "--json", "--password-stdin"],
            pw(),
        ));
        let left = c["seconds_left"].as_u64().unwrap();
        let until = c["valid_until"].as_u64().unwrap();
        assert!((1..=30).contains(&left), "{c}");
        assert_eq!(
            c["code"].as_str().unwrap(),
            pyotp(uri, until - left),
            "{selector}"
        );
    }
    let plain = ok(&pooya(
        &v,
        &["account", "code", "alice", "--password-stdin"],
        pw(),
    ));
    let mut lines = plain.lines();
    let code = lines.next().unwrap();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    assert!(lines.next().unwrap().ends_with(" s left"), "{plain}");

    // HOTP: each code moves the counter on (RFC 4226 §7.2).
    let hotp_uri = exported_accounts[1].to_uri().to_string();
    for counter in [7u64, 8] {
        let c = ok_json(&pooya(
            &v,
            &["account", "code", "carol", "--json", "--password-stdin"],
            pw(),
        ));
        assert_eq!(c["counter"], counter);
        assert_eq!(c["seconds_left"], Value::Null);
        assert_eq!(c["code"].as_str().unwrap(), pyotp(&hotp_uri, counter));
    }

    // Rename, then the old name is gone.
    let renamed = ok_json(&pooya(
        &v,
        &[
            "account",
            "rename",
            "carol",
            "carol@work",
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(renamed["name"], "carol@work");
    assert_eq!(renamed["id"], 3);
    let gone = pooya(
        &v,
        &["account", "code", "carol", "--json", "--password-stdin"],
        pw(),
    );
    assert_eq!(error_code(&gone), "account_not_found");

    // A wrong password removes nothing.
    let wrong = pooya(
        &v,
        &["account", "remove", "3", "--json", "--password-stdin"],
        Some("not the password\n"),
    );
    assert_eq!(error_code(&wrong), "wrong_password");
    let removed = ok_json(&pooya(
        &v,
        &[
            "account",
            "remove",
            "carol@work",
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(removed, json!({"removed": 3}));
    let list = ok_json(&pooya(
        &v,
        &["account", "list", "--json", "--password-stdin"],
        pw(),
    ));
    assert_eq!(list.as_array().unwrap().len(), 2);
    let missing = pooya(
        &v,
        &["account", "remove", "3", "--json", "--password-stdin"],
        pw(),
    );
    assert_eq!(error_code(&missing), "account_not_found");
}

fn pan(n: u64) -> String {
    let payload = format!("610433{n:09}");
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

struct Bank {
    dir: tempfile::TempDir,
    init: InitOutput,
    server: BackgroundServer,
}

impl Bank {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let init = pooya_issuer::init(dir.path(), &InitOptions::default()).unwrap();
        let server = pooya_issuer::spawn_on_thread(ServerConfig::new(dir.path())).unwrap();
        Self { dir, init, server }
    }

    /// Enrolls `pan` for the app and returns the code from the SMS.
    fn enroll(&self, pan: &str) -> String {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = http
            .post(format!("{}/v1/enrollments", self.server.base_url()))
            .header(
                "Authorization",
                format!("Bearer {}", self.init.tokens.atm.expose_secret()),
            )
            .send_json(json!({"pan": pan, "phone": PHONE, "channel": "app"}))
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let sms = pooya_issuer::read_outbox(self.dir.path(), Some(PHONE)).unwrap();
        pooya_issuer::messages::find_activation_code(&sms.last().unwrap().body).unwrap()
    }
}

#[test]
fn export_prints_the_standard_accounts_and_never_a_card_seed() {
    let bank = Bank::start();
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(&dir);
    let url = bank.server.base_url();
    ok(&pooya(
        &v,
        &[
            "issuer",
            "add",
            "bank",
            "--url",
            &url,
            "--public-key",
            bank.server.issuer_public_key(),
            "--activation-key",
            bank.server.activation_public_key(),
            "--password-stdin",
        ],
        pw(),
    ));
    let code = bank.enroll(&pan(42));
    let card = ok_json(&pooya(
        &v,
        &["card", "add", &code, "--json", "--password-stdin"],
        pw(),
    ));
    let card_id = card["id"].as_i64().unwrap();

    let accounts = [
        OtpAccount::from_uri(&format!(
            "otpauth://totp/GitHub:alice?secret={RFC_SECRET}&issuer=GitHub"
        ))
        .unwrap(),
        OtpAccount::from_uri("otpauth://hotp/bob?secret=JBSWY3DPEHPK3PXP&counter=3&digits=8")
            .unwrap(),
    ];
    for a in &accounts {
        ok(&pooya(
            &v,
            &["account", "add", "-", "--password-stdin"],
            Some(&format!("{}\n{PASSWORD}\n", a.to_uri().as_str())),
        ));
    }

    // The card's seed, read from the vault in this process.
    let seed = {
        let mut vault = Vault::open(
            &v,
            Arc::new(KeyFileKeystore::beside(&v)),
            None,
            Arc::new(SystemClock),
            VaultConfig::default(),
        )
        .unwrap();
        vault.unlock_with_password(PASSWORD).unwrap();
        vault
            .card_secret(card_id)
            .unwrap()
            .seed
            .expose_secret()
            .to_vec()
    };

    let out = pooya(&v, &["account", "export", "--password-stdin"], pw());
    let text = ok(&out);
    let back: Vec<OtpAccount> = text
        .lines()
        .map(|l| OtpAccount::from_uri(l).unwrap_or_else(|e| panic!("{l}: {e:?}")))
        .collect();
    // Exactly the standard accounts, each a whole otpauth URI.
    assert_eq!(back, accounts);
    for a in &back {
        assert_ne!(a.secret.expose_secret(), seed.as_slice());
    }
    assert!(!text.to_lowercase().contains(&hex::encode(&seed)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never exported"));

    let j = ok_json(&pooya(
        &v,
        &["account", "export", "--json", "--password-stdin"],
        pw(),
    ));
    let uris = j["uris"].as_array().unwrap();
    assert_eq!(uris.len(), 2);
    assert_eq!(uris[0].as_str().unwrap(), accounts[0].to_uri().as_str());

    // Export asks the password: a wrong one exports nothing.
    let wrong = pooya(
        &v,
        &["account", "export", "--json", "--password-stdin"],
        Some("not the password\n"),
    );
    assert_eq!(error_code(&wrong), "wrong_password");
}
