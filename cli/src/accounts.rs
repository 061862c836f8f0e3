//! `pooya account …`: the customer's standard OTP accounts (otpauth://
//! URIs and Google Authenticator exports) kept in the vault beside the
//! bank cards (docs/phone.md, "Standard OTP accounts").
//!
//! Each command unlocks the vault like the card commands do; `remove` and
//! `export` need the password again (the core checks it a second time).
//! A URI holds the account's secret, so `add -` reads it from standard
//! input (or a prompt without echo) instead of the command line.

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;
use pooya_core::CoreError;
use pooya_core::vault::AccountRecord;
use pooya_protocol::{OtpAccount, OtpKind};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Global;
use crate::app::unlocked_vault;
use crate::output::{self, CliError};
use crate::secret::{PasswordSource, with_spinner};

/// `pooya account …`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account from an otpauth:// URI, or every account of a
    /// Google Authenticator export (otpauth-migration://).
    ///
    /// The URI contains the account's secret: give `-` to read it from
    /// standard input (or a prompt without echo on a terminal) so it is
    /// not left in your shell history or in `ps`.
    Add {
        /// An otpauth://totp/…, otpauth://hotp/… or
        /// otpauth-migration://offline?data=… URI, or `-` to read it from
        /// standard input (its first line, before the password line of
        /// --password-stdin).
        uri: String,
    },
    /// The accounts in this vault (never their secrets).
    List,
    /// The current code of an account, with the seconds it has left
    /// (TOTP) or the counter it used (HOTP; the next code moves on).
    Code {
        /// Account id, or its name (`alice@example.com` or
        /// `Example:alice@example.com`).
        account: String,
    },
    /// Rename an account (its account name; the issuer stays).
    Rename {
        /// Account id or name.
        account: String,
        /// The new name.
        name: String,
    },
    /// Remove an account from this vault (needs the password).
    Remove {
        /// Account id or name.
        account: String,
    },
    /// Print every standard account as an otpauth:// URI, one a line
    /// (needs the password). The URIs contain the secrets; bank cards are
    /// never exported.
    Export,
}

/// `issuer:name`, or the name alone when there is no issuer.
fn label(a: &AccountRecord) -> String {
    if a.issuer.is_empty() {
        a.name.clone()
    } else {
        format!("{}:{}", a.issuer, a.name)
    }
}

/// Finds the account a person means: an exact name or `issuer:name`
/// first; when none has it, a local id. Pure, so it is tested as a table.
///
/// # Errors
/// `account_not_found`; `ambiguous_account` when several accounts have
/// that name (use the id).
fn find<'a>(accounts: &'a [AccountRecord], selector: &str) -> Result<&'a AccountRecord, CliError> {
    let wanted = selector.trim();
    let mut by_name = accounts
        .iter()
        .filter(|a| a.name == wanted || label(a) == wanted);
    if let Some(first) = by_name.next() {
        if by_name.next().is_some() {
            return Err(CliError::new(
                "ambiguous_account",
                "several accounts have this name: use the id from `pooya account list`",
            ));
        }
        return Ok(first);
    }
    wanted
        .parse::<i64>()
        .ok()
        .and_then(|id| accounts.iter().find(|a| a.id == id))
        .ok_or_else(|| CoreError::AccountNotFound.into())
}

fn kind_json(kind: OtpKind) -> Value {
    match kind {
        OtpKind::Totp { period } => json!({"kind": "totp", "period": period}),
        OtpKind::Hotp { counter } => json!({"kind": "hotp", "counter": counter}),
    }
}

fn account_json(a: &AccountRecord) -> Value {
    let mut v = kind_json(a.kind);
    v["id"] = json!(a.id);
    v["issuer"] = json!(a.issuer);
    v["name"] = json!(a.name);
    v["algorithm"] = json!(a.algorithm.name());
    v["digits"] = json!(a.digits);
    v["added_at"] = json!(a.added_at);
    v
}

fn account_line(a: &AccountRecord) -> String {
    let kind = match a.kind {
        OtpKind::Totp { period } => format!("TOTP {period} s"),
        OtpKind::Hotp { counter } => format!("HOTP #{counter}"),
    };
    format!(
        "{:>3}  {:<12} {:<6} {} digits  {}",
        a.id,
        kind,
        a.algorithm.name(),
        a.digits,
        label(a)
    )
}

/// Reads the URI of `add -`: at a prompt without echo on a terminal,
/// else the first line of standard input.
fn read_uri() -> Result<Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("otpauth URI: ")
            .map(Zeroizing::new)
            .map_err(|_| CliError::new("no_terminal", "cannot read the URI from the terminal"));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::new("io", format!("cannot read standard input: {}", e.kind())))?;
    Ok(Zeroizing::new(line.trim().to_owned()))
}

/// Parses what `add` was given: one `otpauth://` account or every
/// account of an `otpauth-migration://` export.
///
/// # Errors
/// `usage` for an empty URI; the parsers' `invalid_field` and friends.
fn parse(uri: &str) -> Result<Vec<OtpAccount>, CliError> {
    let uri = uri.trim();
    if uri.is_empty() {
        return Err(CliError::new(
            "usage",
            "no URI: give an otpauth:// or otpauth-migration:// URI, or `-` and the URI on standard input",
        ));
    }
    let is_migration = uri
        .get(..18)
        .is_some_and(|s| s.eq_ignore_ascii_case("otpauth-migration:"));
    Ok(if is_migration {
        OtpAccount::from_migration_uri(uri)?
    } else {
        vec![OtpAccount::from_uri(uri)?]
    })
}

/// `pooya account …`.
pub fn run(global: &Global, cmd: &AccountCommand) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    match cmd {
        AccountCommand::Add { uri } => {
            let typed = if uri == "-" {
                read_uri()?
            } else {
                Zeroizing::new(uri.clone())
            };
            // A bad URI is refused before the password is asked for.
            let parsed = parse(&typed)?;
            let mut vault = unlocked_vault(global, &mut passwords)?;
            let ids = vault.add_accounts(&parsed)?;
            let added: Vec<AccountRecord> = vault
                .accounts()?
                .into_iter()
                .filter(|a| ids.contains(&a.id))
                .collect();
            if global.json {
                output::json(&Value::Array(added.iter().map(account_json).collect()));
            } else {
                let n = added.len();
                println!("Added {n} account{}:", if n == 1 { "" } else { "s" });
                for a in &added {
                    println!("{}", account_line(a));
                }
            }
        }
        AccountCommand::List => {
            let mut vault = unlocked_vault(global, &mut passwords)?;
            let list = vault.accounts()?;
            if global.json {
                output::json(&Value::Array(list.iter().map(account_json).collect()));
            } else if list.is_empty() {
                println!("No accounts yet: pooya account add -  (then paste the otpauth:// URI)");
            } else {
                for a in &list {
                    println!("{}", account_line(a));
                }
            }
        }
        AccountCommand::Code { account } => {
            let mut vault = unlocked_vault(global, &mut passwords)?;
            let list = vault.accounts()?;
            let a = find(&list, account)?;
            let code = vault.account_code(a.id)?;
            if global.json {
                output::json(&json!({
                    "id": a.id,
                    "code": code.code.as_str(),
                    "seconds_left": code.seconds_left,
                    "valid_until": code.valid_until,
                    "counter": code.counter,
                }));
            } else {
                println!("{}", code.code.as_str());
                match (code.seconds_left, code.counter) {
                    (Some(left), _) => println!("{}: {left} s left", label(a)),
                    (None, Some(c)) => println!(
                        "{}: HOTP counter {c} (the next code uses {})",
                        label(a),
                        c.saturating_add(1)
                    ),
                    (None, None) => println!("{}", label(a)),
                }
            }
        }
        AccountCommand::Rename { account, name } => {
            let mut vault = unlocked_vault(global, &mut passwords)?;
            let list = vault.accounts()?;
            let id = find(&list, account)?.id;
            vault.rename_account(id, name)?;
            let renamed = vault
                .accounts()?
                .into_iter()
                .find(|a| a.id == id)
                .ok_or(CoreError::AccountNotFound)?;
            if global.json {
                output::json(&account_json(&renamed));
            } else {
                println!("Account {id} is now {}", label(&renamed));
            }
        }
        AccountCommand::Remove { account } => {
            let mut vault = unlocked_vault(global, &mut passwords)?;
            let list = vault.accounts()?;
            let a = find(&list, account)?;
            let password = passwords.password()?;
            with_spinner("Checking the password (Argon2id)…", || {
                vault.remove_account(a.id, &password)
            })?;
            if global.json {
                output::json(&json!({"removed": a.id}));
            } else {
                println!("Removed account {} {} from this vault.", a.id, label(a));
            }
        }
        AccountCommand::Export => {
            let mut vault = unlocked_vault(global, &mut passwords)?;
            let password = passwords.password()?;
            let uris = with_spinner("Checking the password (Argon2id)…", || {
                vault.export_accounts(&password)
            })?;
            if global.json {
                output::json(&json!({
                    "uris": uris.iter().map(|u| u.as_str()).collect::<Vec<_>>()
                }));
            } else {
                for u in &uris {
                    println!("{}", u.as_str());
                }
                eprintln!(
                    "pooya: exported {} account(s); these URIs contain the secrets (bank cards are never exported)",
                    uris.len()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use pooya_protocol::HashAlgorithm;

    use super::*;

    fn rec(id: i64, issuer: &str, name: &str) -> AccountRecord {
        AccountRecord {
            id,
            kind: OtpKind::Totp { period: 30 },
            issuer: issuer.to_owned(),
            name: name.to_owned(),
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            added_at: 0,
        }
    }

    #[test]
    fn selectors_find_names_then_ids() {
        let list = [
            rec(1, "GitHub", "alice"),
            rec(2, "GitLab", "alice"),
            rec(3, "", "bob"),
            rec(4, "", "1"),
        ];
        // (selector, the id found or the error code)
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("GitHub:alice", Ok(1)),
            ("GitLab:alice", Ok(2)),
            ("alice", Err("ambiguous_account")),
            ("bob", Ok(3)),
            (" bob ", Ok(3)),
            ("2", Ok(2)),
            // A name wins over an id.
            ("1", Ok(4)),
            ("9", Err("account_not_found")),
            ("carol", Err("account_not_found")),
            ("", Err("account_not_found")),
            ("GitHub:bob", Err("account_not_found")),
        ];
        for (selector, want) in cases {
            let got = find(&list, selector).map(|a| a.id).map_err(|e| e.code);
            assert_eq!(got, want.map_err(str::to_owned), "{selector:?}");
        }
    }

    #[test]
    fn add_parses_both_uri_forms_and_refuses_the_rest() {
        let one =
            parse("otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "alice");
        let export = pooya_protocol::otpauth::encode_migration_payload(&[
            one[0].clone(),
            OtpAccount::from_uri("otpauth://hotp/bob?secret=JBSWY3DPEHPK3PXP&counter=5").unwrap(),
        ])
        .unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(export);
        let data: String = b64
            .chars()
            .map(|c| match c {
                '+' => "%2B".to_owned(),
                '/' => "%2F".to_owned(),
                '=' => "%3D".to_owned(),
                c => c.to_string(),
            })
            .collect();
        let two = parse(&format!("OTPAUTH-MIGRATION://offline?data={data}")).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].kind, OtpKind::Hotp { counter: 5 });
        assert_eq!(parse("  ").unwrap_err().code, "usage");
        assert_eq!(
            parse("otpauth://totp/alice?secret=JBSWY3DPEHPK3PX")
                .unwrap_err()
                .code,
            "invalid_input"
        );
    }
}
