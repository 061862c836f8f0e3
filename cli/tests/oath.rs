//! `pooya oath` reproduces every RFC 4226, RFC 6238 and RFC 6287 test
//! vector, and refuses bad input with one line on stderr.
#![allow(clippy::expect_used)]

use std::process::Command;

const VECTORS: &str = include_str!("data/oath-vectors.txt");

fn pooya(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pooya"))
        .args(args)
        .output()
        .expect("run pooya")
}

#[test]
fn reproduces_every_rfc_vector() {
    let mut count = 0;
    for line in VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut words = line.split_whitespace();
        let expected = words.next().unwrap();
        let mut args = vec!["oath"];
        args.extend(words);
        let out = pooya(&args);
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{expected}\n"),
            "{line}"
        );
        count += 1;
    }
    // 10 HOTP + 18 TOTP + 40 one-way + 20 mutual + 10 signature + 1.
    assert_eq!(count, 99);
}

#[test]
fn bad_input_is_one_line_on_stderr() {
    for args in [
        &["oath", "hotp", "--key", "zz", "--counter", "1"][..],
        &["oath", "hotp", "--key", "3132", "--counter", "x"],
        &[
            "oath",
            "hotp",
            "--key",
            "3132",
            "--counter",
            "1",
            "--digits",
            "11",
        ],
        &["oath", "totp", "--key", "3132", "--time", "1"],
        &[
            "oath",
            "ocra",
            "--suite",
            "OCRA-1:HOTP-SHA1-6:QN99",
            "--key",
            "3132",
            "--question",
            "1",
        ],
        &[
            "oath",
            "ocra",
            "--suite",
            "OCRA-1:HOTP-SHA1-6:QN08",
            "--key",
            "3132",
            "--question",
            "12ab",
        ],
        &[
            "oath",
            "ocra",
            "--suite",
            "OCRA-1:HOTP-SHA1-6:QN08-T1M",
            "--key",
            "3132",
            "--question",
            "1",
        ],
        &["oath", "nope"],
    ] {
        let out = pooya(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("3132"), "key echoed: {err}");
    }
}
