//! Throwaway PostgreSQL servers for Pooya's tests (issue 11, "Tests
//! against a real PostgreSQL").
//!
//! [`TestPostgres::shared`] gives every test in a process one cluster,
//! started on first use: `initdb` in a temporary directory, a server on an
//! ephemeral port of 127.0.0.1 (and a Unix socket in that directory),
//! durable (`fsync = on`, `synchronous_commit = on`). When the environment
//! variable [`URL_VAR`] (`POOYA_TEST_POSTGRES_URL`) is set, that server is
//! used instead and nothing is started. Each test then asks for
//! [`TestPostgres::fresh_database`], a new empty database of its own.
//!
//! PostgreSQL refuses to run as root: when the tests run as root,
//! `initdb`, `pg_ctl` and the server run as the `postgres` account
//! (`runuser -u postgres`), which owns the temporary directory.
//!
//! The cluster is stopped and its directory removed when the test process
//! ends, however it ends (a panic, `exit`, `kill -9`): static destructors
//! do not run then, so a watchdog process (`sh`) waits on a pipe whose only
//! write end this process holds. The kernel closes it when this process
//! dies; the watchdog then runs `pg_ctl stop -m immediate` and removes the
//! directory.
//!
//! [`TestPostgres::start_owned`] starts a separate cluster that the test
//! controls ([`OwnedPostgres::stop`], [`OwnedPostgres::start`],
//! [`OwnedPostgres::crash`]), for tests of what a service does while its
//! database is away. It is removed when dropped (or, again, when the
//! process dies).
//!
//! Administrative SQL (`CREATE DATABASE`, the readiness query) goes through
//! the `psql` binary that ships with the server, so the API is synchronous
//! and may be called from plain and async tests alike, with no runtime of
//! its own to nest inside the caller's.

use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;
use url::Url;

/// The environment variable naming an existing server to use instead of a
/// throwaway cluster: a `postgres://` URL whose user may create databases.
pub const URL_VAR: &str = "POOYA_TEST_POSTGRES_URL";

/// The superuser `initdb` creates (`-U`); connections are trusted.
const SUPERUSER: &str = "pooya";
/// Where Debian installs PostgreSQL: one `<version>/bin` per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// How long a start may take before it is reported with the log's tail.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Ephemeral ports tried when another process takes the chosen one first.
const PORT_ATTEMPTS: u32 = 5;
/// How much of the server log an error shows.
const LOG_TAIL: usize = 2_000;
/// Environment variables that would steer the PostgreSQL tools away from
/// the cluster they are told about.
const PG_ENV: &[&str] = &[
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGPASSWORD",
    "PGPASSFILE",
];

/// What can go wrong while providing a test database. Each has a stable
/// [`code`](TestPgError::code). Messages never carry a password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TestPgError {
    /// A PostgreSQL program is not installed.
    #[error(
        "PostgreSQL's `{name}` was not found (looked in the newest {root}/<version>/bin, then on PATH); \
         install Debian's `postgresql` package (cargo xtask test does)"
    )]
    BinaryMissing {
        /// The program, for example `initdb`.
        name: &'static str,
        /// The versioned directory searched first.
        root: String,
    },
    /// Running as root, but there is no `postgres` account to run the server
    /// as (PostgreSQL refuses to run as root).
    #[error(
        "running as root and there is no `postgres` account to run PostgreSQL as; \
         install Debian's `postgresql` package, which creates it"
    )]
    NoPostgresUser,
    /// A file or process operation failed.
    #[error("{context}: {message}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's message.
        message: String,
    },
    /// A PostgreSQL program exited with an error.
    #[error("`{program}` failed ({status}): {output}")]
    CommandFailed {
        /// The program that failed.
        program: String,
        /// Its exit status.
        status: String,
        /// The end of what it printed.
        output: String,
    },
    /// The server did not start (after retries on a port taken meanwhile).
    #[error(
        "the PostgreSQL server did not start ({attempts} attempt(s)); its log ends with:\n{log_tail}"
    )]
    StartFailed {
        /// How many ports were tried.
        attempts: u32,
        /// The end of the server log.
        log_tail: String,
    },
    /// The server started but did not answer a query in time.
    #[error(
        "the PostgreSQL server did not accept connections within {waited_secs} s; its log ends with:\n{log_tail}"
    )]
    NotReady {
        /// How long it was given.
        waited_secs: u64,
        /// The end of the server log.
        log_tail: String,
    },
    /// [`URL_VAR`] is set but is not a usable `postgres://` URL.
    #[error("{URL_VAR} is not a usable postgres:// URL: {reason}")]
    BadUrl {
        /// What is wrong with it (the URL itself is not repeated: it may
        /// hold a password).
        reason: String,
    },
    /// The server refused an administrative statement.
    #[error("SQL failed (SQLSTATE {sqlstate}): {message}")]
    Sql {
        /// The five-character SQLSTATE (PostgreSQL manual, appendix A).
        sqlstate: String,
        /// The server's message.
        message: String,
    },
}

impl TestPgError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            TestPgError::BinaryMissing { .. } => "binary_missing",
            TestPgError::NoPostgresUser => "no_postgres_user",
            TestPgError::Io { .. } => "io",
            TestPgError::CommandFailed { .. } => "command_failed",
            TestPgError::StartFailed { .. } => "start_failed",
            TestPgError::NotReady { .. } => "not_ready",
            TestPgError::BadUrl { .. } => "bad_url",
            TestPgError::Sql { .. } => "sql",
        }
    }
}

fn io_error(context: impl Into<String>, e: &std::io::Error) -> TestPgError {
    TestPgError::Io {
        context: context.into(),
        message: e.to_string(),
    }
}

/// A PostgreSQL server for tests: the process's shared cluster, or the
/// server named by [`URL_VAR`].
pub struct TestPostgres {
    server: Server,
    next_database: AtomicU64,
}

enum Server {
    /// A server the tests did not start ([`URL_VAR`]).
    External { admin: Url, psql: PathBuf },
    /// A throwaway cluster this process started.
    Cluster(Cluster),
}

impl fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPostgres")
            .field("url", &redacted(&self.admin_url_parsed()))
            .field("data_dir", &self.data_dir())
            .finish()
    }
}

/// The URL without its password, for messages.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = shown.set_password(Some("redacted"));
    }
    shown.to_string()
}

static SHARED: OnceLock<Result<TestPostgres, TestPgError>> = OnceLock::new();

impl TestPostgres {
    /// The process's one test server: the one named by [`URL_VAR`] when it
    /// is set, else a throwaway cluster started on the first call.
    ///
    /// # Errors
    /// Why the server cannot be had (a missing binary, a failed start with
    /// the log's tail, a bad URL). A failed start is not retried: every
    /// later call returns the same error.
    pub fn shared() -> Result<&'static TestPostgres, TestPgError> {
        SHARED
            .get_or_init(|| {
                let server = match std::env::var(URL_VAR) {
                    Ok(url) if !url.trim().is_empty() => external(url.trim())?,
                    _ => Server::Cluster(Cluster::start_new()?),
                };
                Ok(TestPostgres::new(server))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Starts a separate throwaway cluster that the caller controls (stop,
    /// crash, start again). [`URL_VAR`] does not apply: the cluster is
    /// always started here.
    ///
    /// # Errors
    /// As [`shared`](TestPostgres::shared) for a cluster.
    pub fn start_owned() -> Result<OwnedPostgres, TestPgError> {
        Ok(OwnedPostgres {
            cluster: Cluster::start_new()?,
            next_database: AtomicU64::new(0),
        })
    }

    fn new(server: Server) -> TestPostgres {
        TestPostgres {
            server,
            next_database: AtomicU64::new(0),
        }
    }

    /// Creates a new empty database, `pooya_test_<pid>_<n>`, and returns its
    /// URL (`postgres://pooya@127.0.0.1:PORT/NAME` for a throwaway cluster).
    /// Blocks while `psql` runs (some tens of milliseconds).
    ///
    /// # Errors
    /// [`TestPgError::Sql`] when the server refuses (for example a user
    /// without `CREATEDB`), [`TestPgError::CommandFailed`] when it cannot be
    /// reached.
    pub fn fresh_database(&self) -> Result<String, TestPgError> {
        create_database(&self.next_database, &self.admin_url_parsed(), |url, sql| {
            self.psql(url, sql)
        })
    }

    /// The URL of the server's `postgres` database (for a throwaway
    /// cluster), or [`URL_VAR`]'s URL: where databases are created.
    pub fn admin_url(&self) -> String {
        self.admin_url_parsed().to_string()
    }

    fn admin_url_parsed(&self) -> Url {
        match &self.server {
            Server::External { admin, .. } => admin.clone(),
            Server::Cluster(c) => c.admin.clone(),
        }
    }

    /// Whether this is the server named by [`URL_VAR`] rather than a
    /// throwaway cluster.
    pub fn is_external(&self) -> bool {
        matches!(self.server, Server::External { .. })
    }

    /// The throwaway cluster's temporary directory (data, log, socket);
    /// `None` for an external server.
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.server {
            Server::External { .. } => None,
            Server::Cluster(c) => Some(&c.dir),
        }
    }

    /// The throwaway cluster's port on 127.0.0.1; `None` for an external
    /// server.
    pub fn port(&self) -> Option<u16> {
        match &self.server {
            Server::External { .. } => None,
            Server::Cluster(c) => Some(c.port),
        }
    }

    /// The throwaway cluster's postmaster process, from its
    /// `postmaster.pid`; `None` for an external server or a stopped
    /// cluster.
    pub fn postmaster_pid(&self) -> Option<u32> {
        match &self.server {
            Server::External { .. } => None,
            Server::Cluster(c) => c.postmaster_pid(),
        }
    }

    fn psql(&self, url: &Url, sql: &str) -> Result<String, TestPgError> {
        match &self.server {
            Server::External { psql: program, .. } => {
                // The caller's PG* settings (a password file, TLS) apply to
                // their own server.
                psql(Command::new(program), url, sql)
            }
            Server::Cluster(c) => c.psql(url, sql),
        }
    }
}

/// Creates `pooya_test_<pid>_<n>` through `psql` (`admin` names the
/// server) and returns its URL.
fn create_database(
    next: &AtomicU64,
    admin: &Url,
    psql: impl Fn(&Url, &str) -> Result<String, TestPgError>,
) -> Result<String, TestPgError> {
    let pid = std::process::id();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let name = format!("pooya_test_{pid}_{n}");
        match psql(admin, &format!("CREATE DATABASE {name}")) {
            // Left by an earlier process with the same pid on a shared
            // server: take the next number.
            Err(TestPgError::Sql { sqlstate, .. }) if sqlstate == "42P04" && n < 10_000 => {
                continue;
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let mut url = admin.clone();
        url.set_path(&format!("/{name}"));
        return Ok(url.to_string());
    }
}

/// A throwaway cluster that the test controls; stopped and removed when
/// dropped.
#[derive(Debug)]
pub struct OwnedPostgres {
    cluster: Cluster,
    next_database: AtomicU64,
}

impl OwnedPostgres {
    fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// See [`TestPostgres::fresh_database`].
    ///
    /// # Errors
    /// As [`TestPostgres::fresh_database`]; a stopped cluster gives
    /// [`TestPgError::CommandFailed`].
    pub fn fresh_database(&self) -> Result<String, TestPgError> {
        create_database(&self.next_database, &self.cluster.admin, |url, sql| {
            self.cluster.psql(url, sql)
        })
    }

    /// See [`TestPostgres::admin_url`].
    pub fn admin_url(&self) -> String {
        self.cluster.admin.to_string()
    }

    /// The cluster's port on 127.0.0.1; it stays the same across
    /// [`stop`](OwnedPostgres::stop) and [`start`](OwnedPostgres::start).
    pub fn port(&self) -> u16 {
        self.cluster().port
    }

    /// The cluster's temporary directory.
    pub fn data_dir(&self) -> &Path {
        &self.cluster().dir
    }

    /// See [`TestPostgres::postmaster_pid`].
    pub fn postmaster_pid(&self) -> Option<u32> {
        self.cluster.postmaster_pid()
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`: open sessions are
    /// ended, then a checkpoint), and waits until it has exited.
    ///
    /// # Errors
    /// [`TestPgError::CommandFailed`] when `pg_ctl` fails (for example the
    /// server was not running).
    pub fn stop(&self) -> Result<(), TestPgError> {
        self.cluster().stop(StopMode::Fast)
    }

    /// Stops the server as a power loss would (`pg_ctl stop -m immediate`:
    /// no checkpoint, crash recovery at the next start), and waits until it
    /// has exited.
    ///
    /// # Errors
    /// As [`stop`](OwnedPostgres::stop).
    pub fn crash(&self) -> Result<(), TestPgError> {
        self.cluster().stop(StopMode::Immediate)
    }

    /// Starts the stopped server again on the same port and data, and waits
    /// until it answers a query.
    ///
    /// # Errors
    /// [`TestPgError::StartFailed`] (for example when another process took
    /// the port meanwhile) or [`TestPgError::NotReady`], with the log's
    /// tail.
    pub fn start(&self) -> Result<(), TestPgError> {
        let c = self.cluster();
        c.start_on(c.port).map_err(|e| e.into_error(1))?;
        c.wait_ready()
    }
}

fn external(raw: &str) -> Result<Server, TestPgError> {
    let admin = parse_external_url(raw)?;
    let psql = find_binary(Path::new(DEBIAN_ROOT), "psql")?;
    Ok(Server::External { admin, psql })
}

/// Checks [`URL_VAR`]'s value: a `postgres://` or `postgresql://` URL.
fn parse_external_url(raw: &str) -> Result<Url, TestPgError> {
    let url = Url::parse(raw).map_err(|e| TestPgError::BadUrl {
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(TestPgError::BadUrl {
            reason: format!(
                "the scheme is `{}`, not postgres or postgresql",
                url.scheme()
            ),
        });
    }
    if url.cannot_be_a_base() {
        return Err(TestPgError::BadUrl {
            reason: "it has no `//` authority part".into(),
        });
    }
    Ok(url)
}

/// How [`Cluster::stop`] stops the server (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    /// End sessions, checkpoint, exit.
    Fast,
    /// Exit at once; recovery at the next start.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Who runs `initdb`, `pg_ctl` and the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunAs {
    /// This process's user (not root).
    CurrentUser,
    /// The `postgres` account, through `runuser`, because this process is
    /// root.
    Postgres,
}

/// A cluster started by this process, with the watchdog that removes it.
struct Cluster {
    /// The temporary directory: `data/`, `server.log`, the socket.
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// `postgres://pooya@127.0.0.1:PORT/postgres`.
    admin: Url,
    run_as: RunAs,
    pg_ctl: PathBuf,
    psql: PathBuf,
    watchdog: Mutex<Option<Watchdog>>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// `sh` waiting for end of file on its standard input, then stopping the
/// server and removing the directory. `$1` the directory, `$2` pg_ctl,
/// `$3` `postgres` to run pg_ctl through runuser. Interrupts are ignored so
/// that a Ctrl-C of the test run does not end it before it has cleaned up
/// (it runs in a process group of its own as well).
const WATCHDOG: &str = r#"trap '' INT HUP
cat >/dev/null 2>&1
pid=
if [ -f "$1/data/postmaster.pid" ]; then
  pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
fi
if [ -n "$pid" ]; then
  if [ "$3" = postgres ]; then
    runuser -u postgres -- "$2" stop -D "$1/data" -m immediate -w -t 10 >/dev/null 2>&1
  else
    "$2" stop -D "$1/data" -m immediate -w -t 10 >/dev/null 2>&1
  fi
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
    kill -KILL "$pid" 2>/dev/null
  fi
fi
rm -rf -- "$1"
"#;

struct Watchdog {
    child: Child,
    /// The pipe's only write end; closing it (by drop or by this process's
    /// death) sets the watchdog going.
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    fn spawn(dir: &Path, pg_ctl: &Path, run_as: RunAs) -> Result<Watchdog, TestPgError> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("pooya-testpg-watchdog")
            .arg(dir)
            .arg(pg_ctl)
            .arg(match run_as {
                RunAs::Postgres => "postgres",
                RunAs::CurrentUser => "self",
            })
            .current_dir("/")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io_error("starting the watchdog (sh)", &e))?;
        // std makes the parent's end close-on-exec, so neither pg_ctl nor the
        // server inherits it and keeps the watchdog waiting.
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// Closes the pipe and waits until the watchdog has stopped the server
    /// and removed the directory.
    fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = watchdog {
            w.finish();
        }
    }
}

/// Why one attempt to start the server failed.
enum StartError {
    /// The port was taken between choosing and binding it.
    AddressInUse(String),
    Other(TestPgError),
}

impl StartError {
    fn into_error(self, attempts: u32) -> TestPgError {
        match self {
            StartError::AddressInUse(log_tail) => TestPgError::StartFailed { attempts, log_tail },
            StartError::Other(e) => e,
        }
    }
}

impl Cluster {
    fn start_new() -> Result<Cluster, TestPgError> {
        let root = Path::new(DEBIAN_ROOT);
        let initdb = find_binary(root, "initdb")?;
        let pg_ctl = find_binary(root, "pg_ctl")?;
        let psql = find_binary(root, "psql")?;
        let run_as = if rustix::process::geteuid().is_root() {
            RunAs::Postgres
        } else {
            RunAs::CurrentUser
        };
        let postgres_ids = match run_as {
            RunAs::Postgres => Some(postgres_account()?),
            RunAs::CurrentUser => None,
        };

        let dir = tempfile::Builder::new()
            .prefix("pooya-testpg-")
            .tempdir()
            .map_err(|e| io_error("creating the cluster's temporary directory", &e))?
            // The watchdog removes it, also when this process is killed.
            .keep();
        let watchdog = match Watchdog::spawn(&dir, &pg_ctl, run_as) {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut cluster = Cluster {
            data: dir.join("data"),
            log: dir.join("server.log"),
            dir,
            port: 0,
            admin: Url::parse("postgres://127.0.0.1/postgres")
                .map_err(|e| io_error("the cluster's URL", &std::io::Error::other(e)))?,
            run_as,
            pg_ctl,
            psql,
            watchdog: Mutex::new(Some(watchdog)),
        };
        // From here on, an early return drops `cluster`, whose watchdog
        // cleans up.
        if let Some((uid, gid)) = postgres_ids {
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .map_err(|e| io_error("giving the temporary directory to postgres", &e))?;
        }
        if cluster
            .dir
            .to_string_lossy()
            .contains(['\'', '"', ' ', '\\'])
        {
            return Err(TestPgError::Io {
                context: "the temporary directory".into(),
                message: format!(
                    "{} holds a quote, space or backslash, which pg_ctl's options cannot carry; set TMPDIR",
                    cluster.dir.display()
                ),
            });
        }
        let mut init = cluster.tool(&initdb);
        init.arg("-D").arg(&cluster.data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(init, "initdb")?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.port = ephemeral_port()?;
            cluster.admin = Url::parse(&format!(
                "postgres://{SUPERUSER}@127.0.0.1:{}/postgres",
                cluster.port
            ))
            .map_err(|e| io_error("the cluster's URL", &std::io::Error::other(e)))?;
            match cluster.start_on(cluster.port) {
                Ok(()) => break,
                Err(StartError::AddressInUse(_)) if attempt < PORT_ATTEMPTS => continue,
                Err(e) => return Err(e.into_error(attempt)),
            }
        }
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// A command for a PostgreSQL tool, as the right user, in the cluster's
    /// directory (the `postgres` account may not enter the caller's).
    fn tool(&self, program: &Path) -> Command {
        let mut cmd = match self.run_as {
            RunAs::CurrentUser => Command::new(program),
            RunAs::Postgres => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
        };
        cmd.current_dir(&self.dir);
        for var in PG_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    fn start_on(&self, port: u16) -> Result<(), StartError> {
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{}' \
             -c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=128MB",
            self.dir.display()
        );
        let mut start = self.tool(&self.pg_ctl);
        start
            .arg("start")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", &READY_TIMEOUT.as_secs().to_string(), "-s"])
            .arg("-o")
            .arg(options);
        match run(start, "pg_ctl start") {
            Ok(_) => Ok(()),
            Err(e) => {
                let tail = log_tail(&self.log, log_start);
                if tail.contains("Address already in use") {
                    Err(StartError::AddressInUse(tail))
                } else if let TestPgError::CommandFailed { .. } = e {
                    Err(StartError::Other(TestPgError::StartFailed {
                        attempts: 1,
                        log_tail: tail,
                    }))
                } else {
                    Err(StartError::Other(e))
                }
            }
        }
    }

    /// Waits until the server takes a TCP connection on its port and
    /// answers a query, for at most [`READY_TIMEOUT`].
    fn wait_ready(&self) -> Result<(), TestPgError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let admin = &self.admin;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                && self
                    .psql(admin, "SELECT 1")
                    .is_ok_and(|out| out.trim() == "1")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TestPgError::NotReady {
                    waited_secs: READY_TIMEOUT.as_secs(),
                    log_tail: log_tail(&self.log, 0),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&self, mode: StopMode) -> Result<(), TestPgError> {
        let mut stop = self.tool(&self.pg_ctl);
        stop.arg("stop").arg("-D").arg(&self.data).args([
            "-m",
            mode.as_arg(),
            "-w",
            "-t",
            "30",
            "-s",
        ]);
        run(stop, "pg_ctl stop").map(drop)
    }

    fn postmaster_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    fn psql(&self, url: &Url, sql: &str) -> Result<String, TestPgError> {
        let mut cmd = Command::new(&self.psql);
        for var in PG_ENV {
            cmd.env_remove(var);
        }
        psql(cmd, url, sql)
    }
}

/// Runs one statement with `psql`, stopping at the first error, and
/// returns its unaligned, tuples-only output.
fn psql(mut cmd: Command, url: &Url, sql: &str) -> Result<String, TestPgError> {
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-v", "VERBOSITY=verbose"])
        .arg("-d")
        .arg(url.as_str())
        .arg("-c")
        .arg(sql)
        .env("PGCONNECT_TIMEOUT", "5");
    match run(cmd, "psql") {
        Ok(out) => Ok(out),
        Err(TestPgError::CommandFailed {
            program,
            status,
            output,
        }) => Err(match sql_error(&output) {
            Some((sqlstate, message)) => TestPgError::Sql { sqlstate, message },
            None => TestPgError::CommandFailed {
                program,
                status,
                output,
            },
        }),
        Err(e) => Err(e),
    }
}

/// The SQLSTATE and message of psql's verbose error form,
/// `ERROR:  42P04: database "x" already exists`.
fn sql_error(output: &str) -> Option<(String, String)> {
    output.lines().find_map(|line| {
        let rest = line.split_once("ERROR:")?.1.trim_start();
        let (code, message) = rest.split_once(':')?;
        let valid = code.len() == 5
            && code
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        valid.then(|| (code.to_owned(), message.trim().to_owned()))
    })
}

/// Runs a command to completion; its standard output, or
/// [`TestPgError::CommandFailed`] with the end of what it printed.
fn run(mut cmd: Command, program: &str) -> Result<String, TestPgError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io_error(format!("running {program}"), &e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&stdout);
    Err(TestPgError::CommandFailed {
        program: program.to_owned(),
        status: out.status.to_string(),
        output: tail(output.trim(), LOG_TAIL),
    })
}

/// The last `max` bytes of `text` (at a character boundary).
fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// The end of the server log, from byte `from` on.
fn log_tail(log: &Path, from: u64) -> String {
    let mut text = Vec::new();
    let read = fs::File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        f.read_to_end(&mut text)
    });
    match read {
        Ok(_) => tail(String::from_utf8_lossy(&text).trim(), LOG_TAIL),
        Err(e) => format!("(no log at {}: {e})", log.display()),
    }
}

/// A port on 127.0.0.1 free a moment ago: bound to port 0, read, closed.
fn ephemeral_port() -> Result<u16, TestPgError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| io_error("choosing a port on 127.0.0.1", &e))?;
    let port = listener
        .local_addr()
        .map_err(|e| io_error("choosing a port on 127.0.0.1", &e))?
        .port();
    Ok(port)
}

/// The `postgres` account's user and group ids.
fn postgres_account() -> Result<(u32, u32), TestPgError> {
    let id = |flag: &str| -> Result<u32, TestPgError> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| io_error("looking up the postgres account (id)", &e))?;
        if !out.status.success() {
            return Err(TestPgError::NoPostgresUser);
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| TestPgError::NoPostgresUser)
    };
    Ok((id("-u")?, id("-g")?))
}

/// A PostgreSQL program: from the newest `<root>/<version>/bin` that has
/// `initdb` (Debian's layout), else from `PATH`.
fn find_binary(root: &Path, name: &'static str) -> Result<PathBuf, TestPgError> {
    if let Some(dir) = newest_bin_dir(root) {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| TestPgError::BinaryMissing {
            name,
            root: root.display().to_string(),
        })
}

/// The `bin` directory of the highest version under `root`, compared as
/// numbers (16 above 9.6), among those holding `initdb`.
fn newest_bin_dir(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_tree(versions: &[(&str, bool)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (version, with_initdb) in versions {
            let bin = root.path().join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            if *with_initdb {
                fs::write(bin.join("initdb"), b"").unwrap();
                fs::write(bin.join("pg_ctl"), b"").unwrap();
            }
        }
        root
    }

    #[test]
    fn the_newest_version_is_chosen_as_numbers() {
        let root = version_tree(&[("9.6", true), ("15", true), ("16", true), ("notes", true)]);
        assert_eq!(
            newest_bin_dir(root.path()).unwrap(),
            root.path().join("16").join("bin")
        );
        assert_eq!(
            find_binary(root.path(), "pg_ctl").unwrap(),
            root.path().join("16/bin/pg_ctl")
        );
    }

    #[test]
    fn a_version_without_initdb_is_skipped() {
        let root = version_tree(&[("15", true), ("17", false)]);
        assert_eq!(
            newest_bin_dir(root.path()).unwrap(),
            root.path().join("15").join("bin")
        );
    }

    #[test]
    fn a_missing_binary_is_named() {
        let root = version_tree(&[]);
        let err = find_binary(root.path(), "pooya-no-such-postgres-tool").unwrap_err();
        assert_eq!(err.code(), "binary_missing");
        assert!(
            err.to_string().contains("`pooya-no-such-postgres-tool`"),
            "{err}"
        );
        assert!(err.to_string().contains("postgresql"), "{err}");
    }

    #[test]
    fn verbose_psql_errors_give_their_sqlstate() {
        let out = "psql:/dev/stdin:1: ERROR:  42P04: database \"pooya_test_1_0\" already exists\n\
                   LOCATION:  createdb, dbcommands.c:700";
        assert_eq!(
            sql_error(out),
            Some((
                "42P04".to_owned(),
                "database \"pooya_test_1_0\" already exists".to_owned()
            ))
        );
        assert_eq!(
            sql_error("psql: error: connection to server failed: Connection refused"),
            None
        );
        assert_eq!(sql_error("ERROR:  syntax: no code here"), None);
    }

    #[test]
    fn external_urls_are_checked_and_keep_their_options() {
        let url =
            parse_external_url("postgres://ci:s3cret@db.test:6432/ci?sslmode=require").unwrap();
        assert_eq!(url.port(), Some(6432));
        assert_eq!(url.query(), Some("sslmode=require"));
        assert!(!redacted(&url).contains("s3cret"), "{}", redacted(&url));

        for bad in ["mysql://root@localhost/x", "postgres:nothing", "not a url"] {
            let err = parse_external_url(bad).unwrap_err();
            assert_eq!(err.code(), "bad_url", "{bad}");
        }
        let err = parse_external_url("mysql://root:hunter2@localhost/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn tails_cut_at_character_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        // 'پ' is two bytes: a cut in its middle moves past it.
        assert_eq!(tail("پویا", 3), "ا");
    }
}
