//! The shared accept loop against raw TCP clients on 127.0.0.1: it
//! answers, refuses connections past the cap and takes them again when a
//! permit comes back, closes stalled connections on the header-read
//! timeout, and on shutdown stops accepting and drains open connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
const LIMIT: Duration = Duration::from_secs(10);

/// A running loop: its address, its stop and its task.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Starts the loop on an ephemeral port with `permits` connections; each
/// answer waits for `gate` when one is given.
async fn start(permits: usize, header_timeout: Duration, gate: Option<Arc<Notify>>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(move |_req: Request<Incoming>| {
        let gate = gate.clone();
        async move {
            if let Some(g) = gate {
                g.notified().await;
            }
            Ok::<_, Infallible>(Response::new(String::from("hello")))
        }
    });
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(pooya_http_serve::serve(
        listener,
        service,
        Arc::new(Semaphore::new(permits)),
        header_timeout,
        stop_rx,
    ));
    Running { addr, stop, task }
}

/// Reads one whole answer of `hello` (its header and 5-byte body).
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).ends_with("\r\n\r\nhello") {
        let n = timeout(LIMIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed before the answer: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// Reads until the server closes; true when it closed (EOF or reset)
/// within the limit.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn answers_and_keeps_the_connection_alive() {
    let server = start(4, Duration::from_secs(5), None).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        c.write_all(GET).await.unwrap();
        let answer = read_answer(&mut c).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }
    server.stop.send(()).unwrap();
    timeout(LIMIT, server.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_connection_past_the_cap_is_closed_and_a_freed_permit_comes_back() {
    let server = start(1, Duration::from_secs(5), None).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(GET).await.unwrap();
    read_answer(&mut first).await;

    // The one permit is held by `first` (kept alive): the next is closed
    // without an answer.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    let _ = second.write_all(GET).await;
    assert!(closed_within(&mut second, LIMIT).await);

    // `first` closes; its permit comes back once the server sees the EOF.
    drop(first);
    let mut answered = false;
    for _ in 0..100 {
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        if third.write_all(GET).await.is_ok() {
            let mut buf = [0u8; 1024];
            if let Ok(Ok(n)) = timeout(LIMIT, third.read(&mut buf)).await
                && n > 0
            {
                assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
                answered = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "the freed permit never came back");
    server.stop.send(()).unwrap();
    timeout(LIMIT, server.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stalled_header_is_closed_on_the_header_timeout() {
    let server = start(4, Duration::from_millis(200), None).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: te").await.unwrap();
    let started = tokio::time::Instant::now();
    assert!(closed_within(&mut c, LIMIT).await);
    assert!(started.elapsed() >= Duration::from_millis(150));
    server.stop.send(()).unwrap();
    timeout(LIMIT, server.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drains_open_connections() {
    let gate = Arc::new(Notify::new());
    let server = start(4, Duration::from_secs(5), Some(Arc::clone(&gate))).await;
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(GET).await.unwrap();
    // Let the request reach the handler before stopping.
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.stop.send(()).unwrap();
    let mut task = server.task;
    // The request in flight holds the loop open.
    assert!(
        timeout(Duration::from_millis(300), &mut task)
            .await
            .is_err()
    );
    // The listener is closed: a new connection is refused.
    assert!(TcpStream::connect(server.addr).await.is_err());

    gate.notify_one();
    let answer = read_answer(&mut busy).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        closed_within(&mut busy, LIMIT).await,
        "kept alive after shutdown"
    );
    timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_dropped_stop_sender_stops_the_loop() {
    let server = start(4, Duration::from_secs(5), None).await;
    drop(server.stop);
    timeout(LIMIT, server.task).await.unwrap().unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}
