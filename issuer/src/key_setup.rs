//! Which key provider a data directory's issuer uses: the key files
//! (`master.key`, the default) or a PKCS#11 token, named in `keys.json`
//! (written by `init --keys pkcs11`; no secret in it). The token's PIN
//! comes from the environment (`POOYA_PKCS11_PIN`) or a file given at
//! `init` and recorded there by path, never from the command line
//! (docs/issuer.md, "Keys in an HSM").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pooya_issuer_pkcs11::{Pkcs11Config, Pkcs11KeyProvider};
use pooya_issuer_service::{FileKeyProvider, IssuerError, KeyProvider};
use pooya_issuer_sqlite::KEY_FILE;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The file naming the provider.
pub const KEYS_FILE: &str = "keys.json";
/// Where the token PIN may come from instead of a file.
pub const PIN_VAR: &str = "POOYA_PKCS11_PIN";

/// What `keys.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeysFile {
    /// A PKCS#11 token.
    Pkcs11 {
        /// The module (shared library).
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// What every key label in the token starts with.
        label_prefix: String,
        /// A file holding the user PIN (mode 0600), when not from
        /// `POOYA_PKCS11_PIN`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_file: Option<PathBuf>,
        /// Logged-in sessions each process keeps.
        sessions: usize,
    },
}

/// `init --keys pkcs11`: the token and where its PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Setup {
    /// The module (shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// A PIN file; `None` reads `POOYA_PKCS11_PIN`.
    pub pin_file: Option<PathBuf>,
}

/// Reads the PIN: the environment first, then the file (which group and
/// others must not be able to read).
fn read_pin(pin_file: Option<&Path>) -> Result<Zeroizing<String>, IssuerError> {
    if let Ok(pin) = std::env::var(PIN_VAR) {
        let pin = Zeroizing::new(pin);
        if !pin.trim().is_empty() {
            return Ok(Zeroizing::new(pin.trim().to_owned()));
        }
    }
    let Some(path) = pin_file else {
        return Err(IssuerError::InvalidSettings(format!(
            "the token PIN: set {PIN_VAR} or give a PIN file"
        )));
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| IssuerError::io("reading the PIN file", &e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(IssuerError::KeyFile(
                "the PIN file is readable by group or others: chmod 600 it",
            ));
        }
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| IssuerError::io("reading the PIN file", &e))?,
    );
    let pin = Zeroizing::new(text.trim().to_owned());
    if pin.is_empty() {
        return Err(IssuerError::InvalidSettings("the PIN file is empty".into()));
    }
    Ok(pin)
}

fn config(file: &KeysFile) -> Result<Pkcs11Config, IssuerError> {
    let KeysFile::Pkcs11 {
        module,
        token_label,
        label_prefix,
        pin_file,
        sessions,
    } = file;
    let mut c = Pkcs11Config::new(module, token_label, read_pin(pin_file.as_deref())?);
    c.label_prefix.clone_from(label_prefix);
    c.sessions = *sessions;
    Ok(c)
}

/// Makes the keys of a new issuer: in the token for `pkcs11` (and writes
/// `keys.json`), else a new `master.key`.
///
/// # Errors
/// [`IssuerError::Hsm`] and the token's start-up failures,
/// [`IssuerError::Io`].
pub(crate) fn create_keys(
    data_dir: &Path,
    pkcs11: Option<&Pkcs11Setup>,
) -> Result<Arc<dyn KeyProvider>, IssuerError> {
    let Some(setup) = pkcs11 else {
        return Ok(Arc::new(FileKeyProvider::create(&data_dir.join(KEY_FILE))?));
    };
    let file = KeysFile::Pkcs11 {
        module: setup.module.clone(),
        token_label: setup.token_label.clone(),
        label_prefix: pooya_issuer_pkcs11::DEFAULT_LABEL_PREFIX.to_owned(),
        pin_file: setup.pin_file.clone(),
        sessions: pooya_issuer_pkcs11::DEFAULT_SESSIONS,
    };
    let provider = Pkcs11KeyProvider::create(&config(&file)?)?;
    let text = serde_json::to_string_pretty(&file)
        .map_err(|e| IssuerError::Server(format!("keys.json: {e}")))?;
    std::fs::write(data_dir.join(KEYS_FILE), text)
        .map_err(|e| IssuerError::io("writing keys.json", &e))?;
    Ok(Arc::new(provider))
}

/// Opens the keys of an initialised data directory: the token `keys.json`
/// names, else the key files.
///
/// # Errors
/// [`IssuerError::KeyFile`], [`IssuerError::Io`], [`IssuerError::Hsm`]
/// (`hsm_unavailable`, `hsm_token_not_found`, `hsm_pin_incorrect`,
/// `hsm_key_missing`), [`IssuerError::InvalidSettings`] for a malformed
/// `keys.json` or a missing PIN.
pub fn open_keys(data_dir: &Path) -> Result<Arc<dyn KeyProvider>, IssuerError> {
    let path = data_dir.join(KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let file: KeysFile = serde_json::from_str(&text)
                .map_err(|e| IssuerError::InvalidSettings(format!("keys.json: {e}")))?;
            Ok(Arc::new(Pkcs11KeyProvider::open(&config(&file)?)?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Arc::new(FileKeyProvider::load(&data_dir.join(KEY_FILE))?))
        }
        Err(e) => Err(IssuerError::io("reading keys.json", &e)),
    }
}
