//! The HTTP/1 accept loop shared by the issuer (`pooya-issuer`) and Harim
//! (`pooya-harim`): each server keeps its own limits and settings and
//! hands [`serve`] what the loop needs.
//!
//! What the loop guarantees:
//! - at most as many open connections as `permits` has permits: past that
//!   a new connection is accepted and closed at once, so the listen
//!   backlog never fills with clients nobody answers, and permits come
//!   back as connections close (the header-read timeout closes stalled
//!   ones);
//! - `TCP_NODELAY` on every connection, hyper's HTTP/1 server with the
//!   header-read timeout (RFC 9112 §2: a request starts with its header
//!   section);
//! - when `shutdown` completes, the listener closes at once, open
//!   connections finish the request in flight (hyper's graceful shutdown)
//!   and [`serve`] returns once the last one has closed.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How long the loop waits after a failed `accept` (out of descriptors,
/// `EMFILE`, and the like) instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Accepts connections on `listener` until `shutdown` completes, serving
/// each with `service` under hyper's HTTP/1 server.
///
/// A connection takes one permit of `permits` for its life; with none
/// left it is closed as soon as it is accepted. `header_read_timeout`
/// bounds the wait for each request's header section. When `shutdown`
/// completes (whatever its output: a dropped `oneshot` sender stops the
/// loop too), the listener is dropped, every open connection is told to
/// shut down gracefully (the request in flight is answered, then the
/// connection closes) and the function returns when all have closed.
///
/// Failures of single connections are logged at `debug` and do not stop
/// the loop; failed accepts are logged at `warn` and retried after a short
/// pause.
pub async fn serve<S, B, F>(
    listener: TcpListener,
    service: S,
    permits: Arc<Semaphore>,
    header_read_timeout: Duration,
    shutdown: F,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    F: Future,
{
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut open = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        while open.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!("connection closed: the open-connection cap is reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let hyper_service = TowerToHyperService::new(service.clone());
        let mut closing = closing_rx.clone();
        open.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => r,
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while open.join_next().await.is_some() {}
}
