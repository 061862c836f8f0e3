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
    out(format_args!("{value}\n"));
}

/// What a failed write to standard output does: `None` for a closed pipe
/// (the reader, `head` say, has what it wanted: end quietly, status 0),
/// otherwise the exit status 1 after a message on standard error.
fn on_write_error(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        0
    } else {
        err(format_args!(
            "pooya: cannot write to standard output: {} [io]\n",
            e.kind()
        ));
        1
    }
}

/// Writes to standard output (every `println!` of the CLI comes here, see
/// `main.rs`). When standard output is closed (`| head -c1`) or fails,
/// the process ends at once (status 0 for a closed pipe, 1 otherwise)
/// instead of panicking; nothing after the failed write runs, so a
/// watching loop stops too. Secrets held in memory are released with the
/// process.
pub fn out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        std::process::exit(on_write_error(&e));
    }
}

/// Writes to standard error, ignoring failures (a closed standard error
/// must not turn a message into a panic).
pub fn err(args: std::fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(args);
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
