//! The CLI's error type and output helpers.

use std::io::Write;

use pooya_core::CoreError;
use pooya_protocol::ProtocolError;

/// A failed command: a stable code (the core's codes, or the CLI's own:
/// `usage`, `no_terminal`, `io`, `demo_failed`) and a message without
/// secrets.
#[derive(Debug)]
pub struct CliError {
    /// Stable, machine-readable code.
    pub code: String,
    /// For people.
    pub message: String,
}

impl CliError {
    /// An error with a CLI code.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}

impl From<ProtocolError> for CliError {
    fn from(e: ProtocolError) -> Self {
        CoreError::from(e).into()
    }
}

/// Prints an error: `pooya: MESSAGE [CODE]` on stderr, or with `--json`
/// `{"error": CODE, "message": MESSAGE}` on stdout.
pub fn error(json: bool, e: &CliError) {
    if json {
        println!(
            "{}",
            serde_json::json!({"error": e.code, "message": e.message})
        );
    } else {
        eprintln!("pooya: {} [{}]", e.message, e.code);
    }
}

/// Prints a JSON value on one line.
pub fn json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
}

/// `1,250,000`.
pub fn rials(amount: u64) -> String {
    pooya_protocol::format_rials(amount)
}

/// `HH:MM:SS` UTC of a Unix time.
pub fn clock_utc(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
