//! docs/issuer.md is a contract too: the settings file it shows for a
//! bank's production set-up is one `serve` accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pooya_issuer::{Settings, SmsSenderKind};

const DOC: &str = include_str!("../../docs/issuer.md");

/// The indented JSON block that follows the line `marker` (up to the next
/// line at the block's indentation or less that closes it).
fn json_block_after(marker: &str) -> String {
    let start = DOC
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in docs/issuer.md"));
    let rest = &DOC[start + marker.len()..];
    let mut out = String::new();
    let mut depth = 0i32;
    for line in rest.lines().skip_while(|l| l.trim().is_empty()) {
        out.push_str(line);
        out.push('\n');
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth == 0 && !out.trim().is_empty() {
            break;
        }
    }
    out
}

#[test]
fn the_production_settings_shown_are_valid() {
    let text = json_block_after("/etc/pooya/bank.json:");
    let settings: Settings = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    settings.validate().unwrap();
    assert_eq!(settings.sms.sender, SmsSenderKind::Kannel);
    let kannel = settings.sms.kannel.as_ref().unwrap();
    assert!(kannel.password_source().is_ok());
    assert!(kannel.gateway_secret_source().is_ok());
    assert_eq!(settings.database_pool_size, 32);
}

/// Issue 14: the demo gateway's Harim settings file shown in docs/issuer.md
/// is one `serve --demo-harim` accepts.
#[test]
fn the_demo_harim_settings_shown_are_valid() {
    let text = json_block_after("naming the field, never a token:");
    let demo = pooya_issuer::DemoHarim::from_json(text.as_bytes(), &|name| {
        name.ends_with("_TOKEN")
            .then(|| format!("{}-0123456789abcdef", name.to_lowercase()))
    })
    .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(demo.base_url, "http://127.0.0.1:8480");
    let names: Vec<&str> = demo.banks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["mellat", "saderat"]);
    assert_eq!(demo.timeout, std::time::Duration::from_secs(10));
}
