//! Standard OTP accounts cross-checked against an independent
//! implementation: pyotp (PyPI `pyotp`, `python3 -m pip install pyotp`)
//! parses the same `otpauth://` URIs and makes the codes. The test fails,
//! rather than skipping, when python3 or pyotp is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use pooya_protocol::otpauth::encode_migration_payload;
use pooya_protocol::{HashAlgorithm, OtpAccount, OtpKind, SecretBytes};

/// Codes from pyotp for each `(uri, unix time)`, one line each.
fn pyotp_codes(cases: &[(String, u64)]) -> Vec<String> {
    let script = "import sys, pyotp\n\
        for line in sys.stdin:\n\
        \x20   uri, t = line.rsplit(' ', 1)\n\
        \x20   o = pyotp.parse_uri(uri)\n\
        \x20   print(o.at(int(t)) if isinstance(o, pyotp.TOTP) else o.at(0))\n";
    let input: String = cases.iter().map(|(u, t)| format!("{u} {t}\n")).collect();
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed for this test");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pyotp failed (install it: python3 -m pip install pyotp): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A deterministic spread of secrets (no randomness in the test itself).
fn secret(i: usize, len: usize) -> SecretBytes {
    SecretBytes::new(
        (0..len)
            .map(|j| (i * 131 + j * 17 + 7) as u8 ^ 0x5a)
            .collect(),
    )
}

#[test]
fn codes_and_uris_agree_with_pyotp() {
    let algorithms = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
    ];
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for i in 0..60 {
        let kind = if i % 3 == 0 {
            OtpKind::Hotp {
                counter: (i as u64) * 1_000_003,
            }
        } else {
            OtpKind::Totp {
                period: [30, 60, 15][i % 3],
            }
        };
        let account = OtpAccount {
            kind,
            issuer: ["", "Example Co", "گیت‌هاب"][i % 3].to_owned(),
            name: format!("user{i}@example.com"),
            algorithm: algorithms[(i / 2) % 3],
            digits: [6, 7, 8][(i / 3) % 3],
            // pyotp refuses secrets under 112 bits; ours are the same HMAC
            // for any length.
            secret: secret(i, [16, 20, 32, 64][i % 4]),
        };
        // Through our own URI: pyotp reads what we export.
        let uri = account.to_uri().to_string();
        let parsed = OtpAccount::from_uri(&uri).unwrap();
        assert_eq!(parsed, account);
        let t = 1_800_000_000 + (i as u64) * 7_919;
        ours.push(parsed.code_at(t).unwrap().code.to_string());
        cases.push((uri, t));
    }
    assert_eq!(pyotp_codes(&cases), ours);
}

#[test]
fn google_authenticator_exports_agree_with_pyotp() {
    // An export of three accounts, read back and compared with pyotp on
    // the standard URIs of the same accounts.
    let accounts: Vec<OtpAccount> = (0..3)
        .map(|i| OtpAccount {
            kind: if i == 2 {
                OtpKind::Hotp { counter: 42 }
            } else {
                OtpKind::Totp { period: 30 }
            },
            issuer: "Acme".into(),
            name: format!("a{i}"),
            algorithm: HashAlgorithm::Sha1,
            digits: if i == 1 { 8 } else { 6 },
            secret: secret(i, 20),
        })
        .collect();
    let payload = encode_migration_payload(&accounts).unwrap();
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(&payload);
    let uri = format!(
        "otpauth-migration://offline?data={}",
        data.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let back = OtpAccount::from_migration_uri(&uri).unwrap();
    assert_eq!(back, accounts);
    let t = 1_900_000_000;
    let cases: Vec<(String, u64)> = back.iter().map(|a| (a.to_uri().to_string(), t)).collect();
    let ours: Vec<String> = back
        .iter()
        .map(|a| a.code_at(t).unwrap().code.to_string())
        .collect();
    assert_eq!(pyotp_codes(&cases), ours);
}
