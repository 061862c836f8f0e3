//! Sending SMS: the [`SmsSender`] trait and its default, the outbox table.
//!
//! The default [`OutboxSender`] stores each message (body sealed, since it
//! may carry a code) in `sms_outbox`, where operators read it through
//! `GET /v1/sms/outbox` and tests through [`read_outbox`]. A real SMS
//! provider implements [`SmsSender`] and is passed to the server instead.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::IssuerError;
use crate::keys::{FileKeyProvider, KeyProvider};
use crate::writer::Writer;

/// One SMS message.
#[derive(Clone)]
pub struct Sms {
    /// The recipient, `+989…`.
    pub to: String,
    /// The sender shown to the recipient (the bank's number).
    pub from: String,
    /// The text; may carry a code, so wiped on drop and never logged.
    pub body: Zeroizing<String>,
    /// When it was handed over, Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for Sms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sms")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("body", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Something that delivers SMS messages. Called from a blocking thread,
/// after the state change the message reports is committed.
pub trait SmsSender: Send + Sync + 'static {
    /// Hands one message over for delivery.
    ///
    /// # Errors
    /// [`IssuerError::Sms`] when the provider refuses it.
    fn send(&self, sms: &Sms) -> Result<(), IssuerError>;
}

const OUTBOX_PURPOSE: &str = "sms-body";

/// The default sender: the `sms_outbox` table.
pub struct OutboxSender {
    writer: Writer,
    keys: Arc<dyn KeyProvider>,
}

impl OutboxSender {
    pub(crate) fn new(writer: Writer, keys: Arc<dyn KeyProvider>) -> Self {
        Self { writer, keys }
    }
}

impl SmsSender for OutboxSender {
    fn send(&self, sms: &Sms) -> Result<(), IssuerError> {
        let sealed = self
            .keys
            .seal(OUTBOX_PURPOSE, sms.to.as_bytes(), sms.body.as_bytes())?;
        let to = sms.to.clone();
        let from = sms.from.clone();
        let at = sms.created_at;
        self.writer.run_blocking(move |c| {
            c.prepare_cached(
                "INSERT INTO sms_outbox (to_phone, sender, body_sealed, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![to, from, sealed, at as i64])?;
            Ok(())
        })
    }
}

/// A delivery to run on the SMS queue's thread.
pub(crate) type SmsJob = Box<dyn FnOnce() + Send + 'static>;

/// Messages sent after their request is answered (one-time PINs, short-code
/// replies), one at a time and in the order queued, on a thread of their
/// own. Answers therefore never wait for (or reveal) a delivery, and a
/// message queued after another is delivered after it.
pub(crate) struct SmsQueue {
    tx: Mutex<Option<mpsc::Sender<SmsJob>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SmsQueue {
    /// Starts the queue's thread.
    pub(crate) fn start() -> Result<Self, IssuerError> {
        let (tx, rx) = mpsc::channel::<SmsJob>();
        let thread = std::thread::Builder::new()
            .name("pooya-issuer-sms".into())
            .spawn(move || {
                for job in rx {
                    // A panicking sender loses its message, not the queue.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .map_err(|e| IssuerError::Server(format!("spawning the SMS thread: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a delivery; [`IssuerError::Unavailable`] once closed.
    pub(crate) fn push(&self, job: SmsJob) -> Result<(), IssuerError> {
        let guard = self.tx.lock().map_err(|_| IssuerError::Unavailable)?;
        match guard.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| IssuerError::Unavailable),
            None => Err(IssuerError::Unavailable),
        }
    }

    /// Stops taking messages, delivers those queued and joins the thread.
    /// Must not be called from a queued job.
    pub(crate) fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A message as `GET /v1/sms/outbox` shows it. Its `Debug` hides the text
/// (it may carry a code), which is wiped on drop.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// The recipient.
    pub to: String,
    /// The sender.
    pub from: String,
    /// The text; may carry a one-time PIN or an activation code.
    pub body: Zeroizing<String>,
    /// Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("body", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Most messages one outbox read returns (the newest ones).
pub const OUTBOX_LIMIT: i64 = 1000;

/// Reads the outbox, oldest first (newest last), for one phone (`+989…`)
/// or for everyone; at most [`OUTBOX_LIMIT`] newest messages.
///
/// # Errors
/// [`IssuerError::Storage`], or [`IssuerError::Crypto`] for a body the key
/// does not open.
pub fn read_outbox_with(
    conn: &Connection,
    keys: &dyn KeyProvider,
    phone: Option<&str>,
) -> Result<Vec<OutboxEntry>, IssuerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT to_phone, sender, body_sealed, created_at FROM ( \
           SELECT id, to_phone, sender, body_sealed, created_at FROM sms_outbox \
           WHERE ?1 IS NULL OR to_phone = ?1 ORDER BY id DESC LIMIT ?2 \
         ) ORDER BY id ASC",
    )?;
    let rows = stmt.query_map(params![phone, OUTBOX_LIMIT], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (to, from, sealed, at) = row?;
        let body = keys.open(OUTBOX_PURPOSE, to.as_bytes(), &sealed)?;
        let body = Zeroizing::new(
            String::from_utf8(body.to_vec())
                .map_err(|_| IssuerError::Crypto("outbox body is not UTF-8"))?,
        );
        out.push(OutboxEntry {
            to,
            from,
            body,
            created_at: u64::try_from(at).unwrap_or(0),
        });
    }
    Ok(out)
}

/// Reads the outbox of a data directory made by [`init`](crate::init) with
/// the default key file: what tests and demos use to play the customer
/// reading their SMS. `phone` in any form [`pooya_protocol::normalize_phone`]
/// accepts.
///
/// # Errors
/// [`IssuerError`] when the directory, key or database cannot be read, or
/// the phone number is invalid.
pub fn read_outbox(data_dir: &Path, phone: Option<&str>) -> Result<Vec<OutboxEntry>, IssuerError> {
    let keys = FileKeyProvider::load(&data_dir.join(crate::db::KEY_FILE))?;
    let phone = phone.map(pooya_protocol::normalize_phone).transpose()?;
    let conn = Connection::open_with_flags(
        data_dir.join(crate::db::DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    read_outbox_with(&conn, &keys, phone.as_deref())
}
