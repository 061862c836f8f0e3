//! SoftHSM2 tokens for tests (feature `testing`): never `/etc/softhsm` or
//! a shared token directory.
//!
//! SoftHSM2 reads its configuration from the file `SOFTHSM2_CONF` names,
//! when the module is initialised. Two ways to use it:
//! - **in this process** ([`shared_token`]): one token directory for the
//!   whole test binary, made on the first call with [`SHARED_TOKENS`]
//!   tokens, which then sets `SOFTHSM2_CONF` for the process; each call
//!   hands out the next token. They are all made before any module is
//!   loaded because SoftHSM2 2.6.1 reads its token directory at
//!   `C_Initialize` and does not see tokens `softhsm2-util` adds later
//!   (they are `hsm_token_not_found`);
//! - **for a child process** ([`SoftHsm::new`]): a directory of its own;
//!   pass [`SoftHsm::conf_path`] to the child as `SOFTHSM2_CONF`
//!   ([`SoftHsm::env`]) and the module path, token label and PIN as its
//!   settings. This process's environment is not changed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use zeroize::Zeroizing;

use crate::Pkcs11Config;

/// Where Debian's `softhsm2` package puts the module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The environment variable SoftHSM2 reads its configuration path from.
pub const CONF_ENV: &str = "SOFTHSM2_CONF";
/// The user PIN of every test token.
pub const USER_PIN: &str = "1234-5678";
/// The security officer PIN of every test token.
pub const SO_PIN: &str = "8765-4321";

/// How many tokens the in-process directory holds ([`shared_token`]).
pub const SHARED_TOKENS: u32 = 48;

/// The next unused token of this process's directory (see the module
/// documentation).
///
/// # Errors
/// As [`SoftHsm::new`]; when every token is handed out.
pub fn shared_token() -> Result<Token, SetupError> {
    static SHARED: OnceLock<Result<(SoftHsm, Vec<Token>), String>> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (_, tokens) = SHARED
        .get_or_init(|| {
            let hsm = SoftHsm::new().map_err(|e| e.0)?;
            let tokens = (0..SHARED_TOKENS)
                .map(|_| hsm.token("shared"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.0)?;
            // SAFETY: runs once, inside the OnceLock's initialisation,
            // before this process loads SoftHSM2 through this harness;
            // Rust's own readers of the environment take std's
            // environment lock.
            #[allow(unsafe_code)]
            unsafe {
                std::env::set_var(CONF_ENV, &hsm.conf);
            }
            Ok((hsm, tokens))
        })
        .as_ref()
        .map_err(|e| SetupError(e.clone()))?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    usize::try_from(n)
        .ok()
        .and_then(|i| tokens.get(i))
        .cloned()
        .ok_or_else(|| {
            SetupError(format!(
                "all {SHARED_TOKENS} shared SoftHSM2 tokens are in use: raise SHARED_TOKENS"
            ))
        })
}

/// A token directory with its own `softhsm2.conf`.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

/// One initialised token in a [`SoftHsm`] directory.
#[derive(Debug, Clone)]
pub struct Token {
    /// The module to load.
    pub module: PathBuf,
    /// The `softhsm2.conf` to give the process as `SOFTHSM2_CONF`.
    pub conf: PathBuf,
    /// The token's label.
    pub label: String,
    /// The user PIN (not secret: a test token).
    pub pin: String,
}

impl Token {
    /// A provider configuration for this token (default label prefix).
    pub fn config(&self) -> Pkcs11Config {
        Pkcs11Config::new(
            self.module.clone(),
            &self.label,
            Zeroizing::new(self.pin.clone()),
        )
    }
}

/// Why a SoftHSM2 directory or token could not be made.
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

fn module_path() -> Result<PathBuf, SetupError> {
    let module = PathBuf::from(SOFTHSM_MODULE);
    if !module.exists() {
        return Err(SetupError(format!(
            "SoftHSM2 is not installed: {SOFTHSM_MODULE} is missing (apt-get install softhsm2)"
        )));
    }
    Ok(module)
}

impl SoftHsm {
    /// A fresh temporary token directory and its `softhsm2.conf`.
    ///
    /// # Errors
    /// When SoftHSM2 is not installed or the directory cannot be written.
    pub fn new() -> Result<Self, SetupError> {
        module_path()?;
        let dir = tempfile::tempdir()
            .map_err(|e| SetupError(format!("cannot make a temporary directory: {e}")))?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens)
            .map_err(|e| SetupError(format!("cannot make the token directory: {e}")))?;
        let conf = dir.path().join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        std::fs::write(&conf, text)
            .map_err(|e| SetupError(format!("cannot write softhsm2.conf: {e}")))?;
        Ok(Self { dir, conf })
    }

    /// The `softhsm2.conf` path.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The token directory's parent (a temporary directory, removed on
    /// drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment a child process needs: `(SOFTHSM2_CONF, path)`.
    pub fn env(&self) -> (&'static str, &Path) {
        (CONF_ENV, &self.conf)
    }

    /// Initialises a new token with a unique label starting with `name`
    /// (`softhsm2-util --init-token --free`), PIN [`USER_PIN`]. A process
    /// that already loaded SoftHSM2 with this directory does not see it:
    /// make tokens before starting the process that uses them.
    ///
    /// # Errors
    /// When `softhsm2-util` is missing or fails.
    pub fn token(&self, name: &str) -> Result<Token, SetupError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let module = module_path()?;
        // Labels are at most 32 bytes (CK_TOKEN_INFO.label).
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut label = format!("{name}-{}-{n}", std::process::id());
        label.truncate(32);
        let out = Command::new("softhsm2-util")
            .env(CONF_ENV, &self.conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                &label,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ])
            .output()
            .map_err(|e| {
                SetupError(format!(
                    "cannot run softhsm2-util (apt-get install softhsm2): {e}"
                ))
            })?;
        if !out.status.success() {
            return Err(SetupError(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Token {
            module,
            conf: self.conf.clone(),
            label,
            pin: USER_PIN.to_owned(),
        })
    }
}
