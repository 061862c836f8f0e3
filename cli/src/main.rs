//! `pooya`: the desktop shell of the Pooya phone core. It stands in for
//! the phone app on a computer: a vault file, activation over HTTP, caps
//! and offline PINs; `pooya demo` runs the whole story against an
//! in-process bank; `pooya oath` is the OATH diagnostic (docs/phone.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

// Every command prints through these, not std's: `println!` panics when
// standard output is a closed pipe (`pooya pin first 0001 | head -c1`).
// Defined before the modules so they shadow std's macros in all of them.
/// `println!` through [`output::out`]: a closed pipe ends the command
/// quietly instead of panicking.
macro_rules! println {
    () => {
        $crate::output::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`output::out`].
#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::out(format_args!($($arg)*))
    };
}

/// `eprintln!` through [`output::err`]: a closed standard error is
/// ignored instead of panicking.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::output::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod accounts;
mod app;
mod demo;
mod oath;
mod output;
mod secret;
mod transport;

/// Pooya: dynamic PINs for bank cards.
#[derive(Debug, Parser)]
#[command(name = "pooya", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options accepted anywhere on the line.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The vault file (default: pooya/vault.db under the user's data
    /// directory). Its device key file is PATH.devkey.
    #[arg(long, global = true, value_name = "PATH")]
    vault: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Read the app password as one line from standard input instead of
    /// the terminal (for `init`, the new password).
    #[arg(long, global = true)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the vault, choose the app password and set the phone number.
    Init(InitArgs),
    /// Banks (issuers) this phone trusts.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Cards: add with the SMS activation code, list, rename, remove.
    #[command(subcommand)]
    Card(CardCommand),
    /// Transaction caps of second PINs.
    #[command(subcommand)]
    Cap(CapCommand),
    /// Dynamic PINs, offline.
    #[command(subcommand)]
    Pin(PinCommand),
    /// The bank's clock: sync it (signed), or show what PINs use.
    #[command(subcommand)]
    Time(TimeCommand),
    /// Everything the bank can tell this phone, signed: its time, the
    /// removals it was not told of yet, and each card's state.
    Sync {
        /// The bank; every stored bank when left out.
        issuer: Option<String>,
    },
    /// Lock the vault (explains why there is nothing to lock between
    /// commands).
    Lock,
    /// The vault's state, without the password.
    Status,
    /// The whole story against an in-process bank: enrollment at an ATM,
    /// SMS, activation, caps, PINs and the bank's verdicts.
    Demo,
    /// OATH diagnostics (HOTP, TOTP, OCRA), like oathtool.
    #[command(subcommand)]
    Oath(oath::OathCommand),
    /// Standard OTP accounts (otpauth:// URIs, Google Authenticator
    /// exports) beside the cards: add, list, code, rename, remove, export.
    #[command(subcommand)]
    Account(accounts::AccountCommand),
}

/// KDF settings for a new vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KdfChoice {
    /// Argon2id 64 MiB, 12 passes (about half a second).
    Default,
    /// Argon2id at the accepted floor, 19 MiB, 2 passes: fast, for tests
    /// and throw-away vaults.
    Floor,
}

/// `pooya init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The mobile number registered at the ATM (09…, +989…, Persian digits).
    #[arg(long)]
    phone: String,
    /// Password KDF strength.
    #[arg(long, value_enum, default_value_t = KdfChoice::Default)]
    kdf: KdfChoice,
}

/// `pooya issuer …`.
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Trust a bank: its API URL, its Ed25519 public key and its
    /// activation key (both from `pooya-issuer init --json`).
    Add {
        /// A short unique name, e.g. mellat.
        name: String,
        /// The bank's API base URL (https://, or http:// on 127.0.0.1).
        #[arg(long)]
        url: String,
        /// The bank's Ed25519 public key, 64 hex digits.
        #[arg(long)]
        public_key: String,
        /// The bank's activation key (P-256, SEC1 uncompressed), 130 hex
        /// digits: activation requests are sealed to it.
        #[arg(long)]
        activation_key: String,
    },
    /// The banks this phone trusts.
    List,
}

/// `pooya card …`.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Activate a card with the code the bank sent by SMS.
    Add {
        /// The activation code from the SMS (Persian digits, spaces and
        /// dashes are fine). Left out, it is asked for at a prompt without
        /// echo (or read as the first line of standard input when that is
        /// not a terminal), so it stays out of shell history and `ps`.
        code: Option<String>,
        /// The first part of a two-channel code, as the ATM showed it (the
        /// SMS then carries the rest).
        #[arg(long)]
        atm_code: Option<String>,
        /// The bank; needed when more than one is stored.
        #[arg(long)]
        issuer: Option<String>,
        /// A label for the card (default: bank and last four digits).
        #[arg(long)]
        label: Option<String>,
        /// This device's name as the bank will see it.
        #[arg(long, default_value = "pooya desktop")]
        device_label: String,
    },
    /// The cards on this phone.
    List,
    /// Rename a card.
    Rename {
        /// Card id or last four digits.
        card: String,
        /// The new label.
        label: String,
    },
    /// Remove a card from this phone (needs the password) and tell the
    /// bank; if it cannot be reached, the next `pooya sync` tells it.
    Remove {
        /// Card id or last four digits.
        card: String,
    },
    /// Each card's state as the bank last signed it (offline; `pooya
    /// sync` asks the bank), and the removals the bank was not told of.
    Status {
        /// Only this card (id or last four digits).
        card: Option<String>,
    },
}

/// `pooya cap …`.
#[derive(Debug, Subcommand)]
pub enum CapCommand {
    /// Set a card's cap in Rials: rounded down to the bank's tiers;
    /// raising needs the password, lowering does not.
    Set {
        /// Card id or last four digits.
        card: String,
        /// The cap in Rials (`20000000`, `20,000,000`, Persian digits).
        amount: String,
    },
    /// Every card's cap and the tiers it can take.
    Show {
        /// Only this card (id or last four digits).
        card: Option<String>,
    },
}

/// Options shared by the `pin` commands.
#[derive(Debug, Clone, Args)]
pub struct PinOpts {
    /// Keep showing the current PIN with a live countdown (Ctrl-C stops;
    /// stops by itself after the vault's idle timeout, 5 minutes).
    #[arg(long)]
    watch: bool,
}

/// `pooya time …` (docs/phone.md, "Time that stays right").
#[derive(Debug, Subcommand)]
pub enum TimeCommand {
    /// Ask the bank for its signed time and record it against the boot
    /// clock, so offline PINs ignore a wrong phone clock.
    Sync {
        /// The bank; needed when more than one is stored.
        issuer: Option<String>,
    },
    /// The bank time PINs are made with, and whether to sync.
    Status {
        /// The bank; needed when more than one is stored.
        issuer: Option<String>,
    },
}

/// `pooya pin …`.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// First dynamic PIN (ATM, POS).
    First {
        /// Card id or last four digits.
        card: String,
        /// `--watch`.
        #[command(flatten)]
        opts: PinOpts,
    },
    /// Second dynamic PIN (online payments, card-to-card, bills).
    Second {
        /// Card id or last four digits.
        card: String,
        /// A lower cap for this PIN, in Rials (never above the card's).
        #[arg(long)]
        cap: Option<String>,
        /// `--watch`.
        #[command(flatten)]
        opts: PinOpts,
    },
    /// Second dynamic PIN bound to one transaction: its type, exact
    /// amount and payee, typed (`--type --amount --payee`) or scanned from
    /// a payment page's QR code (`--request pooya:pay?…`).
    Tx {
        /// Card id or last four digits.
        card: String,
        /// The transaction type: purchase, transfer (card to card) or bill.
        #[arg(
            long = "type",
            value_name = "TYPE",
            required_unless_present = "request"
        )]
        tx_type: Option<String>,
        /// The exact amount in Rials.
        #[arg(long, required_unless_present = "request")]
        amount: Option<String>,
        /// The payee (merchant or destination card id as the bank shows it).
        #[arg(long, required_unless_present = "request")]
        payee: Option<String>,
        /// A payment request URI (`pooya:pay?amount=…&payee=…&name=…&type=…&expires=…`,
        /// what a payment page's QR code holds): shows what it pays, then
        /// the PIN for exactly it.
        #[arg(long, value_name = "URI", conflicts_with_all = ["tx_type", "amount", "payee"])]
        request: Option<String>,
        /// `--watch`.
        #[command(flatten)]
        opts: PinOpts,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, not clap's usage block.
            let text = e.to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("pooya: {}", line.trim_start_matches("error: "));
            return ExitCode::FAILURE;
        }
    };
    let json = cli.global.json;
    let result = match cli.command {
        // `oath` keeps its own output: the code alone, errors on stderr.
        Command::Oath(cmd) => {
            return match oath::run(&cmd) {
                Ok(code) => {
                    println!("{code}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("pooya: {e} [{}]", e.code());
                    ExitCode::FAILURE
                }
            };
        }
        Command::Demo => demo::run_cli(&cli.global),
        Command::Init(args) => app::init(&cli.global, &args),
        Command::Issuer(cmd) => app::issuer(&cli.global, &cmd),
        Command::Card(cmd) => app::card(&cli.global, &cmd),
        Command::Cap(cmd) => app::cap(&cli.global, &cmd),
        Command::Pin(cmd) => app::pin(&cli.global, &cmd),
        Command::Time(cmd) => app::time(&cli.global, &cmd),
        Command::Sync { issuer } => app::sync(&cli.global, issuer.as_deref()),
        Command::Lock => app::lock(&cli.global),
        Command::Status => app::status(&cli.global),
        Command::Account(cmd) => accounts::run(&cli.global, &cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(json, &e);
            ExitCode::FAILURE
        }
    }
}
