//! Starting and stopping the HTTP server: in a caller's tokio runtime
//! ([`serve`]) or on a thread of its own ([`spawn_on_thread`]).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tower_http::timeout::RequestBodyDeadlineLayer;

use pooya_issuer_service::outbox::DeliveryHandle;
use pooya_issuer_service::{
    Clock, ConnectionLimits, Delivery, Issuer, IssuerError, KeyProvider, Role, Settings, SmsSender,
    SmsSenderKind, Store, SystemClock,
};
use pooya_issuer_sqlite::{DB_FILE, SqliteOptions, secure_data_dir};

use crate::demo::{DemoGateway, DemoHarim};

/// How long a shutdown waits for open requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the store's housekeeping runs.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Everything [`serve`] needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// The data directory made by [`init`](crate::init): the key file, and
    /// the SQLite database unless `database_url` is given.
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://…`) instead of the SQLite file;
    /// any number of servers may share one (docs/issuer.md, "Several
    /// nodes"). Never logged: it may hold a password.
    pub database_url: Option<String>,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Policies, lifetimes, thresholds, language, the SMS sender.
    pub settings: Settings,
    /// The clock (tests inject a [`ManualClock`](crate::ManualClock)).
    pub clock: Arc<dyn Clock>,
    /// An SMS gateway given in code; `None` uses the settings' `sms.sender`.
    pub sms_sender: Option<Arc<dyn SmsSender>>,
    /// The key provider; `None` loads `master.key` from the data directory.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
    /// Also serve the demo payment page (`/demo/pay`); only on a loopback
    /// address.
    pub demo_gateway: Option<DemoGateway>,
    /// Issue 14: serve the demo payment page with its gateway sending to
    /// Harim instead of this issuer (and its phone panel reading every
    /// bank's outbox); only on a loopback address, not with
    /// `demo_gateway`.
    pub demo_harim: Option<DemoHarim>,
}

impl ServerConfig {
    /// For tests and the demo: `127.0.0.1:0`, [`Settings::development`]
    /// (the development SMS recorder), the system clock, the key file.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            settings: Settings::development(),
            clock: Arc::new(SystemClock),
            sms_sender: None,
            key_provider: None,
            demo_gateway: None,
            demo_harim: None,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("data_dir", &self.data_dir)
            .field(
                "database",
                &if self.database_url.is_some() {
                    "postgres"
                } else {
                    "sqlite"
                },
            )
            .field("listen", &self.listen)
            .field("settings", &self.settings)
            .field("custom_sms_sender", &self.sms_sender.is_some())
            .field("custom_key_provider", &self.key_provider.is_some())
            .field("demo_gateway", &self.demo_gateway.is_some())
            .field("demo_harim", &self.demo_harim.is_some())
            .finish_non_exhaustive()
    }
}

/// A running server inside the caller's tokio runtime.
pub struct ServerHandle {
    addr: SocketAddr,
    public_key: String,
    activation_key: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), IssuerError>>>,
    delivery: Option<DeliveryHandle>,
    housekeeping: Option<JoinHandle<()>>,
    store: Option<Arc<dyn Store>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Opens the issuer in `config.data_dir`, binds `config.listen` and serves
/// until [`ServerHandle::shutdown`]. Must be called inside a tokio runtime.
///
/// # Errors
/// [`IssuerError::NotInitialized`], [`IssuerError::WrongMasterKey`],
/// [`IssuerError::InvalidSettings`] (also for a demo gateway on a
/// non-loopback address or with a token that is not one of this issuer's
/// gateway tokens), storage errors, or [`IssuerError::Server`] when the
/// address cannot be bound.
pub async fn serve(config: ServerConfig) -> Result<ServerHandle, IssuerError> {
    let listen = config.listen;
    let demo = config.demo_gateway.clone();
    let demo_harim = config.demo_harim.clone();
    if demo.is_some() && demo_harim.is_some() {
        return Err(IssuerError::InvalidSettings(
            "the demo gateway calls either this issuer or Harim: not both".into(),
        ));
    }
    if (demo.is_some() || demo_harim.is_some()) && !listen.ip().is_loopback() {
        return Err(IssuerError::InvalidSettings(
            "the demo gateway serves only on a loopback address".into(),
        ));
    }
    let limits = config.settings.limits.clone();
    let fd_limit = raise_fd_limit();
    let max_connections = connection_cap(
        &limits,
        config.settings.read_connections,
        fd_limit,
        workers(),
    )?;
    secure_data_dir(&config.data_dir)?;
    if config.database_url.is_none() && !config.data_dir.join(DB_FILE).exists() {
        return Err(IssuerError::NotInitialized);
    }
    let kannel = match config.settings.sms.sender {
        SmsSenderKind::Kannel => Some(crate::kannel::Kannel::from_settings(&config.settings)?),
        SmsSenderKind::Unset | SmsSenderKind::DevRecorder => None,
    };
    let delivery = match (config.sms_sender, config.settings.sms.sender) {
        (Some(s), _) => Delivery::Sender(s),
        (None, SmsSenderKind::Kannel) => match &kannel {
            Some(k) => Delivery::Sender(k.sender()),
            None => {
                return Err(IssuerError::InvalidSettings(
                    "sms.sender is kannel: the sms.kannel section is missing".into(),
                ));
            }
        },
        (None, SmsSenderKind::DevRecorder) => Delivery::DevRecorder,
        (None, SmsSenderKind::Unset) => {
            return Err(IssuerError::InvalidSettings(
                "sms.sender is not set: choose the bank's SMS gateway, or dev_recorder on a \
                 developer's machine (docs/issuer.md, \"SMS delivery\")"
                    .into(),
            ));
        }
    };
    let keys: Arc<dyn KeyProvider> = match config.key_provider {
        Some(k) => k,
        None => crate::key_setup::open_keys(&config.data_dir)?,
    };
    let store = crate::init::open_store(
        &config.data_dir,
        config.database_url.as_deref(),
        SqliteOptions {
            read_connections: config.settings.read_connections,
            writer_batch_max: config.settings.writer_batch_max,
            checkpoint_interval_ms: config.settings.checkpoint_interval_ms,
        },
        config.settings.database_pool_size,
        config.settings.database_tls_ca.as_deref(),
    )
    .await?;
    let (issuer, delivery) = Issuer::open(
        Arc::clone(&store),
        keys,
        config.settings,
        config.clock,
        delivery,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| IssuerError::Server(format!("binding {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| IssuerError::Server(format!("local address: {e}")))?;
    let public_key = issuer.public_key_hex();
    let activation_key = issuer.activation_key_hex();
    let api = crate::http::router(Arc::clone(&issuer), kannel.map(|k| k.secret()));
    let app = match (&demo, &demo_harim) {
        (None, None) => api,
        (_, Some(h)) => {
            tracing::warn!(
                harim = %h.base_url,
                banks = h.banks.len(),
                "demo gateway on, through Harim: /demo/pay shows one-time PIN messages to anyone who can reach it"
            );
            api.clone().merge(crate::demo::router(
                crate::demo::DemoUpstream::Harim(h),
                Arc::clone(&issuer),
                addr.port(),
            ))
        }
        (Some(d), None) => {
            let bearer = format!("Bearer {}", d.gateway_token.expose_secret());
            if issuer.authorize(Some(&bearer), Role::Gateway).is_err() {
                delivery.stop().await;
                return Err(IssuerError::InvalidSettings(
                    "the demo gateway's token is not a gateway token of this issuer".into(),
                ));
            }
            tracing::warn!(
                "demo gateway on: /demo/pay shows one-time PIN messages to anyone who can reach it"
            );
            api.clone().merge(crate::demo::router(
                crate::demo::DemoUpstream::Local(api, d),
                Arc::clone(&issuer),
                addr.port(),
            ))
        }
    };
    let housekeeping = {
        let issuer = Arc::clone(&issuer);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HOUSEKEEPING_EVERY).await;
                if let Err(e) = issuer.housekeeping().await {
                    tracing::warn!(code = e.code(), error = %e, "housekeeping failed");
                }
            }
        })
    };
    drop(issuer);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout(),
        crate::http::deadline,
    ));
    let task = tokio::spawn(accept_loop(listener, app, limits, max_connections, stop_rx));
    tracing::info!(%addr, max_connections, "listening");
    Ok(ServerHandle {
        addr,
        public_key,
        activation_key,
        stop: Some(stop_tx),
        task: Some(task),
        delivery: Some(delivery),
        housekeeping: Some(housekeeping),
        store: Some(store),
    })
}

/// File descriptors kept back from client connections for everything
/// else: the listener, the runtime's epoll and waker descriptors, stdio,
/// the key file, log output and a margin (64 in all).
const FD_SLACK: u64 = 64;

/// Descriptors the database needs: every SQLite connection holds two (the
/// database file and its WAL, SQLite's WAL format §1), the process holds
/// one more for the shared `-shm` index. Connections are the writer, the
/// checkpointer, the `read_connections` kept idle and, under load, one more
/// per runtime worker reading at the same moment.
fn database_fds(read_connections: usize, workers: usize) -> u64 {
    2 * (read_connections as u64 + workers as u64 + 2) + 1
}

/// The runtime's worker threads (tokio's default: one per core).
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(4)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (POSIX
/// `setrlimit`) and returns the soft limit now in force (`None`: no limit,
/// or not a Unix system).
fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let now = getrlimit(Resource::Nofile);
        if now.current != now.maximum {
            let raised = Rlimit {
                current: now.maximum,
                maximum: now.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(from = ?now.current, to = ?now.maximum, "raised the open-file limit");
                    return now.maximum;
                }
                Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
            }
        }
        now.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The open-connection cap: `limits.max_connections`, lowered so that each
/// connection's descriptor still leaves [`database_fds`] and [`FD_SLACK`]
/// free under `fd_limit` (docs/issuer.md, "Slow clients").
///
/// # Errors
/// [`IssuerError::InvalidSettings`] when the descriptor limit leaves room
/// for fewer than 16 connections.
fn connection_cap(
    limits: &ConnectionLimits,
    read_connections: usize,
    fd_limit: Option<u64>,
    workers: usize,
) -> Result<usize, IssuerError> {
    let Some(fd_limit) = fd_limit else {
        return Ok(limits.max_connections);
    };
    let reserved = FD_SLACK + database_fds(read_connections, workers);
    let room = fd_limit.saturating_sub(reserved);
    if room < 16 {
        return Err(IssuerError::InvalidSettings(format!(
            "the open-file limit ({fd_limit}) leaves room for fewer than 16 connections \
             after {reserved} descriptors for the database and the server"
        )));
    }
    let cap = usize::try_from(room).unwrap_or(usize::MAX);
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            cap,
            fd_limit,
            "max_connections lowered to fit the open-file limit"
        );
    }
    Ok(cap.min(limits.max_connections))
}

/// Accepts connections until `stop`, serving each with hyper's HTTP/1
/// server under the header-read timeout. At most `cap` connections are
/// open: past that a new connection is accepted and closed at once, so the
/// listen backlog never fills with clients nobody answers, and slots come
/// back as the header timeout closes stalled connections. On `stop` the
/// listener closes, open connections finish their request and close.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    cap: usize,
    stop: oneshot::Receiver<()>,
) -> Result<(), IssuerError> {
    let permits = Arc::new(Semaphore::new(cap));
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyDeadlineLayer::new(limits.body_read_timeout()))
        .service(app);
    let header_timeout = limits.header_read_timeout();
    pooya_http_serve::serve(listener, service, permits, header_timeout, stop).await;
    Ok(())
}

impl ServerHandle {
    /// The bound address (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The issuer's Ed25519 public key, hex.
    pub fn issuer_public_key(&self) -> &str {
        &self.public_key
    }

    /// The issuer's activation (HPKE, P-256) public key, hex of the SEC1
    /// uncompressed point.
    pub fn activation_public_key(&self) -> &str {
        &self.activation_key
    }

    /// Stops accepting connections, lets open requests finish (up to five
    /// seconds), delivers the SMS messages already queued, then stops the
    /// writer after its queued jobs, so everything answered is on disk.
    ///
    /// # Errors
    /// [`IssuerError::Server`] when the server task failed.
    pub async fn shutdown(mut self) -> Result<(), IssuerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut result = Ok(());
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(r)) => result = r,
                Ok(Err(e)) => result = Err(IssuerError::Server(e.to_string())),
                Err(_) => {
                    task.abort();
                    tracing::warn!("requests still open after the grace period were dropped");
                }
            }
        }
        if let Some(h) = self.housekeeping.take() {
            h.abort();
        }
        // The message in hand is delivered and recorded; the rest wait in
        // the outbox for the next start (or another node).
        if let Some(d) = self.delivery.take() {
            d.stop().await;
        }
        if let Some(store) = self.store.take() {
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
        }
        tracing::info!("stopped");
        result
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(h) = self.housekeeping.take() {
            h.abort();
        }
        // The delivery worker stops with the runtime; the store's writer
        // stops and is joined when its last handle is dropped.
    }
}

/// A server running on its own thread with its own tokio runtime, for
/// synchronous callers (`pooya demo`, tests). Stopped by
/// [`BackgroundServer::shutdown`] or on drop.
pub struct BackgroundServer {
    addr: SocketAddr,
    public_key: String,
    activation_key: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), IssuerError>>>,
}

impl fmt::Debug for BackgroundServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts [`serve`] on a new thread with a two-worker tokio runtime and
/// returns once it listens.
///
/// # Errors
/// What [`serve`] returns, or [`IssuerError::Server`] when the thread or
/// runtime cannot start.
pub fn spawn_on_thread(config: ServerConfig) -> Result<BackgroundServer, IssuerError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("pooya-issuer".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("pooya-issuer-rt")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let e = IssuerError::Server(format!("tokio runtime: {e}"));
                    let _ = ready_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            rt.block_on(async move {
                match serve(config).await {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.clone()));
                        Err(e)
                    }
                    Ok(handle) => {
                        let _ = ready_tx.send(Ok((
                            handle.local_addr(),
                            handle.issuer_public_key().to_owned(),
                            handle.activation_public_key().to_owned(),
                        )));
                        let _ = stop_rx.await;
                        handle.shutdown().await
                    }
                }
            })
        })
        .map_err(|e| IssuerError::Server(format!("spawning the server thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok((addr, public_key, activation_key))) => Ok(BackgroundServer {
            addr,
            public_key,
            activation_key,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(IssuerError::Server("the server thread ended early".into()))
        }
    }
}

impl BackgroundServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The issuer's Ed25519 public key, hex.
    pub fn issuer_public_key(&self) -> &str {
        &self.public_key
    }

    /// The issuer's activation (HPKE, P-256) public key, hex of the SEC1
    /// uncompressed point.
    pub fn activation_public_key(&self) -> &str {
        &self.activation_key
    }

    /// Stops the server as [`ServerHandle::shutdown`] does and waits for
    /// its thread.
    ///
    /// # Errors
    /// What the server's shutdown returned.
    pub fn shutdown(mut self) -> Result<(), IssuerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), IssuerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(IssuerError::Server("the server thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_database() {
        let limits = ConnectionLimits::default();
        // 64 + 2 × (4 + 2 + 2) + 1 = 81 reserved (docs/issuer.md).
        assert_eq!(database_fds(4, 2), 17);
        assert_eq!(connection_cap(&limits, 4, Some(1024), 2).unwrap(), 943);
        assert_eq!(
            connection_cap(&limits, 4, Some(1_000_000), 2).unwrap(),
            limits.max_connections
        );
        assert_eq!(
            connection_cap(&limits, 4, None, 2).unwrap(),
            limits.max_connections
        );
        assert_eq!(connection_cap(&limits, 4, Some(97), 2).unwrap(), 16);
        assert_eq!(
            connection_cap(&limits, 4, Some(96), 2).unwrap_err().code(),
            "invalid_settings"
        );
        assert_eq!(
            connection_cap(&limits, 64, Some(200), 2)
                .unwrap_err()
                .code(),
            "invalid_settings"
        );
    }
}
