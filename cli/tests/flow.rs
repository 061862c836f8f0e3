//! The `pooya` binary driven as a subprocess against a real issuer on
//! 127.0.0.1: init → issuer add → card add → cap set → PINs the bank
//! accepts; global options anywhere; status, lock; errors with codes;
//! `init` over a wiped vault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pooya_core::hooks::Clock as _;
use pooya_issuer::{BackgroundServer, InitOptions, InitOutput, ServerConfig};
use pooya_protocol::ids;
use serde_json::{Value, json};

const PHONE: &str = "09121234567";
const PASSWORD: &str = "test password 1379";

struct Bank {
    dir: tempfile::TempDir,
    init: InitOutput,
    server: BackgroundServer,
    http: ureq::Agent,
}

impl Bank {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let init = pooya_issuer::init(dir.path(), &InitOptions::default()).unwrap();
        let server = pooya_issuer::spawn_on_thread(ServerConfig::new(dir.path())).unwrap();
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            dir,
            init,
            server,
            http,
        }
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.server.base_url()))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap())
    }

    /// Enrolls `pan` for the app and returns the code from the SMS.
    fn enroll(&self, pan: &str) -> String {
        let (status, body) = self.post(
            "/v1/enrollments",
            self.init.tokens.atm.expose_secret(),
            &json!({"pan": pan, "phone": PHONE, "channel": "app"}),
        );
        assert_eq!(status, 201, "{body}");
        let sms = pooya_issuer::read_outbox(self.dir.path(), Some(PHONE)).unwrap();
        pooya_issuer::messages::find_activation_code(&sms.last().unwrap().body).unwrap()
    }

    fn verify(&self, pan: &str, code: &str, amount: u64, payee: Option<&str>, kind: &str) -> Value {
        let mut body = json!({"pan": pan, "code": code, "amount": amount, "kind": kind});
        if let Some(p) = payee {
            body["payee"] = json!(p);
            body["type"] = json!("purchase");
        }
        let (status, v) = self.post(
            "/v1/verify",
            self.init.tokens.gateway.expose_secret(),
            &body,
        );
        assert_eq!(status, 200, "{v}");
        v
    }
}

fn pan(n: u64) -> String {
    let payload = format!("610433{n:09}");
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

/// Runs `pooya --vault VAULT ARGS` with `stdin` on standard input.
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

fn pw() -> Option<&'static str> {
    Some("test password 1379\n")
}

fn vault_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("vault.db")
}

#[test]
fn init_add_card_cap_and_pins_the_bank_accepts() {
    let bank = Bank::start();
    let phone_dir = tempfile::tempdir().unwrap();
    let v = vault_in(&phone_dir);

    // status before init: no vault, exit 0.
    let st = ok_json(&pooya(&v, &["status", "--json"], None));
    assert_eq!(st["exists"], false);

    // init: the stdin line is the new password; a weak one is refused.
    let weak = pooya(
        &v,
        &[
            "init",
            "--phone",
            PHONE,
            "--kdf",
            "floor",
            "--password-stdin",
        ],
        Some("123456\n"),
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("[weak_password]"));
    let init = ok_json(&pooya(
        &v,
        &[
            "--password-stdin",
            "init",
            "--phone",
            "۰۹۱۲ ۱۲۳ ۴۵۶۷",
            "--kdf",
            "floor",
            "--json",
        ],
        pw(),
    ));
    assert_eq!(init["phone"], "+989121234567");
    assert_eq!(init["kdf"]["memory_kib"], 19 * 1024);
    // A second init refuses, before asking for a password.
    let again = pooya(&v, &["init", "--phone", PHONE, "--json"], None);
    assert!(!again.status.success());
    let e: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(e["error"], "vault_exists");

    // issuer add, global options after the subcommand.
    let key = bank.server.issuer_public_key().to_owned();
    let akey = bank.server.activation_public_key().to_owned();
    let url = bank.server.base_url();
    let i = ok_json(&pooya(
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
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(i["public_key"], key);

    // card add: a typo is refused before the password is read (no stdin).
    let card_pan = pan(42);
    let code = bank.enroll(&card_pan);
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == '9' { '8' } else { '9' };
    let typo: String = typo.into_iter().collect();
    let bad = pooya(&v, &["card", "add", &typo], None);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("[invalid_activation_code]"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let dashed = ids::format_activation_code(&code);
    let card = ok_json(&pooya(
        &v,
        &["card", "add", &dashed, "--json", "--password-stdin"],
        pw(),
    ));
    assert_eq!(card["last4"], &card_pan[12..]);
    assert_eq!(card["bank_name_en"], "Bank Mellat");
    assert_eq!(card["cap"], 5_000_000);
    let last4 = card_pan[12..].to_owned();

    // cap set by last four digits, between tiers → rounded down, told.
    let plain = ok(&pooya(
        &v,
        &["cap", "set", &last4, "30,000,000", "--password-stdin"],
        pw(),
    ));
    assert!(plain.contains("20,000,000"), "{plain}");
    assert!(plain.contains("rounded down"), "{plain}");
    let caps = ok_json(&pooya(
        &v,
        &["--json", "cap", "show", "--password-stdin"],
        pw(),
    ));
    assert_eq!(caps[0]["cap"], 20_000_000);

    // pin second: the code alone on the first line; the bank accepts it
    // within the cap.
    let out = ok(&pooya(
        &v,
        &["pin", "second", &last4, "--password-stdin"],
        pw(),
    ));
    let code2 = out.lines().next().unwrap();
    assert_eq!(code2.len(), 8);
    assert!(code2.bytes().all(|b| b.is_ascii_digit()));
    let verdict = bank.verify(&card_pan, code2, 25_000_000, None, "second");
    assert_eq!(verdict["result"], "rejected", "above the cap");
    let verdict = bank.verify(&card_pan, code2, 15_000_000, None, "second");
    assert_eq!(verdict["result"], "accepted", "{verdict}");

    // pin tx and pin first, JSON, by card id.
    let id = card["id"].as_i64().unwrap().to_string();
    let tx = ok_json(&pooya(
        &v,
        &[
            "pin",
            "tx",
            &id,
            "--type",
            "purchase",
            "--amount",
            "۱٬۲۵۰٬۰۰۰",
            "--payee",
            "IR-SHOP-42",
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(tx["amount"], 1_250_000);
    let verdict = bank.verify(
        &card_pan,
        tx["code"].as_str().unwrap(),
        1_250_000,
        Some("IR-SHOP-42"),
        "second",
    );
    assert_eq!(verdict["matched"], "transaction", "{verdict}");
    assert_eq!(tx["type"], "purchase");

    // A scanned payment request: what it pays, and the PIN for exactly it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let uri = format!(
        "pooya:pay?amount=2500000&payee=IR-BILL-7&name=Water&type=bill&expires={}",
        now + 300
    );
    let paid = ok_json(&pooya(
        &v,
        &[
            "pin",
            "tx",
            &id,
            "--request",
            &uri,
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(paid["type"], "bill", "{paid}");
    assert_eq!(paid["amount"], 2_500_000);
    assert_eq!(paid["payee"], "IR-BILL-7");
    assert_eq!(paid["request"]["amount_fa"], "۲٬۵۰۰٬۰۰۰");
    assert_eq!(paid["request"]["type_name_fa"], "پرداخت قبض");
    assert_eq!(paid["request"]["payee_name"], "Water");
    // The same PIN named as a purchase is refused.
    let verdict = bank.verify(
        &card_pan,
        paid["code"].as_str().unwrap(),
        2_500_000,
        Some("IR-BILL-7"),
        "second",
    );
    assert_eq!(verdict["reason"], "wrong_code", "{verdict}");
    // An expired request and a bad type: stable codes, no PIN.
    let old = uri.replace(&format!("expires={}", now + 300), "expires=1000");
    let expired = pooya(
        &v,
        &["pin", "tx", &id, "--request", &old, "--password-stdin"],
        pw(),
    );
    assert!(String::from_utf8_lossy(&expired.stderr).contains("[payment_request_expired]"));
    let gift = pooya(
        &v,
        &[
            "pin",
            "tx",
            &id,
            "--type",
            "gift",
            "--amount",
            "1",
            "--payee",
            "X",
            "--password-stdin",
        ],
        // Refused before the password is read.
        None,
    );
    assert!(String::from_utf8_lossy(&gift.stderr).contains("[invalid_type]"));

    let first = ok_json(&pooya(
        &v,
        &["pin", "first", &id, "--json", "--password-stdin"],
        pw(),
    ));
    assert!(first["seconds_left"].as_u64().unwrap() <= 60);
    let verdict = bank.verify(&card_pan, first["code"].as_str().unwrap(), 0, None, "first");
    assert_eq!(verdict["result"], "accepted", "{verdict}");

    // A tx PIN above the card's cap is refused on the phone.
    let above = pooya(
        &v,
        &[
            "pin",
            "tx",
            &id,
            "--type",
            "transfer",
            "--amount",
            "30000000",
            "--payee",
            "X",
            "--password-stdin",
        ],
        pw(),
    );
    assert!(String::from_utf8_lossy(&above.stderr).contains("[amount_above_cap]"));

    // list, rename, status, lock.
    let list = ok_json(&pooya(
        &v,
        &["card", "list", "--json", "--password-stdin"],
        pw(),
    ));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let renamed = ok_json(&pooya(
        &v,
        &[
            "card",
            "rename",
            &last4,
            "Salary",
            "--json",
            "--password-stdin",
        ],
        pw(),
    ));
    assert_eq!(renamed["label"], "Salary");
    let st = ok_json(&pooya(&v, &["status", "--json"], None));
    assert_eq!(st["card_count"], 1);
    assert_eq!(st["locked"], true);
    assert_eq!(st["device_key_present"], true);
    let lock = ok(&pooya(&v, &["lock"], None));
    assert!(lock.contains("no session between commands"), "{lock}");

    // A wrong password: a counted attempt, with the attempts left.
    let wrong = pooya(
        &v,
        &["card", "list", "--json", "--password-stdin"],
        Some("not it at all\n"),
    );
    assert!(!wrong.status.success());
    let e: Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(e["error"], "wrong_password");
    let st = ok_json(&pooya(&v, &["status", "--json"], None));
    assert_eq!(st["failed_attempts"], 1);

    // remove (the password again), then the list is empty.
    ok(&pooya(
        &v,
        &["card", "remove", &last4, "--password-stdin"],
        pw(),
    ));
    let list = ok_json(&pooya(
        &v,
        &["card", "list", "--json", "--password-stdin"],
        pw(),
    ));
    assert_eq!(list, json!([]));
}

#[test]
fn watch_prints_the_code_first_and_keeps_running() {
    let bank = Bank::start();
    let phone_dir = tempfile::tempdir().unwrap();
    let v = vault_with_bank(&bank, &phone_dir);
    let card_pan = pan(7);
    let code = bank.enroll(&card_pan);
    ok(&pooya(
        &v,
        &["card", "add", &code, "--password-stdin"],
        pw(),
    ));

    let mut child = Command::new(env!("CARGO_BIN_EXE_pooya"))
        .args([
            "pin",
            "first",
            &card_pan[12..],
            "--watch",
            "--password-stdin",
            "--vault",
        ])
        .arg(&v)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(still_running);
    let code = line.trim();
    assert_eq!(code.len(), 6, "{line:?}");
    let verdict = bank.verify(&card_pan, code, 0, None, "first");
    assert_eq!(verdict["result"], "accepted", "{verdict}");
}

#[test]
fn commands_without_a_vault_fail_with_codes() {
    let dir = tempfile::tempdir().unwrap();
    let v = vault_in(&dir);
    let out = pooya(&v, &["card", "list"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[no_vault]"));
    let out = pooya(&v, &["lock", "--json"], None);
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["error"], "no_vault");
}

/// A clock that moves forward an hour at every reading, wall and boot
/// clock alike, so the lockout's delays never stand between two wrong
/// passwords.
struct HourPerTick(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64);

impl pooya_core::hooks::Clock for HourPerTick {
    fn now_unix(&self) -> u64 {
        self.0.fetch_add(3600, std::sync::atomic::Ordering::Relaxed)
    }
    fn boot_time(&self) -> Option<pooya_core::hooks::BootTime> {
        Some(pooya_core::hooks::BootTime {
            boot_id: "hour-per-tick".into(),
            since_boot_ms: self
                .1
                .fetch_add(3_600_000, std::sync::atomic::Ordering::Relaxed),
        })
    }
}

#[test]
fn init_replaces_only_a_wiped_vault() {
    use std::sync::Arc;

    let bank = Bank::start();
    let phone_dir = tempfile::tempdir().unwrap();
    let v = vault_in(&phone_dir);
    let init_args = [
        "init",
        "--phone",
        PHONE,
        "--kdf",
        "floor",
        "--json",
        "--password-stdin",
    ];
    let first = ok_json(&pooya(&v, &init_args, pw()));
    assert_eq!(first["replaced_wiped_vault"], false);
    let key = bank.server.issuer_public_key().to_owned();
    let akey = bank.server.activation_public_key().to_owned();
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
            &key,
            "--activation-key",
            &akey,
            "--password-stdin",
        ],
        pw(),
    ));
    let code = bank.enroll(&pan(7));
    ok(&pooya(
        &v,
        &["card", "add", &code, "--password-stdin"],
        pw(),
    ));
    let st = ok_json(&pooya(&v, &["status", "--json"], None));
    assert_eq!(st["card_count"], 1);

    // A vault that is not wiped is never replaced.
    // (No stdin: init refuses before reading a password.)
    let again = pooya(&v, &init_args, None);
    assert!(!again.status.success());
    let e: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(e["error"], "vault_exists");

    // Ten wrong passwords wipe it (through the core, with a clock that
    // skips the lockout delays; the CLI's clock is the real one).
    let start = pooya_core::hooks::SystemClock.now_unix();
    let mut vault = pooya_core::Vault::open(
        &v,
        Arc::new(pooya_core::KeyFileKeystore::beside(&v)),
        None,
        Arc::new(HourPerTick(start.into(), 0.into())),
        pooya_core::VaultConfig::default(),
    )
    .unwrap();
    let mut last = None;
    for _ in 0..10 {
        last = Some(
            vault
                .unlock_with_password("not the password 9")
                .unwrap_err(),
        );
    }
    assert_eq!(last, Some(pooya_core::CoreError::Wiped));
    assert!(vault.status().unwrap().wiped);
    drop(vault);

    // The CLI says what to do.
    let out = pooya(&v, &["card", "list", "--password-stdin"], pw());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[wiped]") && err.contains("pooya init"),
        "{err}"
    );
    let plain = ok(&pooya(&v, &["status"], None));
    assert!(
        plain.contains("WIPED") && plain.contains("pooya init"),
        "{plain}"
    );

    // init replaces the wiped vault, and says so; the old cards and
    // issuers are gone.
    let plain = ok(&pooya(
        &v,
        &[
            "init",
            "--phone",
            PHONE,
            "--kdf",
            "floor",
            "--password-stdin",
        ],
        Some("another password 2468\n"),
    ));
    assert!(plain.contains("Replaced the vault wiped"), "{plain}");
    let st = ok_json(&pooya(&v, &["status", "--json"], None));
    assert_eq!(st["wiped"], false);
    assert_eq!(st["card_count"], 0);
    assert_eq!(st["failed_attempts"], 0);
    let new_pw = Some("another password 2468\n");
    let cards = ok_json(&pooya(
        &v,
        &["card", "list", "--json", "--password-stdin"],
        new_pw,
    ));
    assert_eq!(cards, json!([]));
    let issuers = ok_json(&pooya(
        &v,
        &["issuer", "list", "--json", "--password-stdin"],
        new_pw,
    ));
    assert_eq!(issuers, json!([]));
    // And the new vault is not replaced in turn.
    let again = pooya(&v, &init_args, None);
    let e: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(e["error"], "vault_exists");
}

/// A vault with the bank's two keys pinned.
fn vault_with_bank(bank: &Bank, dir: &tempfile::TempDir) -> PathBuf {
    let v = vault_in(dir);
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
    let key = bank.server.issuer_public_key().to_owned();
    let akey = bank.server.activation_public_key().to_owned();
    ok(&pooya(
        &v,
        &[
            "issuer",
            "add",
            "bank",
            "--url",
            &bank.server.base_url(),
            "--public-key",
            &key,
            "--activation-key",
            &akey,
            "--password-stdin",
        ],
        pw(),
    ));
    v
}

#[test]
fn card_add_reads_the_code_when_it_is_not_on_the_command_line() {
    let bank = Bank::start();
    let phone_dir = tempfile::tempdir().unwrap();
    let v = vault_with_bank(&bank, &phone_dir);
    // No code argument: the first line of standard input is the code (a
    // terminal would get a prompt without echo), then the password line.
    let code = bank.enroll(&pan(61));
    let input = format!("{code}\n{}", pw().unwrap());
    let added = ok_json(&pooya(
        &v,
        &["card", "add", "--json", "--password-stdin"],
        Some(&input),
    ));
    assert_eq!(added["last4"], &pan(61)[12..]);
    // Nothing on standard input: a usage error, no card.
    let out = pooya(&v, &["card", "add", "--json"], Some(""));
    assert!(!out.status.success());
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["error"], "usage");
    // A two-channel code: the ATM's part on the line, the SMS part typed.
    let code = bank.enroll(&pan(62));
    let (atm, sms) = code.split_at(5);
    let input = format!("{sms}\n{}", pw().unwrap());
    let added = ok_json(&pooya(
        &v,
        &[
            "card",
            "add",
            "--atm-code",
            atm,
            "--json",
            "--password-stdin",
        ],
        Some(&input),
    ));
    assert_eq!(added["last4"], &pan(62)[12..]);
    // A mistyped part is caught before the password is read.
    let bad_atm = match atm.strip_prefix('9') {
        Some(rest) => format!("8{rest}"),
        None => format!("9{}", &atm[1..]),
    };
    let out = pooya(
        &v,
        &["card", "add", sms, "--atm-code", &bad_atm, "--json"],
        None,
    );
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["error"], "invalid_activation_code");
}
