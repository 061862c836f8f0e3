//! The single database writer with group commit.
//!
//! Every state change (spent steps, failure counters, activation codes,
//! outbox) is a job run on one dedicated thread that owns the only writing
//! connection. The thread takes every job waiting in its queue, runs each in
//! its own `SAVEPOINT` inside one `BEGIN IMMEDIATE … COMMIT`, and answers the
//! jobs only after that commit is on disk (`synchronous = FULL`). So:
//!
//! - jobs are serialised: "is this step spent? then mark it" cannot race;
//! - a job's answer never runs ahead of the disk: an accepted code is spent
//!   across crashes and restarts;
//! - one fsync covers a whole batch, which is what lets thousands of
//!   verifications a second each make a durable write.
//!
//! A job that returns `Err` (or panics) is rolled back to its savepoint
//! without touching the others in its batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::DbError;

type Reply<R> = Box<dyn FnOnce(Result<R, DbError>) + Send>;

trait ErasedJob: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Completion>;
}

trait Completion: Send {
    fn complete(self: Box<Self>, commit: Result<(), DbError>);
}

struct Job<F, R> {
    f: F,
    reply: Reply<R>,
}

struct Done<R> {
    result: Result<R, DbError>,
    reply: Reply<R>,
}

impl<R: Send + 'static> Completion for Done<R> {
    fn complete(self: Box<Self>, commit: Result<(), DbError>) {
        let result = match (commit, self.result) {
            (Ok(()), r) => r,
            (Err(e), Ok(_)) => Err(e),
            (Err(_), Err(e)) => Err(e),
        };
        (self.reply)(result);
    }
}

impl<F, R> ErasedJob for Job<F, R>
where
    F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Completion> {
        let Job { f, reply } = *self;
        let result = match conn.execute_batch("SAVEPOINT job") {
            Err(e) => Err(DbError::from(e)),
            Ok(()) => {
                let r = catch_unwind(AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(DbError::Storage("write job panicked".into())));
                let end = if r.is_ok() {
                    conn.execute_batch("RELEASE job")
                } else {
                    conn.execute_batch("ROLLBACK TO job; RELEASE job")
                };
                match (end, r) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(DbError::from(e)),
                }
            }
        };
        Box::new(Done { result, reply })
    }
}

enum Msg {
    Job(Box<dyn ErasedJob>),
    Stop,
}

/// Periodic housekeeping run by the writer between batches.
pub type Housekeeping = Box<dyn FnMut(&Connection) -> Result<(), DbError> + Send>;

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

/// Owner of the writer thread (and its checkpointer), for stopping it.
pub struct WriterThread {
    tx: mpsc::Sender<Msg>,
    handle: Option<JoinHandle<()>>,
    checkpointer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

fn start_checkpointer(
    path: std::path::PathBuf,
    interval: Duration,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>), DbError> {
    let conn = Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let (tx, rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("pooya-issuer-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                // PASSIVE copies what it can without waiting for the writer
                // or readers (SQLite, "Write-Ahead Logging", §4).
                let r =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                if let Err(e) = r {
                    tracing::debug!(error = %e, "passive checkpoint failed");
                }
            }
        })
        .map_err(|e| DbError::Server(format!("spawning the checkpointer: {e}")))?;
    Ok((tx, handle))
}

/// Counters the writer keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: std::sync::atomic::AtomicU64,
    /// Jobs run.
    pub jobs: std::sync::atomic::AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `conn`. `housekeeping` runs in its own
    /// transaction at most every `every`.
    ///
    /// # Errors
    /// [`IssuerError::Server`] when the thread cannot be spawned.
    /// With `checkpoint_every`, SQLite's automatic WAL checkpoint (which
    /// would run inside a commit and stall every waiting job) is turned off
    /// on this connection and a separate thread runs passive checkpoints at
    /// that interval on its own connection, beside the writer.
    pub fn start(
        mut conn: Connection,
        batch_max: usize,
        stats: std::sync::Arc<WriterStats>,
        mut housekeeping: Housekeeping,
        every: Duration,
        checkpoint_every: Option<Duration>,
    ) -> Result<(Writer, WriterThread), DbError> {
        let checkpointer = match (checkpoint_every, conn.path()) {
            (Some(interval), Some(path)) if !path.is_empty() => {
                let c = start_checkpointer(std::path::PathBuf::from(path), interval)?;
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                Some(c)
            }
            _ => None,
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        let handle = std::thread::Builder::new()
            .name("pooya-issuer-writer".into())
            .spawn(move || {
                let mut last_housekeeping = Instant::now();
                let mut batch: Vec<Box<dyn ErasedJob>> = Vec::with_capacity(batch_max);
                let mut stopping = false;
                while !stopping {
                    match rx.recv_timeout(every) {
                        Ok(Msg::Job(j)) => batch.push(j),
                        Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                            stopping = true
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                    }
                    while batch.len() < batch_max && !stopping {
                        match rx.try_recv() {
                            Ok(Msg::Job(j)) => batch.push(j),
                            Ok(Msg::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                                stopping = true
                            }
                            Err(mpsc::TryRecvError::Empty) => break,
                        }
                    }
                    if !batch.is_empty() {
                        run_batch(&mut conn, &mut batch, &stats);
                    }
                    if last_housekeeping.elapsed() >= every {
                        last_housekeeping = Instant::now();
                        let r = conn.transaction().map_err(DbError::from).and_then(|tx| {
                            housekeeping(&tx)?;
                            tx.commit().map_err(DbError::from)
                        });
                        if let Err(e) = r {
                            tracing::warn!(code = e.code(), error = %e, "housekeeping failed");
                        }
                    }
                }
                // Jobs still queued after Stop get `Unavailable` when their
                // reply is dropped with the receiver.
                drop(rx);
                if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
                    tracing::debug!(error = %e, "checkpoint at shutdown failed");
                }
            })
            .map_err(|e| DbError::Server(format!("spawning the writer: {e}")))?;
        Ok((
            Writer { tx: tx.clone() },
            WriterThread {
                tx,
                handle: Some(handle),
                checkpointer,
            },
        ))
    }

    fn submit<F, R>(&self, f: F, reply: Reply<R>) -> Result<(), DbError>
    where
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        self.tx
            .send(Msg::Job(Box::new(Job { f, reply })))
            .map_err(|_| DbError::Unavailable)
    }

    /// Runs `f` in the writer's next transaction and answers once it is
    /// committed.
    ///
    /// # Errors
    /// What `f` returns; [`IssuerError::Storage`] when the commit fails;
    /// [`IssuerError::Unavailable`] once the writer has stopped.
    pub async fn run<F, R>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            f,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await.unwrap_or(Err(DbError::Unavailable))
    }

    /// As [`Writer::run`], blocking the calling thread (never call it on an
    /// async executor's thread).
    ///
    /// # Errors
    /// As [`Writer::run`].
    #[cfg(test)]
    pub fn run_blocking<F, R>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            f,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv().unwrap_or(Err(DbError::Unavailable))
    }
}

fn run_batch(conn: &mut Connection, batch: &mut Vec<Box<dyn ErasedJob>>, stats: &WriterStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let n = batch.len() as u64;
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Nothing runs outside a transaction: dropping the jobs drops their
        // reply senders, so every caller gets `Unavailable`.
        tracing::error!(error = %e, "the writer cannot begin a transaction");
        batch.clear();
        return;
    }
    let mut done: Vec<Box<dyn Completion>> = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        done.push(job.run(conn));
    }
    let commit = conn.execute_batch("COMMIT").map_err(DbError::from);
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    } else {
        stats.commits.fetch_add(1, Relaxed);
        stats.jobs.fetch_add(n, Relaxed);
    }
    for c in done {
        c.complete(commit.clone());
    }
}

impl WriterThread {
    /// Stops the writer after the jobs already queued and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some((tx, h)) = self.checkpointer.take() {
            let _ = tx.send(());
            let _ = h.join();
        }
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn start(dir: &std::path::Path) -> (Writer, WriterThread) {
        let conn = Connection::open(dir.join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (k INTEGER PRIMARY KEY);")
            .unwrap();
        Writer::start(
            conn,
            64,
            Arc::new(WriterStats::default()),
            Box::new(|_| Ok(())),
            Duration::from_secs(60),
            Some(Duration::from_millis(10)),
        )
        .unwrap()
    }

    #[test]
    fn jobs_are_serialised_and_failed_jobs_roll_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (w, thread) = start(dir.path());
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    w.run_blocking(move |c| {
                        let n = c.execute("INSERT OR IGNORE INTO t (k) VALUES (?1)", [i % 5])?;
                        if i == 7 {
                            return Err(DbError::Storage("boom".into()));
                        }
                        Ok(n)
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let inserted: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
        assert_eq!(inserted, 5, "each key inserted exactly once");
        assert!(results[7].is_err());
        let count: i64 = w
            .run_blocking(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(count, 5);
        thread.stop();
        assert_eq!(
            w.run_blocking(|_| Ok(())).unwrap_err(),
            DbError::Unavailable
        );
    }

    #[test]
    fn a_panicking_job_does_not_kill_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _thread) = start(dir.path());
        let r: Result<(), _> = w.run_blocking(|c| {
            c.execute("INSERT INTO t (k) VALUES (1)", [])?;
            panic!("job bug");
        });
        assert!(r.is_err());
        let count: i64 = w
            .run_blocking(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(count, 0);
    }
}
