//! `pooya-harim`: the Central Bank's Harim router (docs/harim.md).
//!
//!     pooya-harim serve --config /etc/pooya/harim.json [--listen IP:PORT]
//!     pooya-harim check --config /etc/pooya/harim.json
//!
//! SIGHUP reloads the settings file; SIGTERM or Ctrl-C stop it after the
//! open requests. Errors end in `error [code]: message`, exit status 1.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pooya_harim::{HarimConfig, HarimError, Settings};

#[derive(Parser)]
#[command(
    name = "pooya-harim",
    about = "Harim: routes gateways' dynamic-PIN requests to the card's issuing bank"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until SIGTERM; SIGHUP reloads the settings.
    Serve {
        /// The settings file (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Listen here instead of the file's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Check a settings file (secrets included) and print what it routes.
    Check {
        /// The settings file (JSON).
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error [{}]: {e}", e.code());
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), HarimError> {
    match cli.command {
        Command::Check { config } => {
            let settings = Settings::from_file(&config)?;
            let n = pooya_harim::check_settings(&settings)?;
            println!(
                "ok: {} issuers, {} gateways, {} BIN prefixes",
                n.issuers, n.gateways, n.bins
            );
            Ok(())
        }
        Command::Serve { config, listen } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| HarimError::Server(e.to_string()))?;
            rt.block_on(async move {
                let mut cfg = HarimConfig::new(config);
                cfg.listen = listen;
                let handle = pooya_harim::serve(cfg).await?;
                println!("listening on {}", handle.local_addr());
                serve_until_stopped(&handle).await;
                handle.shutdown().await
            })
        }
    }
}

async fn serve_until_stopped(handle: &pooya_harim::HarimHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // The outcome is logged by the reload itself.
                let _ = handle.reload();
            }
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
        }
    }
}
