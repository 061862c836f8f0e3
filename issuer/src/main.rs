//! `pooya-issuer`: the bank's server. `init` prepares a data directory;
//! `serve` runs the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pooya_issuer::{InitOptions, IssuerError, ServerConfig, Settings};

#[derive(Parser)]
#[command(
    name = "pooya-issuer",
    version,
    about = "Pooya's bank side: enrollment, activation and dynamic-PIN verification"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database, the master key, the signing key and API tokens.
    Init {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// A PostgreSQL database (postgres://…; also POOYA_DATABASE_URL)
        /// instead of the SQLite file; the data directory then holds only
        /// the key file.
        #[arg(long)]
        database: Option<String>,
        /// With `sslmode=require` in the database URL: the database's
        /// certificate authorities (PEM file).
        #[arg(long)]
        database_ca: Option<PathBuf>,
        /// Where the keys live: `file` (master.key in the data directory)
        /// or `pkcs11` (generated inside a token, never leaving it).
        #[arg(long, value_enum, default_value_t = KeysArg::File)]
        keys: KeysArg,
        /// With `--keys pkcs11`: the PKCS#11 module (shared library).
        #[arg(long)]
        pkcs11_module: Option<PathBuf>,
        /// With `--keys pkcs11`: the token's label.
        #[arg(long)]
        pkcs11_token: Option<String>,
        /// With `--keys pkcs11`: a file holding the user PIN (mode 0600);
        /// otherwise POOYA_PKCS11_PIN. Recorded in keys.json by path for
        /// `serve` and `rotate-keys`.
        #[arg(long)]
        pkcs11_pin_file: Option<PathBuf>,
    },
    /// Serve the HTTP API.
    Serve {
        /// The data directory made by `init`.
        #[arg(long)]
        data: PathBuf,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// A JSON settings file (docs/issuer.md, "Settings").
        #[arg(long)]
        config: Option<PathBuf>,
        /// A PostgreSQL database (postgres://…; also POOYA_DATABASE_URL)
        /// shared by any number of `serve` processes.
        #[arg(long)]
        database: Option<String>,
        /// Also serve the demo payment page at /demo/pay (loopback only),
        /// calling the API with the gateway token from the environment
        /// variable POOYA_GATEWAY_TOKEN.
        #[arg(long)]
        demo_gateway: bool,
        /// Issue 14: with --demo-gateway, send the page's requests to Harim
        /// and read every bank's outbox, as this JSON file says
        /// (docs/issuer.md, "The demo gateway through Harim"; tokens from
        /// files or the environment, never here).
        #[arg(long, requires = "demo_gateway")]
        demo_harim: Option<PathBuf>,
    },
    /// Move every sealed value to a new master key version while the
    /// nodes keep serving, then retire the old version (docs/issuer.md,
    /// "Key rotation"). Prints a JSON report.
    RotateKeys {
        /// The data directory made by `init`.
        #[arg(long)]
        data: PathBuf,
        /// A PostgreSQL database (postgres://…; also POOYA_DATABASE_URL).
        #[arg(long)]
        database: Option<String>,
        /// The database's certificate authorities (PEM), with
        /// `sslmode=require`.
        #[arg(long)]
        database_ca: Option<PathBuf>,
        /// Only finish a rotation that stopped before retiring the old
        /// version.
        #[arg(long)]
        finish: bool,
        /// Seconds to wait for running nodes to adopt the new version
        /// (they re-read it every 2 s).
        #[arg(long, default_value_t = 6)]
        settle_secs: u64,
    },
}

/// `init --keys`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KeysArg {
    /// `master.key` in the data directory.
    File,
    /// A PKCS#11 token.
    Pkcs11,
}

/// Where `--database` may come from instead (keeps a password off the
/// command line).
const DATABASE_URL_VAR: &str = "POOYA_DATABASE_URL";

fn database_url(flag: Option<String>) -> Option<String> {
    flag.or_else(|| std::env::var(DATABASE_URL_VAR).ok())
        .filter(|u| !u.trim().is_empty())
}

/// Where `serve --demo-gateway` reads the gateway token.
const GATEWAY_TOKEN_VAR: &str = "POOYA_GATEWAY_TOKEN";

fn run(cli: Cli) -> Result<(), IssuerError> {
    match cli.command {
        Command::Init {
            data,
            json,
            database,
            database_ca,
            keys,
            pkcs11_module,
            pkcs11_token,
            pkcs11_pin_file,
        } => {
            let pkcs11 = match keys {
                KeysArg::File => None,
                KeysArg::Pkcs11 => Some(pooya_issuer::Pkcs11Setup {
                    module: pkcs11_module.ok_or_else(|| {
                        IssuerError::InvalidSettings("--keys pkcs11 needs --pkcs11-module".into())
                    })?,
                    token_label: pkcs11_token.ok_or_else(|| {
                        IssuerError::InvalidSettings("--keys pkcs11 needs --pkcs11-token".into())
                    })?,
                    pin_file: pkcs11_pin_file,
                }),
            };
            let options = InitOptions {
                database_url: database_url(database),
                database_tls_ca: database_ca,
                pkcs11,
                ..InitOptions::default()
            };
            let out = pooya_issuer::init(&data, &options)?;
            if json {
                let text =
                    serde_json::to_string(&out).map_err(|e| IssuerError::Server(e.to_string()))?;
                println!("{text}");
            } else {
                println!("issuer initialised in {}", data.display());
                println!("issuer public key: {}", out.issuer_public_key);
                println!("activation public key: {}", out.activation_public_key);
                println!("API tokens (shown once; only their hashes are stored):");
                for role in pooya_issuer::Role::ALL {
                    println!(
                        "  {:<8} {}",
                        role.as_str(),
                        out.tokens.get(role).expose_secret()
                    );
                }
            }
            Ok(())
        }
        Command::RotateKeys {
            data,
            database,
            database_ca,
            finish,
            settle_secs,
        } => {
            let options = pooya_issuer::RotateOptions {
                database_url: database_url(database),
                database_tls_ca: database_ca,
                finish,
                settle: std::time::Duration::from_secs(settle_secs),
                ..pooya_issuer::RotateOptions::default()
            };
            let report = pooya_issuer::rotate_keys(&data, &options)?;
            let text =
                serde_json::to_string(&report).map_err(|e| IssuerError::Server(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
        Command::Serve {
            data,
            listen,
            config,
            database,
            demo_gateway,
            demo_harim,
        } => {
            let settings = match config {
                Some(path) => Settings::from_file(&path)?,
                None => Settings::default(),
            };
            let mut cfg = ServerConfig::new(data);
            cfg.listen = listen;
            cfg.settings = settings;
            cfg.database_url = database_url(database);
            // Issue 14: the demo gateway through Harim.
            if let Some(path) = &demo_harim {
                cfg.demo_harim = Some(pooya_issuer::DemoHarim::from_file(path, &|name| {
                    std::env::var(name).ok()
                })?);
            } else if demo_gateway {
                let token = std::env::var(GATEWAY_TOKEN_VAR).map_err(|_| {
                    IssuerError::InvalidSettings(format!(
                        "--demo-gateway needs a gateway token in {GATEWAY_TOKEN_VAR}"
                    ))
                })?;
                cfg.demo_gateway = Some(pooya_issuer::DemoGateway {
                    gateway_token: pooya_issuer::ApiToken::new(token.trim()),
                });
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| IssuerError::Server(format!("tokio runtime: {e}")))?;
            rt.block_on(async move {
                let handle = pooya_issuer::serve(cfg).await?;
                println!("listening on {}", handle.local_addr());
                // The keys phones pin, for an issuer initialised before
                // activation v2 (its activation key was made at this start).
                println!("issuer public key: {}", handle.issuer_public_key());
                println!("activation public key: {}", handle.activation_public_key());
                if demo_gateway {
                    println!("demo payment page: http://{}/demo/pay", handle.local_addr());
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
                shutdown_signal().await;
                handle.shutdown().await
            })
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    // Everything the issuer creates (database, WAL, key file, logs) is
    // private to its user from the first byte (docs/security.md, "Data at
    // rest"); `init` and `serve` also fix the modes of existing files.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The HTTP client logs whole request URLs at debug level, and a Kannel
    // sendsms URL holds the gateway password and the message text (a code):
    // its logs stop at warnings whatever RUST_LOG says.
    for quiet in ["ureq=warn", "ureq_proto=warn"] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
