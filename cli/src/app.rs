//! The phone commands: `init`, `issuer`, `card`, `cap`, `pin`, `lock`,
//! `status`.
//!
//! Sessions: the CLI is a new process for every command, so nothing stays
//! unlocked between commands. Each command that needs the vault's contents
//! opens it (no KDF), reads the password (terminal or `--password-stdin`),
//! unlocks it (Argon2id, with a spinner), does its work, and exits; the
//! data key and card keys are wiped when the process ends. Operations the
//! phone app guards with the password again (raising a cap, removing a
//! card) use the password typed for that same command.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pooya_core::BankNotice;
use pooya_core::hooks::SystemClock;
use pooya_core::protocol::card_request::AppStatus;
use pooya_core::{
    CardView, CoreError, KdfParams, KeyFileKeystore, Phone, PinView, Vault, VaultConfig,
};
use pooya_protocol::{
    join_activation_code, normalize_activation_code, normalize_phone, parse_amount,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::output::{self, CliError, clock_utc, rials};
use crate::secret::{PasswordSource, with_spinner};
use crate::transport::UreqTransport;
use crate::{
    CapCommand, CardCommand, Global, InitArgs, IssuerCommand, KdfChoice, PinCommand, TimeCommand,
};

/// What to do with a wiped vault (the error and `status` say it).
const WIPED_HINT: &str = "the vault was wiped after too many wrong passwords: start over with \
     `pooya init --phone 09…` (it replaces the wiped vault), then activate your cards again";

/// The device label used when a command does not name one.
const DEFAULT_DEVICE_LABEL: &str = "pooya desktop";

/// The vault path: `--vault`, else `pooya/vault.db` under the user's data
/// directory.
pub fn vault_path(global: &Global) -> Result<PathBuf, CliError> {
    if let Some(p) = &global.vault {
        return Ok(p.clone());
    }
    dirs::data_dir()
        .map(|d| d.join("pooya").join("vault.db"))
        .ok_or_else(|| {
            CliError::new(
                "usage",
                "no user data directory on this system: use --vault PATH",
            )
        })
}

fn keystore(path: &Path) -> Arc<KeyFileKeystore> {
    Arc::new(KeyFileKeystore::beside(path))
}

fn open_vault(path: &Path) -> Result<Vault, CliError> {
    Vault::open(
        path,
        keystore(path),
        None,
        Arc::new(SystemClock),
        VaultConfig::default(),
    )
    .map_err(|e| match e {
        CoreError::NoVault => CliError::new(
            "no_vault",
            format!(
                "no vault at {}: create one with `pooya init --phone 09…`",
                path.display()
            ),
        ),
        other => other.into(),
    })
}

/// Opens and unlocks the vault (the password from `passwords`).
pub(crate) fn unlocked_vault(
    global: &Global,
    passwords: &mut PasswordSource,
) -> Result<Vault, CliError> {
    let path = vault_path(global)?;
    let mut vault = open_vault(&path)?;
    let password = passwords.password()?;
    with_spinner("Unlocking the vault (Argon2id)…", || {
        vault.unlock_with_password(&password)
    })
    .map_err(|e| match e {
        CoreError::Wiped => CliError::new("wiped", WIPED_HINT),
        other => other.into(),
    })?;
    Ok(vault)
}

/// Opens and unlocks the vault and wraps it in a [`Phone`].
fn open_phone(
    global: &Global,
    passwords: &mut PasswordSource,
    device_label: &str,
) -> Result<Phone, CliError> {
    let vault = unlocked_vault(global, passwords)?;
    Ok(Phone::new(vault, Arc::new(UreqTransport), device_label)?)
}

fn create_parent(path: &Path) -> Result<(), CliError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(parent).map_err(|e| {
        CliError::new(
            "io",
            format!("cannot create {}: {}", parent.display(), e.kind()),
        )
    })
}

/// `pooya init --phone PHONE [--kdf floor]`.
pub fn init(global: &Global, args: &InitArgs) -> Result<(), CliError> {
    let path = vault_path(global)?;
    let phone = normalize_phone(&args.phone)?;
    // An existing vault is replaced only when it was wiped (nothing is
    // left in it); any other finished vault is refused.
    let replace_wiped = match open_vault(&path) {
        Ok(existing) if existing.status()?.wiped => true,
        Ok(_) => return Err(CoreError::VaultExists.into()),
        Err(e) if e.code == "no_vault" => false,
        Err(e) => return Err(e),
    };
    let kdf = match args.kdf {
        KdfChoice::Default => KdfParams::DEFAULT,
        KdfChoice::Floor => KdfParams::FLOOR,
    };
    let mut passwords = PasswordSource::new(global.password_stdin);
    let password = passwords.new_password()?;
    pooya_core::vault::password::check_strength(&password).map_err(CoreError::WeakPassword)?;
    if replace_wiped {
        Vault::destroy(&path)?;
    }
    create_parent(&path)?;
    let mut vault = with_spinner("Creating the vault (Argon2id)…", || {
        Vault::create(
            &path,
            &password,
            keystore(&path),
            None,
            Arc::new(SystemClock),
            VaultConfig::with_kdf(kdf),
        )
    })?;
    vault.set_phone(&phone)?;
    let key_file = KeyFileKeystore::beside(&path).path().to_owned();
    if global.json {
        output::json(&json!({
            "vault": path,
            "device_key_file": key_file,
            "phone": phone,
            "replaced_wiped_vault": replace_wiped,
            "kdf": {"memory_kib": kdf.memory_kib(), "iterations": kdf.iterations(), "parallelism": kdf.parallelism()},
        }));
    } else {
        if replace_wiped {
            println!(
                "Replaced the vault wiped after too many wrong passwords (its cards are gone)"
            );
        }
        println!("Created the vault at {}", path.display());
        println!("Phone number: {phone}");
        println!(
            "Password KDF: Argon2id, {} MiB, {} passes",
            kdf.memory_kib() / 1024,
            kdf.iterations()
        );
        println!(
            "Device key file: {} (keep it with the vault; it is weaker than a phone's hardware keystore)",
            key_file.display()
        );
        println!("Next: pooya issuer add NAME --url URL --public-key KEY");
    }
    Ok(())
}

fn issuer_json(i: &pooya_core::IssuerView) -> Value {
    json!({
        "name": i.name,
        "url": i.base_url,
        "public_key": i.public_key_hex,
        "activation_key": i.activation_key_hex,
        "time_offset_secs": i.time_offset_secs,
    })
}

/// `pooya issuer …`.
pub fn issuer(global: &Global, cmd: &IssuerCommand) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    match cmd {
        IssuerCommand::Add {
            name,
            url,
            public_key,
            activation_key,
        } => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let i = phone.add_issuer(name, url, public_key, activation_key)?;
            if global.json {
                output::json(&issuer_json(&i));
            } else {
                println!("Added issuer {} at {}", i.name, i.base_url);
                println!("Pinned key: {}", i.public_key_hex);
            }
        }
        IssuerCommand::List => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let list = phone.issuers()?;
            if global.json {
                output::json(&Value::Array(list.iter().map(issuer_json).collect()));
            } else if list.is_empty() {
                println!("No issuers yet: pooya issuer add NAME --url URL --public-key KEY");
            } else {
                for i in &list {
                    println!(
                        "{}  {}  key {}…  clock offset {:+} s",
                        i.name,
                        i.base_url,
                        &i.public_key_hex[..16],
                        i.time_offset_secs
                    );
                }
            }
        }
    }
    Ok(())
}

fn card_json(c: &CardView) -> Value {
    json!({
        "id": c.id,
        "issuer": c.issuer,
        "label": c.label,
        "masked_pan": c.masked_pan,
        "last4": c.last4,
        "bank_name_fa": c.bank_name_fa,
        "bank_name_en": c.bank_name_en,
        "cap": c.cap,
        "cap_ladder": c.cap_ladder,
        "added_at": c.added_at,
        "app_status": c.app_status.as_str(),
        "status_checked_at": c.status_checked_at,
    })
}

fn card_line(c: &CardView) -> String {
    format!(
        "{:>3}  {}  {:<24} {:<20} cap {} Rials  ({}){}",
        c.id,
        c.masked_pan,
        c.label,
        c.bank_name_en,
        rials(c.cap),
        c.issuer,
        match state_note(c.app_status) {
            Some(note) => format!("  [{}: {note}]", c.app_status.as_str()),
            None => String::new(),
        }
    )
}

/// Reads an activation code that was not on the command line: at a
/// prompt without echo on a terminal, else the first line of standard
/// input (before the password line of `--password-stdin`).
fn read_code(prompt: &str) -> Result<Zeroizing<String>, CliError> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|_| CliError::new("no_terminal", "cannot read the code from the terminal"));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::new("io", format!("cannot read standard input: {}", e.kind())))?;
    let code = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned());
    if code.trim().is_empty() {
        return Err(CliError::new(
            "usage",
            "no activation code: give it on the command line, at the prompt, or as the first line of standard input",
        ));
    }
    Ok(code)
}

/// `pooya card …`.
pub fn card(global: &Global, cmd: &CardCommand) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    match cmd {
        CardCommand::Add {
            code,
            atm_code,
            issuer,
            label,
            device_label,
        } => {
            let typed = match code {
                Some(c) => Zeroizing::new(c.clone()),
                None => read_code(if atm_code.is_some() {
                    "The code from the SMS (second part): "
                } else {
                    "Activation code from the SMS: "
                })?,
            };
            // A typo is caught here, before the password and the network.
            let invalid = |e: pooya_protocol::ProtocolError| {
                let reason = match &e {
                    pooya_protocol::ProtocolError::InvalidField { reason, .. } => *reason,
                    _ => "not an activation code",
                };
                CliError::from(CoreError::InvalidActivationCode(reason))
            };
            let code = Zeroizing::new(match atm_code {
                Some(atm) => join_activation_code(atm, &typed).map_err(invalid)?,
                None => normalize_activation_code(&typed).map_err(invalid)?,
            });
            let mut phone = open_phone(global, &mut passwords, device_label)?;
            let issuer = pick_issuer(&mut phone, issuer.as_deref(), "--issuer NAME")?;
            let added = with_spinner("Activating with the bank…", || {
                phone.add_card(&issuer, &code, label.as_deref())
            })?;
            if global.json {
                let mut v = card_json(&added.card);
                v["replaced"] = json!(added.replaced);
                v["time_offset_secs"] = json!(added.time_offset_secs);
                output::json(&v);
            } else {
                let c = &added.card;
                println!(
                    "Added card {} {} ({}, {}), id {}",
                    c.label, c.masked_pan, c.bank_name_en, c.bank_name_fa, c.id
                );
                println!(
                    "Cap: {} Rials (the lowest tier; raise it with `pooya cap set {} AMOUNT`)",
                    rials(c.cap),
                    c.last4
                );
                println!(
                    "Bank clock offset: {:+} s (applied to every PIN)",
                    added.time_offset_secs
                );
                if let Some(old) = added.replaced {
                    println!(
                        "This card was already on this phone (id {old}): the new activation replaced it."
                    );
                }
            }
        }
        CardCommand::List => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let cards = phone.cards()?;
            if global.json {
                output::json(&Value::Array(cards.iter().map(card_json).collect()));
            } else if cards.is_empty() {
                println!("No cards yet: pooya card add CODE");
            } else {
                for c in &cards {
                    println!("{}", card_line(c));
                }
            }
        }
        CardCommand::Rename { card, label } => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let id = phone.find_card(card)?.id;
            let c = phone.rename_card(id, label)?;
            if global.json {
                output::json(&card_json(&c));
            } else {
                println!("Card {} is now called {}", c.id, c.label);
            }
        }
        CardCommand::Remove { card } => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let c = phone.find_card(card)?;
            let password = passwords.password()?;
            let removal = with_spinner("Removing the card and telling the bank…", || {
                phone.remove_card(c.id, &password)
            })?;
            if global.json {
                let mut v = json!({
                    "removed": c.id,
                    "bank_told": removal.notice.told(),
                });
                notice_json(&mut v, &removal.notice);
                output::json(&v);
            } else {
                println!("Removed card {} {} from this phone.", c.label, c.masked_pan);
                println!("{}", notice_line(&removal.notice, &c.issuer));
            }
        }
        CardCommand::Status { card } => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let cards = match card {
                Some(sel) => vec![phone.find_card(sel)?],
                None => phone.cards()?,
            };
            let pending = phone.pending_removals()?;
            if global.json {
                output::json(&json!({
                    "cards": cards.iter().map(card_json).collect::<Vec<_>>(),
                    "pending_removals": pending
                        .iter()
                        .map(|(_, issuer, card_id)| json!({"issuer": issuer, "card_id": card_id}))
                        .collect::<Vec<_>>(),
                }));
            } else {
                for c in &cards {
                    let checked = c.status_checked_at.map_or("never synced".to_owned(), |t| {
                        format!("as of bank time {t}")
                    });
                    println!(
                        "{:>3}  {}  {}  {} ({checked}){}",
                        c.id,
                        c.masked_pan,
                        c.label,
                        c.app_status.as_str(),
                        state_note(c.app_status).map_or(String::new(), |n| format!(": {n}"))
                    );
                }
                if !pending.is_empty() {
                    println!(
                        "{} removal(s) the bank was not told of yet: pooya sync",
                        pending.len()
                    );
                }
            }
        }
    }
    Ok(())
}

/// `pooya cap …`.
pub fn cap(global: &Global, cmd: &CapCommand) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    match cmd {
        CapCommand::Set { card, amount } => {
            let amount = parse_amount(amount).map_err(pooya_protocol::ProtocolError::from)?;
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let c = phone.find_card(card)?;
            // Raising needs the password again: the one typed for this
            // command (the CLI has no session to re-authenticate in).
            let password = passwords.password()?;
            let change = with_spinner("Setting the cap…", || {
                phone.set_cap(c.id, amount, Some(&password))
            })?;
            if global.json {
                output::json(&json!({
                    "card": c.id,
                    "previous": change.previous,
                    "requested": change.requested,
                    "cap": change.cap,
                    "rounded_down": change.rounded_down(),
                }));
            } else {
                let verb = match change.cap.cmp(&change.previous) {
                    std::cmp::Ordering::Greater => "raised",
                    std::cmp::Ordering::Less => "lowered",
                    std::cmp::Ordering::Equal => "kept",
                };
                println!(
                    "Cap of {} {} {verb}: {} Rials (was {}).",
                    c.label,
                    c.masked_pan,
                    rials(change.cap),
                    rials(change.previous)
                );
                if change.rounded_down() {
                    println!(
                        "You asked for {} Rials: caps are the bank's tiers, so it was rounded down to {}.",
                        rials(change.requested),
                        rials(change.cap)
                    );
                }
            }
        }
        CapCommand::Show { card } => {
            let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
            let cards = match card {
                Some(sel) => vec![phone.find_card(sel)?],
                None => phone.cards()?,
            };
            if global.json {
                output::json(&Value::Array(
                    cards
                        .iter()
                        .map(|c| json!({"card": c.id, "last4": c.last4, "cap": c.cap, "tiers": c.cap_ladder}))
                        .collect(),
                ));
            } else if cards.is_empty() {
                println!("No cards yet: pooya card add CODE");
            } else {
                for c in &cards {
                    let tiers: Vec<String> = c
                        .cap_ladder
                        .iter()
                        .map(|t| {
                            if *t == c.cap {
                                format!("[{}]", rials(*t))
                            } else {
                                rials(*t)
                            }
                        })
                        .collect();
                    println!(
                        "{:>3}  {}  cap {} Rials   tiers: {}",
                        c.id,
                        c.masked_pan,
                        rials(c.cap),
                        tiers.join("  ")
                    );
                }
            }
        }
    }
    Ok(())
}

fn pin_json(p: &PinView) -> Value {
    json!({
        "card": p.card_id,
        "kind": p.kind.as_str(),
        "code": p.code,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "seconds_left": p.seconds_left,
        "step_secs": p.step_secs,
        "bank_time": p.issuer_time,
        "cap": p.cap,
        "requested_cap": p.requested_cap,
        "amount": p.amount,
        "payee": p.payee,
        "type": p.tx_type.map(|t| t.as_str()),
    })
}

/// What `pooya pin tx` binds: typed, or a scanned payment request.
enum TxInput {
    Typed(pooya_protocol::TxType, u64, String),
    Request(String),
}

// Issue 13, payment QR codes: what the app shows for a scanned request.
fn payment_json(v: &pooya_protocol::PaymentView) -> Value {
    json!({
        "amount": v.amount,
        "amount_latin": v.amount_latin,
        "amount_fa": v.amount_fa,
        "payee": v.payee,
        "payee_name": v.payee_name,
        "type": v.tx_type.as_str(),
        "type_name_fa": v.tx_type.name_fa(),
        "type_name_en": v.tx_type.name_en(),
        "seconds_left": v.seconds_left,
    })
}

fn payment_details(v: &pooya_protocol::PaymentView) -> String {
    // The name is isolated (UAX #9 §2.7) beside the left-to-right id.
    format!(
        "{} ({}): {} ریال ({} Rials) to \u{2068}{}\u{2069} ({}), {} s left",
        v.tx_type.name_fa(),
        v.tx_type.name_en(),
        v.amount_fa,
        v.amount_latin,
        v.payee_name,
        v.payee,
        v.seconds_left
    )
}

fn pin_details(p: &PinView, c: &CardView) -> String {
    let what = match (p.kind, p.cap, p.amount, &p.payee) {
        (pooya_protocol::PinKind::First, ..) => "first PIN (ATM, POS)".to_owned(),
        (pooya_protocol::PinKind::Transaction, _, Some(a), Some(payee)) => {
            let t = p.tx_type.map_or("transaction", |t| t.name_en());
            format!("{t} PIN for exactly {} Rials to {payee}", rials(a))
        }
        (_, Some(cap), ..) => format!("second PIN, up to {} Rials", rials(cap)),
        _ => "PIN".to_owned(),
    };
    let mut s = format!(
        "{what}, card {} {}: {} s left (valid until {} UTC, bank time)",
        c.label,
        c.masked_pan,
        p.seconds_left,
        clock_utc(p.valid_until)
    );
    if let (Some(req), true) = (p.requested_cap, p.cap_adjusted()) {
        s.push_str(&format!(
            "\nYou asked for {} Rials: limited to the card's cap and rounded down to a tier.",
            rials(req)
        ));
    }
    s
}

/// `pooya pin …`.
pub fn pin(global: &Global, cmd: &PinCommand) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    let (card, opts) = match cmd {
        PinCommand::First { card, opts }
        | PinCommand::Second { card, opts, .. }
        | PinCommand::Tx { card, opts, .. } => (card, opts),
    };
    // Amounts are checked before the password is asked for.
    let cap = match cmd {
        PinCommand::Second { cap: Some(c), .. } => {
            Some(parse_amount(c).map_err(pooya_protocol::ProtocolError::from)?)
        }
        _ => None,
    };
    let tx = match cmd {
        PinCommand::Tx {
            tx_type: Some(t),
            amount: Some(amount),
            payee: Some(payee),
            request: None,
            ..
        } => Some(TxInput::Typed(
            pooya_protocol::TxType::parse(t).map_err(|_| {
                CliError::new(
                    "invalid_type",
                    "--type must be purchase, transfer (card to card) or bill",
                )
            })?,
            parse_amount(amount).map_err(pooya_protocol::ProtocolError::from)?,
            pooya_protocol::pin::normalize_payee(payee)?.to_owned(),
        )),
        PinCommand::Tx {
            request: Some(uri), ..
        } => {
            // Parsed before the password is asked for; the expiry is
            // checked against the bank's time once the vault is open.
            pooya_protocol::PaymentRequest::parse(uri).map_err(pooya_core::CoreError::from)?;
            Some(TxInput::Request(uri.clone()))
        }
        PinCommand::Tx { .. } => {
            return Err(CliError::new(
                "usage",
                "pin tx needs --type, --amount and --payee, or --request",
            ));
        }
        _ => None,
    };
    let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
    let c = phone.find_card(card)?;
    // What a scanned request pays, shown before its PIN.
    let view = match &tx {
        Some(TxInput::Request(uri)) => {
            Some(phone.payment_view(c.id, uri, pooya_protocol::Language::Fa)?)
        }
        _ => None,
    };
    let mut make = |phone: &mut Phone| -> Result<PinView, CliError> {
        Ok(match (cmd, &tx) {
            (PinCommand::First { .. }, _) => phone.first_pin(c.id)?,
            (PinCommand::Second { .. }, _) => phone.second_pin(c.id, cap)?,
            (PinCommand::Tx { .. }, Some(TxInput::Typed(t, amount, payee))) => {
                phone.transaction_pin(c.id, *t, *amount, payee)?
            }
            (PinCommand::Tx { .. }, Some(TxInput::Request(uri))) => phone.payment_pin(c.id, uri)?,
            (PinCommand::Tx { .. }, None) => {
                return Err(CliError::new("usage", "--type, --amount and --payee"));
            }
        })
    };
    let first = make(&mut phone)?;
    warn_if_sync_advised(&mut phone, &c);
    if !opts.watch {
        if global.json {
            let mut v = pin_json(&first);
            if let Some(view) = &view {
                v["request"] = payment_json(view);
            }
            output::json(&v);
        } else {
            if let Some(view) = &view {
                println!("{}", payment_details(view));
            }
            println!("{}", first.code);
            println!("{}", pin_details(&first, &c));
        }
        return Ok(());
    }
    watch(global, &mut phone, &c, first, &mut make)
}

/// `--watch`: the current PIN with a countdown, until the vault's idle
/// timeout or Ctrl-C. On a terminal one line is redrawn; otherwise each
/// new code is printed once (as a JSON line with `--json`).
fn watch(
    global: &Global,
    phone: &mut Phone,
    card: &CardView,
    first: PinView,
    make: &mut dyn FnMut(&mut Phone) -> Result<PinView, CliError>,
) -> Result<(), CliError> {
    let tty = std::io::stdout().is_terminal() && !global.json;
    let limit = Duration::from_secs(phone.vault().config().idle_timeout_secs());
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let emit_new = |out: &mut std::io::StdoutLock<'_>, p: &PinView| {
        if global.json {
            let _ = writeln!(out, "{}", pin_json(p));
        } else if !tty {
            let _ = writeln!(out, "{}", p.code);
        }
        let _ = out.flush();
    };
    if tty {
        let _ = writeln!(out, "{}", pin_details(&first, card));
    }
    emit_new(&mut out, &first);
    let mut current = first;
    loop {
        if tty {
            let total = current.step_secs.max(1);
            let width = 30u64;
            let filled = (current.seconds_left.min(total) * width / total) as usize;
            let bar = format!(
                "{}{}",
                "█".repeat(filled),
                "░".repeat(width as usize - filled)
            );
            let _ = write!(
                out,
                "\r\x1b[2K{}  {bar} {:>3} s",
                current.code, current.seconds_left
            );
            let _ = out.flush();
        }
        if started.elapsed() >= limit {
            if tty {
                let _ = writeln!(out);
            }
            eprintln!("pooya: stopped watching after the vault's idle timeout");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
        let next = make(phone)?;
        if next.valid_from != current.valid_from || next.code != current.code {
            if tty {
                let _ = writeln!(out);
            }
            emit_new(&mut out, &next);
        }
        current = next;
    }
}

/// `pooya lock`.
pub fn lock(global: &Global) -> Result<(), CliError> {
    let path = vault_path(global)?;
    let mut vault = open_vault(&path)?;
    vault.lock();
    let st = vault.status()?;
    if global.json {
        output::json(&json!({
            "vault": path,
            "locked": st.locked,
            "session": "none",
            "note": "pooya keeps no session between commands; every command unlocks with the password and wipes the key when it exits",
        }));
    } else {
        println!("The vault at {} is locked.", path.display());
        println!(
            "pooya keeps no session between commands: each command unlocks the vault with your \
             password and the keys are wiped from memory when it exits, so there was nothing \
             unlocked to wipe now."
        );
    }
    Ok(())
}

/// `pooya status`: no password needed.
pub fn status(global: &Global) -> Result<(), CliError> {
    let path = vault_path(global)?;
    let key_file = KeyFileKeystore::beside(&path).path().to_owned();
    if !path.exists() {
        if global.json {
            output::json(&json!({"vault": path, "exists": false}));
        } else {
            println!(
                "No vault at {}: create one with `pooya init --phone 09…`",
                path.display()
            );
        }
        return Ok(());
    }
    let vault = open_vault(&path)?;
    let st = vault.status()?;
    if global.json {
        output::json(&json!({
            "vault": path,
            "exists": true,
            "device_key_file": key_file,
            "device_key_present": key_file.exists(),
            "locked": st.locked,
            "session": "none",
            "wiped": st.wiped,
            "phone_set": st.phone_set,
            "card_count": st.card_count,
            "failed_attempts": st.failed_attempts,
            "attempts_left": st.attempts_left,
            "lockout_seconds_left": st.lockout_seconds_left,
            "biometric_enabled": st.biometric_enabled,
        }));
        return Ok(());
    }
    println!("Vault: {}", path.display());
    println!(
        "Device key file: {} ({})",
        key_file.display(),
        if key_file.exists() {
            "present"
        } else {
            "MISSING: the vault cannot be unlocked without it"
        }
    );
    if st.wiped {
        println!("State: WIPED: {WIPED_HINT}");
        return Ok(());
    }
    println!("State: locked (no session between commands: every command asks for the password)");
    println!(
        "Phone number: {}",
        if st.phone_set { "set" } else { "not set" }
    );
    println!("Cards: {}", st.card_count);
    println!(
        "Wrong passwords: {} in a row; {} left before the vault is wiped",
        st.failed_attempts, st.attempts_left
    );
    if st.lockout_seconds_left > 0 {
        println!(
            "Locked out: next password attempt in {} s",
            st.lockout_seconds_left
        );
    }
    Ok(())
}

/// The issuer named, or the only one stored.
fn pick_issuer(phone: &mut Phone, named: Option<&str>, how: &str) -> Result<String, CliError> {
    if let Some(i) = named {
        return Ok(i.to_owned());
    }
    let all = phone.issuers()?;
    match all.as_slice() {
        [only] => Ok(only.name.clone()),
        [] => Err(CliError::new(
            "issuer_not_found",
            "no issuer stored: pooya issuer add NAME --url URL --public-key KEY --activation-key KEY",
        )),
        _ => Err(CliError::new(
            "usage",
            format!("several issuers are stored: say which with {how}"),
        )),
    }
}

// ---- pooya time (issue 13, item 1) -------------------------------------

fn bank_time_json(t: &pooya_core::BankTime) -> Value {
    json!({
        "bank_time": t.time,
        "source": t.source.as_str(),
        "wall_clock_drift_secs": t.wall_clock_drift_secs,
        "sync_advised": t.sync_advised,
    })
}

/// `pooya time sync|status`.
pub fn time(global: &Global, cmd: &TimeCommand) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
    match cmd {
        TimeCommand::Sync { issuer } => {
            let issuer = pick_issuer(&mut phone, issuer.as_deref(), "ISSUER")?;
            let got = with_spinner("Asking the bank for its time…", || {
                phone.sync_time(&issuer)
            })?;
            if global.json {
                output::json(&json!({
                    "issuer": got.issuer,
                    "server_time": got.server_time,
                    "time_offset_secs": got.time_offset_secs,
                    "previous_offset_secs": got.previous_offset_secs,
                    "boot_anchored": got.boot_anchored,
                }));
            } else {
                println!(
                    "Synced with {}: bank clock offset {:+} s (was {:+} s)",
                    got.issuer, got.time_offset_secs, got.previous_offset_secs
                );
                if got.boot_anchored {
                    println!(
                        "Recorded against the boot clock: offline PINs ignore the phone's clock until it restarts."
                    );
                } else {
                    println!(
                        "This device has no boot clock: PINs use the phone's clock plus the offset."
                    );
                }
            }
        }
        TimeCommand::Status { issuer } => {
            let issuer = pick_issuer(&mut phone, issuer.as_deref(), "ISSUER")?;
            let t = phone.time_status(&issuer)?;
            if global.json {
                let mut v = bank_time_json(&t);
                v["issuer"] = json!(issuer);
                output::json(&v);
            } else {
                println!("Bank time for {issuer}: {} ({})", t.time, t.source.as_str());
                if let Some(d) = t.wall_clock_drift_secs {
                    println!("The phone's clock is {d:+} s from the bank's.");
                }
                if t.sync_advised {
                    println!("Sync when online: pooya time sync {issuer}");
                }
            }
        }
    }
    Ok(())
}

/// Warns (on standard error) when a card's PINs use a time the host should
/// refresh.
fn warn_if_sync_advised(phone: &mut Phone, card: &CardView) {
    let Ok(t) = phone.time_status(&card.issuer) else {
        return;
    };
    if !t.sync_advised {
        return;
    }
    match t.wall_clock_drift_secs {
        Some(d) => eprintln!(
            "pooya: the phone's clock is {d:+} s from the bank's; PINs use the bank's time from the boot clock. Fix the clock, or sync: pooya time sync {}",
            card.issuer
        ),
        None => eprintln!(
            "pooya: PINs use the phone's clock (restarted since the last time sync); sync when online: pooya time sync {}",
            card.issuer
        ),
    }
}

// ---- a card's life (issue 13, item 2) --------------------------------

/// What the customer should know about a card in `status`, if anything.
fn state_note(status: AppStatus) -> Option<&'static str> {
    match status {
        AppStatus::Active => None,
        AppStatus::Suspended => Some("suspended by the bank, no PINs until it resumes"),
        AppStatus::Revoked => Some("deactivated, activate it again at an ATM"),
        AppStatus::OtherDevice => Some("active on another device, activate it again at an ATM"),
    }
}

fn notice_json(v: &mut Value, notice: &BankNotice) {
    match notice {
        BankNotice::Told(status) => v["bank_status"] = json!(status.as_str()),
        BankNotice::Forgotten => v["bank_status"] = json!("card_not_found"),
        BankNotice::Pending { reason } => {
            v["pending"] = json!(true);
            v["reason"] = json!(reason.code());
        }
    }
}

fn notice_line(notice: &BankNotice, issuer: &str) -> String {
    match notice {
        BankNotice::Told(AppStatus::OtherDevice) => {
            "The bank was told; the card is active on another device, which keeps it.".to_owned()
        }
        BankNotice::Told(status) => {
            format!(
                "The bank was told: the card's app is {} there.",
                status.as_str()
            )
        }
        BankNotice::Forgotten => "The bank was told: it no longer knows the card.".to_owned(),
        BankNotice::Pending { reason } => format!(
            "The bank was NOT told ({}); it will be at the next sync: pooya sync {issuer}",
            reason.code()
        ),
    }
}

/// `pooya sync [ISSUER]`: time, pending removals and card states of one
/// bank, or of every stored bank.
pub fn sync(global: &Global, issuer: Option<&str>) -> Result<(), CliError> {
    let mut passwords = PasswordSource::new(global.password_stdin);
    let mut phone = open_phone(global, &mut passwords, DEFAULT_DEVICE_LABEL)?;
    let issuers = match issuer {
        Some(name) => vec![name.to_owned()],
        None => phone.issuers()?.into_iter().map(|i| i.name).collect(),
    };
    let mut out = Vec::new();
    for name in &issuers {
        let got = with_spinner("Syncing with the bank…", || phone.sync(name))?;
        if global.json {
            let removals: Vec<Value> = got
                .removals
                .iter()
                .map(|r| {
                    let mut v = json!({"card_id": r.issuer_card_id, "bank_told": r.notice.told()});
                    notice_json(&mut v, &r.notice);
                    v
                })
                .collect();
            let cards: Vec<Value> = got
                .cards
                .iter()
                .map(|c| {
                    json!({"id": c.card_id, "previous": c.previous.as_str(),
                           "app_status": c.status.as_str(), "checked_at": c.checked_at})
                })
                .collect();
            out.push(json!({
                "issuer": name,
                "server_time": got.time.server_time,
                "time_offset_secs": got.time.time_offset_secs,
                "boot_anchored": got.time.boot_anchored,
                "removals": removals,
                "cards": cards,
                "unknown_cards": got.unknown_cards,
            }));
        } else {
            println!(
                "Synced with {name}: bank clock offset {:+} s",
                got.time.time_offset_secs
            );
            for r in &got.removals {
                println!(
                    "Removal of {}: {}",
                    r.issuer_card_id,
                    notice_line(&r.notice, name)
                );
            }
            for c in &got.cards {
                let card = phone.card(c.card_id)?;
                let change = if c.previous == c.status {
                    String::new()
                } else {
                    format!(" (was {})", c.previous.as_str())
                };
                println!(
                    "{:>3}  {}  {}  {}{change}{}",
                    card.id,
                    card.masked_pan,
                    card.label,
                    c.status.as_str(),
                    state_note(c.status).map_or(String::new(), |n| format!(": {n}"))
                );
            }
            for id in &got.unknown_cards {
                println!("{id:>3}  the bank does not know this card");
            }
        }
    }
    if global.json {
        output::json(&match issuer {
            Some(_) => out.into_iter().next().unwrap_or(Value::Null),
            None => Value::Array(out),
        });
    }
    Ok(())
}
