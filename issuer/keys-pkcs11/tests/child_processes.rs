//! The harness for child processes (`SoftHsm::new`, `SoftHsm::token`), as
//! the end-to-end tests use it with `pooya-issuer`: the parent makes a
//! token directory and a token without loading SoftHSM2 itself, and gives
//! each child `SOFTHSM2_CONF`, the module, the token label and the PIN.
//! One child runs `create` (as `init`) and seals a value; a second runs
//! `open` (as `serve`) and opens it. This binary is both the parent and
//! the children (no test harness: `main` decides by its environment).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, ExitCode};

use pooya_issuer_pkcs11::testing::{CONF_ENV, SoftHsm};
use pooya_issuer_pkcs11::{Pkcs11Config, Pkcs11KeyProvider};
use pooya_issuer_service::keys::{HashDomain, KeyProvider};
use zeroize::Zeroizing;

const ROLE: &str = "POOYA_PKCS11_CHILD";

fn child(role: &str) -> ExitCode {
    let var = |n: &str| std::env::var(n).unwrap();
    assert!(
        std::env::var(CONF_ENV).is_ok(),
        "the parent passes the conf"
    );
    let config = Pkcs11Config::new(
        var("POOYA_PKCS11_MODULE"),
        &var("POOYA_PKCS11_TOKEN"),
        Zeroizing::new(var("POOYA_PKCS11_PIN")),
    );
    match role {
        "init" => {
            let p = Pkcs11KeyProvider::create(&config).unwrap();
            let sealed = p.seal("pan", b"card-1", b"6104337700000001").unwrap();
            let hash = p.keyed_hash(HashDomain::Pan, b"6104337700000001").unwrap();
            println!("{} {}", hex(&sealed), hex(&hash));
        }
        "serve" => {
            let p = Pkcs11KeyProvider::open(&config).unwrap();
            let sealed = unhex(&var("POOYA_PKCS11_SEALED"));
            let plain = p.open("pan", b"card-1", &sealed).unwrap();
            assert_eq!(&plain[..], b"6104337700000001");
            let hash = p.keyed_hash(HashDomain::Pan, b"6104337700000001").unwrap();
            println!("{}", hex(&hash));
        }
        other => panic!("unknown role {other}"),
    }
    ExitCode::SUCCESS
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn run(
    hsm: &SoftHsm,
    token: &pooya_issuer_pkcs11::testing::Token,
    role: &str,
    sealed: &str,
) -> String {
    let (conf_var, conf) = hsm.env();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(conf_var, conf)
        .env(ROLE, role)
        .env("POOYA_PKCS11_MODULE", &token.module)
        .env("POOYA_PKCS11_TOKEN", &token.label)
        .env("POOYA_PKCS11_PIN", &token.pin)
        .env("POOYA_PKCS11_SEALED", sealed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child {role}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let hsm = SoftHsm::new().expect("SoftHSM2 test directory");
    let token = hsm.token("e2e").expect("SoftHSM2 token");
    assert!(
        std::env::var(CONF_ENV).map_or(true, |c| c != hsm.conf_path().to_string_lossy()),
        "the parent's environment is not changed"
    );
    let init = run(&hsm, &token, "init", "");
    let (sealed, hash) = init.split_once(' ').expect("init prints sealed and hash");
    let served = run(&hsm, &token, "serve", sealed);
    assert_eq!(served, hash, "serve finds the keys init made");
    assert!(
        std::fs::read_dir(hsm.dir().join("tokens")).unwrap().count() > 0,
        "the token lives in the test's own directory"
    );
    println!("1 passed, 0 failed");
    ExitCode::SUCCESS
}
