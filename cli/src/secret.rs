//! Reading the app password and showing a spinner while the KDF runs.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use zeroize::Zeroizing;

use crate::output::CliError;

/// Where the password comes from: one line of standard input
/// (`--password-stdin`, read once and reused within the command) or the
/// terminal, without echo.
pub struct PasswordSource {
    stdin: bool,
    cached: Option<Zeroizing<String>>,
}

impl PasswordSource {
    /// A source; `stdin` is `--password-stdin`.
    pub fn new(stdin: bool) -> Self {
        Self {
            stdin,
            cached: None,
        }
    }

    fn stdin_line(&mut self) -> Result<Zeroizing<String>, CliError> {
        if let Some(p) = &self.cached {
            return Ok(p.clone());
        }
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            CliError::new("io", format!("cannot read standard input: {}", e.kind()))
        })?;
        let trimmed = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned());
        if trimmed.is_empty() {
            return Err(CliError::new(
                "usage",
                "--password-stdin: standard input has no password line",
            ));
        }
        self.cached = Some(trimmed.clone());
        Ok(trimmed)
    }

    fn prompt(prompt: &str) -> Result<Zeroizing<String>, CliError> {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|_| {
                CliError::new(
                    "no_terminal",
                    "no terminal to read the password from: use --password-stdin",
                )
            })
    }

    /// The app password of an existing vault.
    pub fn password(&mut self) -> Result<Zeroizing<String>, CliError> {
        if self.stdin {
            return self.stdin_line();
        }
        if let Some(p) = &self.cached {
            return Ok(p.clone());
        }
        let p = Self::prompt("App password: ")?;
        self.cached = Some(p.clone());
        Ok(p)
    }

    /// A new app password: the stdin line, or typed twice.
    pub fn new_password(&mut self) -> Result<Zeroizing<String>, CliError> {
        if self.stdin {
            return self.stdin_line();
        }
        let first = Self::prompt("New app password: ")?;
        let again = Self::prompt("Type it again: ")?;
        if first != again {
            return Err(CliError::new("usage", "the two passwords differ"));
        }
        Ok(first)
    }
}

/// Runs `f` with a spinner on stderr when stderr is a terminal.
pub fn with_spinner<T>(message: &'static str, f: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return f();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(80));
    let out = f();
    bar.finish_and_clear();
    out
}
