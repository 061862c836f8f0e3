//! `pooya`: the desktop shell of the Pooya phone core.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod oath;

/// Pooya: dynamic PINs for bank cards.
#[derive(Debug, Parser)]
#[command(name = "pooya", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// OATH diagnostics (HOTP, TOTP, OCRA), like oathtool.
    #[command(subcommand)]
    Oath(oath::OathCommand),
}

/// Prints a one-line error and returns the failure exit code.
fn fail(message: &str) -> ExitCode {
    eprintln!("pooya: {message}");
    ExitCode::FAILURE
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
            return fail(line.trim_start_matches("error: "));
        }
    };
    match cli.command {
        Command::Oath(cmd) => match oath::run(&cmd) {
            Ok(code) => {
                println!("{code}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("{e} [{}]", e.code())),
        },
    }
}
