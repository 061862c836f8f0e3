//! Running Harim: the shared state (the table in force, the token key,
//! metrics, the client), reloads, and the accept loop with the issuer's
//! defences against slow clients (docs/issuer.md, "Slow clients").

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower_http::timeout::RequestBodyDeadlineLayer;

use crate::HarimError;
use crate::forward::{HttpClient, client};
use crate::metrics::Metrics;
use crate::settings::{Limits, Settings};
use crate::table::Table;
use crate::token::TokenKey;

/// Unix time in seconds, for the unknown-card `otp-requests` answer's
/// `expires_at` (the issuers' clock in a test).
pub trait Clock: Send + Sync + 'static {
    /// Now, Unix seconds.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// Reads an environment variable (the process's; a test's map).
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How to start Harim.
#[derive(Clone)]
pub struct HarimConfig {
    /// The settings file, read at start and at every reload.
    pub settings_path: PathBuf,
    /// Overrides the file's `listen` (tests: `127.0.0.1:0`).
    pub listen: Option<SocketAddr>,
    /// Unix time (default [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
    /// Where `env` secrets are read (default the process environment).
    pub env: EnvReader,
}

impl HarimConfig {
    /// Harim with the settings at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            settings_path: path.into(),
            listen: None,
            clock: Arc::new(SystemClock),
            env: Arc::new(|v| std::env::var(v).ok()),
        }
    }
}

impl fmt::Debug for HarimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HarimConfig")
            .field("settings_path", &self.settings_path)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// What a reload loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Always `reloaded`.
    pub status: String,
    /// Issuers in the new table.
    pub issuers: usize,
    /// Gateways in the new table.
    pub gateways: usize,
    /// BIN prefixes in the new table.
    pub bins: usize,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    table: RwLock<Arc<Table>>,
    pub(crate) key: TokenKey,
    pub(crate) metrics: Metrics,
    pub(crate) client: HttpClient,
    clock: Arc<dyn Clock>,
    started: Instant,
    settings_path: PathBuf,
    env: EnvReader,
    listen: SocketAddr,
}

impl Shared {
    /// The table in force now.
    pub(crate) fn table(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(t) => Arc::clone(&t),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Milliseconds since start (breakers, buckets).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Unix seconds.
    pub(crate) fn now_secs(&self) -> u64 {
        self.clock.now()
    }

    /// Reads the settings file again and swaps the table; a file that is
    /// refused leaves the table in force as it was.
    ///
    /// # Errors
    /// `io` or `invalid_settings`, naming the field.
    pub(crate) fn reload(&self) -> Result<ReloadReport, HarimError> {
        let result =
            Settings::from_file(&self.settings_path).and_then(|s| s.check(self.env.as_ref()));
        let checked = match result {
            Ok(c) => c,
            Err(e) => {
                self.metrics.reload("refused");
                tracing::warn!(code = e.code(), error = %e, "reload refused: the table in force is kept");
                return Err(e);
            }
        };
        if checked.listen != self.listen {
            tracing::warn!("listen changed in the settings: it takes effect at the next start");
        }
        let old = self.table();
        let new = Table::build(checked, &self.key, Some(&old), self.now_ms());
        let report = ReloadReport {
            status: "reloaded".into(),
            issuers: new.issuers.len(),
            gateways: new.gateways.len(),
            bins: new.routes.len(),
        };
        match self.table.write() {
            Ok(mut t) => *t = Arc::new(new),
            Err(p) => *p.into_inner() = Arc::new(new),
        }
        self.metrics.reload("ok");
        tracing::info!(
            issuers = report.issuers,
            gateways = report.gateways,
            bins = report.bins,
            "settings reloaded"
        );
        Ok(report)
    }
}

/// A running Harim.
pub struct HarimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), HarimError>>>,
}

impl fmt::Debug for HarimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HarimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Starts Harim inside a tokio runtime: reads and checks the settings,
/// binds, serves.
///
/// # Errors
/// `io` or `invalid_settings` for the settings file, `server` when the
/// address cannot be bound.
pub async fn serve(config: HarimConfig) -> Result<HarimHandle, HarimError> {
    let checked = Settings::from_file(&config.settings_path)?.check(config.env.as_ref())?;
    let listen = config.listen.unwrap_or(checked.listen);
    let limits = checked.limits;
    let key = TokenKey::new()?;
    let started = Instant::now();
    let table = Table::build(checked, &key, None, 0);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| HarimError::Server(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| HarimError::Server(e.to_string()))?;
    let shared = Arc::new(Shared {
        table: RwLock::new(Arc::new(table)),
        key,
        metrics: Metrics::default(),
        client: client(),
        clock: config.clock,
        started,
        settings_path: config.settings_path,
        env: config.env,
        listen,
    });
    let app = crate::http::router(Arc::clone(&shared)).layer(axum::middleware::from_fn_with_state(
        Duration::from_millis(limits.request_timeout_ms),
        crate::http::deadline,
    ));
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, app, limits, stop_rx));
    tracing::info!(%addr, "Harim listening");
    Ok(HarimHandle {
        addr,
        shared,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

/// Accepts connections up to `max_connections` (past it: accepted and
/// closed at once), each with the header-read timeout; on stop, open
/// connections finish their request.
async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: oneshot::Receiver<()>,
) -> Result<(), HarimError> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyDeadlineLayer::new(Duration::from_millis(
            limits.body_read_timeout_ms,
        )))
        .service(app);
    let header_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    pooya_http_serve::serve(listener, service, permits, header_timeout, stop).await;
    Ok(())
}

impl HarimHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Reads the settings file again (as SIGHUP and `POST
    /// /v1/admin/reload` do).
    ///
    /// # Errors
    /// `io` or `invalid_settings`; the table in force is then kept.
    pub fn reload(&self) -> Result<ReloadReport, HarimError> {
        self.shared.reload()
    }

    /// Stops accepting, lets open requests finish.
    ///
    /// # Errors
    /// `server` if the accept loop failed.
    pub async fn shutdown(mut self) -> Result<(), HarimError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await.map_err(|e| HarimError::Server(e.to_string()))?,
            None => Ok(()),
        }
    }
}

/// Harim on its own thread and runtime, for synchronous callers.
pub struct BackgroundHarim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), HarimError>>>,
}

impl fmt::Debug for BackgroundHarim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundHarim")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Starts Harim on its own thread with a 2-worker runtime.
///
/// # Errors
/// As [`serve`].
pub fn spawn_on_thread(config: HarimConfig) -> Result<BackgroundHarim, HarimError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("pooya-harim".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| HarimError::Server(e.to_string()))?;
            rt.block_on(async move {
                match serve(config).await {
                    Ok(h) => {
                        let _ = ready_tx.send(Ok((h.addr, Arc::clone(&h.shared))));
                        let _ = stop_rx.await;
                        h.shutdown().await
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.clone()));
                        Err(e)
                    }
                }
            })
        })
        .map_err(|e| HarimError::Server(e.to_string()))?;
    let (addr, shared) = ready_rx
        .recv()
        .map_err(|_| HarimError::Server("the server thread ended before it started".into()))??;
    Ok(BackgroundHarim {
        addr,
        shared,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

impl BackgroundHarim {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Reads the settings file again.
    ///
    /// # Errors
    /// As [`HarimHandle::reload`].
    pub fn reload(&self) -> Result<ReloadReport, HarimError> {
        self.shared.reload()
    }

    /// Stops it and waits for the thread.
    ///
    /// # Errors
    /// `server` if it failed.
    pub fn shutdown(mut self) -> Result<(), HarimError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), HarimError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| HarimError::Server("the server thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundHarim {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
