//! [`Store`] over SQLite: every write is a job of the single writer
//! (`crate::writer`), so the jobs of one file are serialised and each
//! answer waits for its commit; reads go to the pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_trait::async_trait;
use pooya_issuer_service::merchants::Merchant;
use pooya_issuer_service::outbox::{NewSms, NoticeKind, OutboxEntry, open_dev_rows};
use pooya_issuer_service::rules::{
    self, CardLock, ESCALATION_WINDOW_SECS, FailureSettlement, HOUR, LockState, Lockout, Mark,
    OneTimeState, SendHistory, SettleDecision, SpendDecision, SpendInput,
};
use pooya_issuer_service::settings::{MAX_ACTIVATION_TTL_SECS, MAX_FAILURE_WINDOW_SECS};
use pooya_issuer_service::store::{
    ActivationFailure, ActivationLookup, ActivationWrite, CardRef, CardState, CardStatus, CodeCard,
    CodeChannel, CodeState, DeliveryReport, DevSms, Enrolled, Enrollment, Hash, IssueCode, Issued,
    OneTimeCodeRow, OutboxCounts, PendingActivation, QueuedSms, SealedKind, SealedValue,
    Settlement, Spend, StatusCause, StatusOutcome, Store, Stored, Unblocked, UnknownSettled,
};
use pooya_issuer_service::{FileKeyProvider, IssuerError, Role};
use pooya_protocol::PinKind;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::DbError;
use crate::db::{DB_FILE, KEY_FILE, ReadPool, open_writer};
use crate::writer::{Writer, WriterStats, WriterThread};

/// How long an unknown card number's failure counters are kept idle.
const PROBE_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// How long a delivered or given-up message's row is kept (payload wiped).
const DELIVERED_RETENTION_SECS: i64 = 24 * 3600;

/// Tuning of the SQLite store (the `read_connections`,
/// `writer_batch_max` and `checkpoint_interval_ms` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Idle read connections kept.
    pub read_connections: usize,
    /// Most jobs in one group commit.
    pub writer_batch_max: usize,
    /// Passive WAL checkpoints this often beside the writer (0: SQLite's
    /// automatic checkpoints).
    pub checkpoint_interval_ms: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            read_connections: 4,
            writer_batch_max: 512,
            checkpoint_interval_ms: 25,
        }
    }
}

/// The SQLite store of one data directory.
pub struct SqliteStore {
    writer: Writer,
    readers: ReadPool,
    stats: Arc<WriterStats>,
    thread: std::sync::Mutex<Option<WriterThread>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn storage(e: impl std::fmt::Display) -> IssuerError {
    IssuerError::Storage(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, brings its
    /// schema up to date and starts the writer.
    ///
    /// # Errors
    /// [`IssuerError::Storage`], [`IssuerError::SchemaTooNew`].
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, IssuerError> {
        let conn = open_writer(path)?;
        let stats = Arc::new(WriterStats::default());
        let (writer, thread) = Writer::start(
            conn,
            options.writer_batch_max,
            Arc::clone(&stats),
            Box::new(|_| Ok(())),
            Duration::from_secs(3600),
            match options.checkpoint_interval_ms {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
        )?;
        Ok(Self {
            writer,
            readers: ReadPool::new(path, options.read_connections),
            stats,
            thread: std::sync::Mutex::new(Some(thread)),
            path: path.to_owned(),
        })
    }

    /// Opens the database of a data directory (`issuer.db`).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_dir(data_dir: &Path, options: SqliteOptions) -> Result<Self, IssuerError> {
        Self::open(&data_dir.join(DB_FILE), options)
    }

    /// Stops the writer after the jobs already queued.
    pub fn close(&self) {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            t.stop();
        }
    }

    async fn write<F, R>(&self, f: F) -> Result<R, IssuerError>
    where
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        Ok(self.writer.run(f).await?)
    }

    fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R, DbError>) -> Result<R, IssuerError> {
        Ok(self.readers.with(f)?)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// A stored app state; anything else is a storage error (the column's
/// CHECK allows no other).
fn card_status(text: &str) -> rusqlite::Result<CardStatus> {
    CardStatus::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "unknown app_status".into(),
        )
    })
}

/// A [`CardState`] from `id, seed_sealed, seed_generation, drift_first,
/// drift_second, blocked_until, app_status`.
fn card_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<CardState> {
    Ok(CardState {
        id: r.get(0)?,
        seed_sealed: r.get(1)?,
        seed_generation: r.get(2)?,
        drift_first: r.get(3)?,
        drift_second: r.get(4)?,
        blocked_until: r.get(5)?,
        status: card_status(&r.get::<_, String>(6)?)?,
    })
}

/// `Store::change_card_status` inside the writer's transaction.
fn change_card_status(
    c: &Connection,
    card: &CardRef,
    cause: StatusCause,
    now: i64,
) -> Result<Option<StatusOutcome>, DbError> {
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, String, String)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    };
    let found = match card {
        CardRef::Pan(h) => c
            .query_row(
                "SELECT id, app_status, phone, last4 FROM cards WHERE pan_hash = ?1",
                [&h[..]],
                row,
            )
            .optional()?,
        CardRef::Id(id) => c
            .query_row(
                "SELECT id, app_status, phone, last4 FROM cards WHERE id = ?1",
                [id],
                row,
            )
            .optional()?,
    };
    let Some((id, status, phone, last4)) = found else {
        return Ok(None);
    };
    let previous = card_status(&status)?;
    let transition = rules::status_transition(previous, cause);
    if let rules::Transition::Change(to) = transition {
        c.execute(
            "UPDATE cards SET app_status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, to.as_str(), now],
        )?;
        event(
            c,
            now,
            Some(&id),
            None,
            cause.as_str(),
            &format!("{} -> {}", previous.as_str(), to.as_str()),
        )?;
        let notice = pooya_issuer_service::outbox::Notice::AppStatusChanged { last4, cause }
            .plain_to(&phone)?;
        queue(c, &notice, now)?;
    }
    Ok(Some(StatusOutcome {
        card_id: id,
        previous,
        transition,
    }))
}

fn queue(c: &Connection, m: &NewSms, now: i64) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO sms_outbox (message_id, to_phone, kind, payload, sealed, state, \
         next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
    )?
    .execute(params![
        m.message_id,
        m.to,
        m.kind.as_str(),
        m.payload,
        m.sealed,
        now
    ])?;
    Ok(())
}

fn event(
    c: &Connection,
    at: i64,
    card_id: Option<&str>,
    phone: Option<&str>,
    kind: &str,
    detail: &str,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO events (at, card_id, phone, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at, card_id, phone, kind, detail])?;
    Ok(())
}

fn hash_of(v: Vec<u8>) -> Result<Hash, DbError> {
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| DbError::Storage("a stored hash is not 32 bytes".into()))
}

/// The card number's failures within the window and blocks within the
/// escalation window.
fn lock_state(
    c: &Connection,
    pan_hash: &[u8],
    consecutive: i64,
    now: i64,
    rules: Lockout,
) -> Result<LockState, DbError> {
    let times = |sql: &str, since: i64| -> Result<Vec<i64>, DbError> {
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map(params![pan_hash, since], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<i64>, _>>()?)
    };
    Ok(LockState {
        consecutive,
        failures_at: times(
            "SELECT at FROM verify_failures WHERE pan_hash = ?1 AND at > ?2",
            now.saturating_sub(rules.window_secs),
        )?,
        blocks_at: times(
            "SELECT at FROM verify_blocks WHERE pan_hash = ?1 AND at > ?2",
            now - ESCALATION_WINDOW_SECS,
        )?,
    })
}

/// Applies a [`FailureSettlement`] to the rows kept by PAN hash; the
/// caller stores the consecutive count and `blocked_until` where the card
/// number's state lives.
fn apply_failure(
    c: &Connection,
    pan_hash: &[u8],
    now: i64,
    settlement: FailureSettlement,
) -> Result<(), DbError> {
    match settlement {
        FailureSettlement::Count { .. } => {
            c.prepare_cached("INSERT INTO verify_failures (pan_hash, at) VALUES (?1, ?2)")?
                .execute(params![pan_hash, now])?;
        }
        FailureSettlement::Block(_) => {
            c.prepare_cached("DELETE FROM verify_failures WHERE pan_hash = ?1")?
                .execute([pan_hash])?;
            c.prepare_cached("INSERT INTO verify_blocks (pan_hash, at) VALUES (?1, ?2)")?
                .execute(params![pan_hash, now])?;
        }
    }
    Ok(())
}

fn forget_failures(c: &Connection, pan_hash: &[u8]) -> Result<(), DbError> {
    for sql in [
        "DELETE FROM verify_blocks WHERE pan_hash = ?1",
        "DELETE FROM verify_failures WHERE pan_hash = ?1",
        "DELETE FROM probe_failures WHERE pan_hash = ?1",
    ] {
        c.prepare_cached(sql)?.execute([pan_hash])?;
    }
    Ok(())
}

fn load_merchant(c: &Connection, payee_id: &str) -> Result<Option<Merchant>, DbError> {
    Ok(c.prepare_cached(
        "SELECT payee_id, name, created_at, updated_at FROM merchants WHERE payee_id = ?1",
    )?
    .query_row([payee_id], |r| {
        Ok(Merchant {
            payee_id: r.get(0)?,
            name: r.get(1)?,
            created_at: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            updated_at: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        })
    })
    .optional()?)
}

fn settle(c: &Connection, s: &Settlement) -> Result<SettleDecision, DbError> {
    type Row = (i64, i64, i64, i64, i64, String, String, Vec<u8>);
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT failures, blocked_until, seed_generation, drift_first, drift_second, phone, \
             last4, pan_hash FROM cards WHERE id = ?1",
        )?
        .query_row([&s.card_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?;
    let Some((failures, blocked_until, generation, drift_first, drift_second, phone, last4, pan)) =
        row
    else {
        // Cards are never deleted; answered as any failure would be.
        return Ok(SettleDecision::Rejected {
            reason: rules::Reason::WrongCode,
            failure: None,
        });
    };
    let mark = match s.spend {
        Spend::Step { kind, .. } => c
            .prepare_cached(
                "SELECT generation, step FROM step_marks WHERE card_id = ?1 AND key = ?2",
            )?
            .query_row(params![s.card_id, kind.as_str()], |r| {
                Ok(Mark {
                    generation: r.get(0)?,
                    step: r.get(1)?,
                })
            })
            .optional()?,
        _ => None,
    };
    let one_time = match s.spend {
        Spend::OneTime { id, .. } => c
            .prepare_cached(
                "SELECT state, expires_at FROM one_time_codes WHERE id = ?1 AND card_id = ?2",
            )?
            .query_row(params![id, s.card_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
            .and_then(|(state, expires_at)| {
                CodeState::parse(&state).map(|state| OneTimeState { state, expires_at })
            }),
        _ => None,
    };
    let card = CardLock {
        failures,
        blocked_until,
        generation,
        drift_first,
        drift_second,
    };
    let decision = rules::decide_spend(&SpendInput {
        card,
        checked_generation: s.generation,
        spend: s.spend,
        mark,
        one_time,
        now: s.now,
    });
    let reason = match decision {
        SpendDecision::Blocked => return Ok(SettleDecision::Blocked),
        SpendDecision::RefuseUncounted(reason) => {
            return Ok(SettleDecision::Rejected {
                reason,
                failure: None,
            });
        }
        SpendDecision::Accept(acceptance) => {
            match acceptance {
                rules::Acceptance::Step { kind, step, drift } => {
                    c.prepare_cached(
                        "INSERT INTO step_marks (card_id, key, generation, step) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (card_id, key) DO UPDATE SET generation = ?3, step = ?4",
                    )?
                    .execute(params![s.card_id, kind.as_str(), generation, step])?;
                    let old = if kind == PinKind::First {
                        drift_first
                    } else {
                        drift_second
                    };
                    if failures != 0 || old != drift {
                        let sql = if kind == PinKind::First {
                            "UPDATE cards SET failures = 0, drift_first = ?2 WHERE id = ?1"
                        } else {
                            "UPDATE cards SET failures = 0, drift_second = ?2 WHERE id = ?1"
                        };
                        c.prepare_cached(sql)?.execute(params![s.card_id, drift])?;
                    }
                }
                rules::Acceptance::OneTime { id, .. } => {
                    c.prepare_cached(
                        "UPDATE one_time_codes SET state = 'used', closed_at = ?2 WHERE id = ?1",
                    )?
                    .execute(params![id, s.now])?;
                    if failures != 0 {
                        c.prepare_cached("UPDATE cards SET failures = 0 WHERE id = ?1")?
                            .execute([&s.card_id])?;
                    }
                }
            }
            return Ok(SettleDecision::Accepted(acceptance.kind()));
        }
        SpendDecision::RefuseCounted(reason) => reason,
    };
    let state = lock_state(c, &pan, failures, s.now, s.rules)?;
    let settlement = rules::settle_failure(&state, s.now, s.rules);
    apply_failure(c, &pan, s.now, settlement)?;
    match settlement {
        FailureSettlement::Count { consecutive } => {
            c.prepare_cached("UPDATE cards SET failures = ?2 WHERE id = ?1")?
                .execute(params![s.card_id, consecutive])?;
        }
        FailureSettlement::Block(block) => {
            c.prepare_cached("UPDATE cards SET failures = 0, blocked_until = ?2 WHERE id = ?1")?
                .execute(params![s.card_id, block.until])?;
            event(
                c,
                s.now,
                Some(&s.card_id),
                None,
                "blocked",
                &block.audit_detail(),
            )?;
            let notice = pooya_issuer_service::outbox::Notice::of_block(
                &block,
                &last4,
                s.rules.lockout_secs,
            )
            .plain_to(&phone)?;
            queue(c, &notice, s.now)?;
        }
    }
    Ok(SettleDecision::Rejected {
        reason,
        failure: Some(settlement),
    })
}

fn send_histories(
    c: &Connection,
    channel: CodeChannel,
    subjects: &[Vec<u8>],
    now: i64,
) -> Result<Vec<SendHistory>, DbError> {
    let mut out = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let (count, first, last): (i64, Option<i64>, Option<i64>) = c
            .prepare_cached(
                "SELECT count(*), min(at), max(at) FROM otp_sends \
                 WHERE channel = ?1 AND subject = ?2 AND at > ?3",
            )?
            .query_row(params![channel.as_str(), subject, now - HOUR], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        out.push(SendHistory { count, first, last });
    }
    Ok(out)
}

/// Counts a reply without a code against the phone's hourly limit; false
/// when the limit is reached.
fn may_reply(c: &Connection, phone: &str, now: i64, max: u32) -> Result<bool, DbError> {
    let n: i64 = c
        .prepare_cached("SELECT count(*) FROM sms_replies WHERE phone = ?1 AND at > ?2")?
        .query_row(params![phone, now - HOUR], |r| r.get(0))?;
    if n >= i64::from(max) {
        return Ok(false);
    }
    c.prepare_cached("INSERT INTO sms_replies (phone, at) VALUES (?1, ?2)")?
        .execute(params![phone, now])?;
    Ok(true)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn close(&self) {
        Self::close(self);
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, IssuerError> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?)
        })
    }

    async fn put_meta_once(
        &self,
        entries: Vec<(&'static str, Vec<u8>)>,
        event_kind: &'static str,
        at: i64,
    ) -> Result<Vec<Vec<u8>>, IssuerError> {
        self.write(move |c| {
            let first = entries
                .first()
                .map(|e| e.0)
                .ok_or_else(|| DbError::Storage("no meta entries".into()))?;
            let exists: Option<i64> = c
                .query_row("SELECT 1 FROM meta WHERE key = ?1", [first], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                for (k, v) in &entries {
                    c.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        params![k, v],
                    )?;
                }
                event(c, at, None, None, event_kind, "")?;
            }
            let mut out = Vec::with_capacity(entries.len());
            for (k, _) in &entries {
                let v: Option<Vec<u8>> = c
                    .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()?;
                out.push(v.unwrap_or_default());
            }
            Ok(out)
        })
        .await
    }

    async fn initialize(
        &self,
        meta: Vec<(&'static str, Vec<u8>)>,
        tokens: Vec<(Hash, Role)>,
        at: i64,
    ) -> Result<(), IssuerError> {
        self.write(move |c| {
            if let Some((first, _)) = meta.first() {
                let exists: Option<i64> = c
                    .query_row("SELECT 1 FROM meta WHERE key = ?1", [first], |r| r.get(0))
                    .optional()?;
                if exists.is_some() {
                    return Err(IssuerError::AlreadyInitialized.into());
                }
            }
            for (k, v) in &meta {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            for (hash, role) in &tokens {
                c.execute(
                    "INSERT INTO api_tokens (token_hash, role, created_at) VALUES (?1, ?2, ?3)",
                    params![&hash[..], role.as_str(), at],
                )?;
            }
            event(c, at, None, None, "initialised", "")?;
            Ok(())
        })
        .await
    }

    async fn tokens(&self) -> Result<Vec<(Hash, Role)>, IssuerError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT token_hash, role FROM api_tokens WHERE revoked_at IS NULL")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (hash, role) = row?;
                if let (Ok(h), Some(role)) = (hash_of(hash), Role::parse(&role)) {
                    out.push((h, role));
                }
            }
            Ok(out)
        })
    }

    async fn enroll(&self, e: Enrollment) -> Result<Enrolled, IssuerError> {
        self.write(move |c| {
            let now = e.now;
            let existing: Option<(String, String)> = c
                .prepare_cached("SELECT id, phone FROM cards WHERE pan_hash = ?1")?
                .query_row([&e.pan_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let mut old_phone = None;
            let card_id = match existing {
                Some((id, phone)) => {
                    if phone != e.phone {
                        old_phone = Some(phone);
                    }
                    // Re-enrollment (card and card PIN at an ATM) lifts a
                    // block of its dynamic PINs, escalated or not.
                    c.execute(
                        "UPDATE cards SET phone = ?2, updated_at = ?3, failures = 0, blocked_until = 0 \
                         WHERE id = ?1",
                        params![id, e.phone, now],
                    )?;
                    id
                }
                None => {
                    c.execute(
                        "INSERT INTO cards (id, pan_hash, pan_sealed, last4, phone, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        params![e.new_card_id, &e.pan_hash[..], e.pan_sealed, e.last4, e.phone, now],
                    )?;
                    e.new_card_id.clone()
                }
            };
            // Card and card PIN at an ATM: the block, its escalation and
            // the failure window start afresh.
            forget_failures(c, &e.pan_hash)?;
            match e.code {
                Some(code) => {
                    c.execute(
                        "UPDATE activation_codes SET state = 'superseded', closed_at = ?2 \
                         WHERE card_id = ?1 AND state = 'pending'",
                        params![card_id, now],
                    )?;
                    // A fresh guessing budget only when no other code of
                    // this phone is still live: otherwise another card's
                    // pending code would get it too.
                    c.execute(
                        "DELETE FROM activation_failures WHERE phone = ?1 AND NOT EXISTS \
                         (SELECT 1 FROM activation_codes WHERE phone = ?1 \
                          AND state = 'pending' AND expires_at > ?2)",
                        params![e.phone, now],
                    )?;
                    c.execute(
                        "INSERT INTO activation_codes (card_id, phone, code_hash, state, created_at, expires_at) \
                         VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
                        params![card_id, e.phone, &code.hash[..], now, code.expires_at],
                    )?;
                }
                None => {
                    c.execute("UPDATE cards SET sms_enabled = 1 WHERE id = ?1", [&card_id])?;
                }
            }
            event(
                c,
                now,
                Some(&card_id),
                Some(&e.phone),
                "enrolled",
                if e.code.is_some() { "app" } else { "sms" },
            )?;
            queue(c, &e.message, now)?;
            let moved = old_phone.is_some();
            if let Some(old) = old_phone {
                // The previous number learns that the card moved.
                let notice = e.phone_changed.clone().plain_to(&old)?;
                queue(c, &notice, now)?;
            }
            Ok(Enrolled {
                card_id,
                moved_from_another_phone: moved,
            })
        })
        .await
    }

    async fn activation_lookup(
        &self,
        phone: &str,
        code_hash: Hash,
        now: i64,
    ) -> Result<ActivationLookup, IssuerError> {
        self.read(|c| {
            let live: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM activation_codes \
                     WHERE phone = ?1 AND state = 'pending' AND expires_at > ?2",
                )?
                .query_row(params![phone, now], |r| r.get(0))?;
            let failures: i64 = c
                .prepare_cached("SELECT failures FROM activation_failures WHERE phone = ?1")?
                .query_row([phone], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let found = c
                .prepare_cached(
                    "SELECT a.id, a.card_id, c.pan_sealed, c.phone FROM activation_codes a \
                     JOIN cards c ON c.id = a.card_id \
                     WHERE a.code_hash = ?1 AND a.phone = ?2 AND a.state = 'pending' AND a.expires_at > ?3",
                )?
                .query_row(params![&code_hash[..], phone, now], |r| {
                    Ok(PendingActivation {
                        code_id: r.get(0)?,
                        card_id: r.get(1)?,
                        pan_sealed: r.get(2)?,
                        registered_phone: r.get(3)?,
                    })
                })
                .optional()?;
            Ok(ActivationLookup {
                live_code: live > 0,
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                found,
            })
        })
    }

    async fn complete_activation(&self, a: ActivationWrite) -> Result<bool, IssuerError> {
        self.write(move |c| {
            let now = a.now;
            let failures: i64 = c
                .prepare_cached("SELECT failures FROM activation_failures WHERE phone = ?1")?
                .query_row([&a.phone], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            if failures >= i64::from(a.max_failures) {
                return Ok(false);
            }
            let spent = c.execute(
                "UPDATE activation_codes SET state = 'used', closed_at = ?2 \
                 WHERE id = ?1 AND state = 'pending' AND expires_at > ?2",
                params![a.code_id, now],
            )?;
            if spent != 1 {
                return Ok(false);
            }
            c.execute(
                "UPDATE activation_codes SET state = 'superseded', closed_at = ?2 \
                 WHERE card_id = ?1 AND state = 'pending'",
                params![a.card_id, now],
            )?;
            c.execute(
                "UPDATE cards SET seed_sealed = ?2, seed_generation = seed_generation + 1, \
                 device_label = ?3, device_public_key = ?4, activated_at = ?5, \
                 drift_first = 0, drift_second = 0, failures = 0, \
                 app_status = CASE app_status WHEN 'revoked' THEN 'active' ELSE app_status END, \
                 updated_at = ?5 WHERE id = ?1",
                params![
                    a.card_id,
                    a.seed_sealed,
                    a.device_label,
                    &a.device_public_key[..],
                    now
                ],
            )?;
            c.execute("DELETE FROM used_steps WHERE card_id = ?1", [&a.card_id])?;
            c.execute(
                "DELETE FROM activation_failures WHERE phone = ?1",
                [&a.phone],
            )?;
            event(
                c,
                now,
                Some(&a.card_id),
                Some(&a.phone),
                "activated",
                &a.device_label,
            )?;
            queue(c, &a.notice, now)?;
            Ok(true)
        })
        .await
    }

    async fn count_activation_failure(
        &self,
        phone: &str,
        now: i64,
        max_failures: u32,
    ) -> Result<ActivationFailure, IssuerError> {
        let phone = phone.to_owned();
        self.write(move |c| {
            let failures: i64 = c
                .prepare_cached(
                    "INSERT INTO activation_failures (phone, failures, updated_at) VALUES (?1, 1, ?2) \
                     ON CONFLICT (phone) DO UPDATE SET failures = failures + 1, updated_at = ?2 \
                     RETURNING failures",
                )?
                .query_row(params![phone, now], |r| r.get(0))?;
            let max = i64::from(max_failures);
            if failures == max {
                c.execute(
                    "UPDATE activation_codes SET state = 'burned', closed_at = ?2 \
                     WHERE phone = ?1 AND state = 'pending'",
                    params![phone, now],
                )?;
                event(c, now, None, Some(&phone), "activation_burned", "")?;
                return Ok(ActivationFailure::Burned);
            }
            Ok(if failures > max {
                ActivationFailure::OverBudget
            } else {
                ActivationFailure::Counted
            })
        })
        .await
    }

    async fn count_activation_stranger(&self, now: i64) -> Result<(), IssuerError> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO activation_strangers (id, guesses, updated_at) VALUES (1, 1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET guesses = guesses + 1, updated_at = ?1",
            )?
            .execute([now])?;
            Ok(())
        })
        .await
    }

    async fn card_by_pan(&self, pan_hash: Hash) -> Result<Option<CardState>, IssuerError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, seed_sealed, seed_generation, drift_first, drift_second, blocked_until, \
                 app_status FROM cards WHERE pan_hash = ?1",
            )?
            .query_row([&pan_hash[..]], card_state)
            .optional()?)
        })
    }

    async fn probe_blocked_until(&self, pan_hash: Hash) -> Result<i64, IssuerError> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT blocked_until FROM probe_failures WHERE pan_hash = ?1")?
                    .query_row([&pan_hash[..]], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0),
            )
        })
    }

    async fn one_time_codes(
        &self,
        card_id: &str,
        since: i64,
    ) -> Result<Vec<OneTimeCodeRow>, IssuerError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, channel, code_hash, state, expires_at FROM one_time_codes \
                 WHERE card_id = ?1 AND created_at > ?2",
            )?;
            let rows = stmt.query_map(params![card_id, since], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, channel, hash, state, expires_at) = row?;
                let (Some(channel), Some(state)) =
                    (CodeChannel::parse(&channel), CodeState::parse(&state))
                else {
                    continue;
                };
                out.push(OneTimeCodeRow {
                    id,
                    channel,
                    code_hash: hash_of(hash)?,
                    state,
                    expires_at,
                });
            }
            Ok(out)
        })
    }

    async fn settle_verification(&self, s: Settlement) -> Result<SettleDecision, IssuerError> {
        self.write(move |c| settle(c, &s)).await
    }

    async fn settle_unknown(
        &self,
        pan_hash: Hash,
        now: i64,
        rules: Lockout,
    ) -> Result<UnknownSettled, IssuerError> {
        self.write(move |c| {
            let (failures, blocked_until): (i64, i64) = c
                .prepare_cached(
                    "SELECT failures, blocked_until FROM probe_failures WHERE pan_hash = ?1",
                )?
                .query_row([&pan_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or((0, 0));
            if blocked_until > now {
                return Ok(UnknownSettled::Blocked);
            }
            let state = lock_state(c, &pan_hash, failures, now, rules)?;
            let settlement = rules::settle_failure(&state, now, rules);
            apply_failure(c, &pan_hash, now, settlement)?;
            let (failures, blocked_until) = match settlement {
                FailureSettlement::Count { consecutive } => (consecutive, 0),
                FailureSettlement::Block(b) => (0, b.until),
            };
            c.prepare_cached(
                "INSERT INTO probe_failures (pan_hash, failures, blocked_until, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pan_hash) DO UPDATE \
                 SET failures = ?2, blocked_until = ?3, updated_at = ?4",
            )?
            .execute(params![&pan_hash[..], failures, blocked_until, now])?;
            Ok(if blocked_until > now {
                UnknownSettled::BlockedNow
            } else {
                UnknownSettled::Counted
            })
        })
        .await
    }

    async fn sms_card(&self, phone: &str, last4: &str) -> Result<Option<CodeCard>, IssuerError> {
        self.read(|c| {
            let row: Option<(String, Vec<u8>, String, String)> = c
                .prepare_cached(
                    "SELECT id, pan_hash, phone, last4 FROM cards \
                     WHERE phone = ?1 AND last4 = ?2 AND sms_enabled = 1 \
                     ORDER BY created_at DESC LIMIT 1",
                )?
                .query_row(params![phone, last4], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            row.map(|(id, pan_hash, phone, last4)| {
                Ok(CodeCard {
                    id,
                    pan_hash: hash_of(pan_hash)?,
                    phone,
                    last4,
                })
            })
            .transpose()
        })
    }

    async fn harim_card(&self, pan_hash: Hash) -> Result<Option<CodeCard>, IssuerError> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT id, phone, last4 FROM cards WHERE pan_hash = ?1")?
                    .query_row([&pan_hash[..]], |r| {
                        Ok(CodeCard {
                            id: r.get(0)?,
                            pan_hash,
                            phone: r.get(1)?,
                            last4: r.get(2)?,
                        })
                    })
                    .optional()?,
            )
        })
    }

    async fn issue_one_time_code(&self, i: IssueCode) -> Result<Issued, IssuerError> {
        self.write(move |c| {
            let now = i.now;
            let histories = send_histories(c, i.channel, &i.subjects, now)?;
            if let Some(wait) = rules::otp_retry_after(&histories, now, i.limits) {
                let mut told = false;
                if let Some((phone, max)) = &i.wait_reply
                    && may_reply(c, phone, now, *max)?
                {
                    let notice = pooya_issuer_service::outbox::Notice::SmsWait { seconds: wait }
                        .plain_to(phone)?;
                    queue(c, &notice, now)?;
                    told = true;
                }
                return Ok(Issued::Limited {
                    retry_after_secs: wait,
                    told_to_wait: told,
                });
            }
            if let Some(card_id) = &i.card_id {
                c.prepare_cached(
                    "UPDATE one_time_codes SET state = 'superseded', closed_at = ?3 \
                     WHERE card_id = ?1 AND channel = ?2 AND state = 'pending'",
                )?
                .execute(params![card_id, i.channel.as_str(), now])?;
                c.prepare_cached(
                    "INSERT INTO one_time_codes (card_id, channel, code_hash, state, created_at, expires_at) \
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
                )?
                .execute(params![card_id, i.channel.as_str(), &i.code_hash[..], now, i.expires_at])?;
                event(c, now, Some(card_id), None, "one_time_code", i.channel.as_str())?;
            }
            let mut stmt = c.prepare_cached(
                "INSERT INTO otp_sends (channel, subject, at) VALUES (?1, ?2, ?3)",
            )?;
            for subject in &i.subjects {
                stmt.execute(params![i.channel.as_str(), subject, now])?;
            }
            if let Some(m) = &i.message {
                queue(c, m, now)?;
            }
            Ok(Issued::Issued)
        })
        .await
    }

    async fn reply_without_code(
        &self,
        phone: &str,
        now: i64,
        max_per_hour: u32,
        message: NewSms,
    ) -> Result<bool, IssuerError> {
        let phone = phone.to_owned();
        self.write(move |c| {
            if !may_reply(c, &phone, now, max_per_hour)? {
                return Ok(false);
            }
            queue(c, &message, now)?;
            Ok(true)
        })
        .await
    }

    async fn unblock(&self, pan_hash: Hash, now: i64) -> Result<Option<Unblocked>, IssuerError> {
        self.write(move |c| {
            forget_failures(c, &pan_hash)?;
            let row: Option<(String, i64)> = c
                .query_row(
                    "SELECT id, blocked_until FROM cards WHERE pan_hash = ?1",
                    [&pan_hash[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, blocked_until)) = row else {
                return Ok(None);
            };
            c.execute(
                "UPDATE cards SET failures = 0, blocked_until = 0 WHERE id = ?1",
                [&id],
            )?;
            let was_blocked = blocked_until > now;
            event(
                c,
                now,
                Some(&id),
                None,
                "unblocked",
                if was_blocked {
                    "was blocked"
                } else {
                    "was not blocked"
                },
            )?;
            Ok(Some(Unblocked {
                card_id: id,
                was_blocked,
            }))
        })
        .await
    }

    async fn card_by_id(&self, card_id: &str) -> Result<Option<CardState>, IssuerError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, seed_sealed, seed_generation, drift_first, drift_second, blocked_until, \
                 app_status FROM cards WHERE id = ?1",
            )?
            .query_row([card_id], card_state)
            .optional()?)
        })
    }

    async fn change_card_status(
        &self,
        card: CardRef,
        cause: StatusCause,
        now: i64,
    ) -> Result<Option<StatusOutcome>, IssuerError> {
        self.write(move |c| change_card_status(c, &card, cause, now))
            .await
    }

    async fn put_merchant(
        &self,
        payee_id: &str,
        name: &str,
        now: i64,
    ) -> Result<(Stored, Merchant), IssuerError> {
        let (id, name) = (payee_id.to_owned(), name.to_owned());
        self.write(move |c| {
            let existed = load_merchant(c, &id)?.is_some();
            c.prepare_cached(
                "INSERT INTO merchants (payee_id, name, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?3) \
                 ON CONFLICT (payee_id) DO UPDATE SET name = ?2, updated_at = ?3",
            )?
            .execute(params![id, name, now])?;
            event(c, now, None, None, "merchant", &id)?;
            let merchant = load_merchant(c, &id)?
                .ok_or_else(|| DbError::Storage("merchant row vanished".into()))?;
            Ok((
                if existed {
                    Stored::Updated
                } else {
                    Stored::Created
                },
                merchant,
            ))
        })
        .await
    }

    async fn merchant(&self, payee_id: &str) -> Result<Option<Merchant>, IssuerError> {
        self.read(|c| load_merchant(c, payee_id))
    }

    async fn claim_messages(
        &self,
        now: i64,
        limit: u32,
        lease_secs: i64,
    ) -> Result<Vec<QueuedSms>, IssuerError> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "UPDATE sms_outbox SET state = 'sending', lease_until = ?2 \
                 WHERE id IN (SELECT id FROM sms_outbox \
                   WHERE (state = 'pending' AND next_attempt_at <= ?1) \
                      OR (state = 'sending' AND lease_until <= ?1) \
                   ORDER BY id LIMIT ?3) \
                 RETURNING id, message_id, to_phone, kind, payload, sealed, attempts, created_at",
            )?;
            let rows = stmt.query_map(params![now, now + lease_secs, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, message_id, to, kind, payload, sealed, attempts, created_at) = row?;
                let kind = NoticeKind::parse(&kind)
                    .ok_or_else(|| DbError::Storage("an outbox row of an unknown kind".into()))?;
                out.push(QueuedSms {
                    id,
                    message_id,
                    to,
                    kind,
                    payload: payload.unwrap_or_default(),
                    sealed,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    created_at,
                });
            }
            // RETURNING gives no order; deliver oldest first.
            out.sort_by_key(|q| q.id);
            Ok(out)
        })
        .await
    }

    async fn message_delivered(
        &self,
        id: i64,
        now: i64,
        gateway_ref: Option<String>,
    ) -> Result<(), IssuerError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE sms_outbox SET state = 'delivered', payload = NULL, delivered_at = ?2, \
                 lease_until = NULL, attempts = attempts + 1, gateway_ref = ?3 WHERE id = ?1",
            )?
            .execute(params![id, now, gateway_ref])?;
            Ok(())
        })
        .await
    }

    async fn message_failed(
        &self,
        id: i64,
        retry_at: Option<i64>,
        error: &str,
    ) -> Result<(), IssuerError> {
        let error = error.to_owned();
        self.write(move |c| {
            match retry_at {
                Some(at) => c
                    .prepare_cached(
                        "UPDATE sms_outbox SET state = 'pending', next_attempt_at = ?2, \
                         lease_until = NULL, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, at, error])?,
                None => c
                    .prepare_cached(
                        "UPDATE sms_outbox SET state = 'failed', payload = NULL, lease_until = NULL, \
                         attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                    )?
                    .execute(params![id, error])?,
            };
            Ok(())
        })
        .await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, IssuerError> {
        self.read(|c| {
            let (pending, failed): (i64, i64) = c.query_row(
                "SELECT coalesce(sum(state IN ('pending', 'sending')), 0), \
                 coalesce(sum(state = 'failed'), 0) FROM sms_outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(OutboxCounts {
                pending: u64::try_from(pending).unwrap_or(0),
                failed: u64::try_from(failed).unwrap_or(0),
            })
        })
    }

    async fn record_delivery_report(
        &self,
        message_id: &str,
        report: DeliveryReport,
        at: i64,
    ) -> Result<bool, IssuerError> {
        let message_id = message_id.to_owned();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO sms_delivery_reports (message_id, report, at) \
                     SELECT ?1, ?2, ?3 WHERE EXISTS \
                     (SELECT 1 FROM sms_outbox WHERE message_id = ?1)",
                )?
                .execute(params![message_id, report.as_str(), at])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delivery_reports(
        &self,
        message_id: &str,
    ) -> Result<Vec<(DeliveryReport, i64)>, IssuerError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT report, at FROM sms_delivery_reports WHERE message_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([message_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (report, at) = row?;
                let report = DeliveryReport::parse(&report).ok_or_else(|| {
                    DbError::Storage("a delivery report of an unknown kind".into())
                })?;
                out.push((report, at));
            }
            Ok(out)
        })
    }

    async fn record_dev_sms(&self, sms: DevSms) -> Result<(), IssuerError> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO dev_sms_log (to_phone, sender, body_sealed, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![sms.to, sms.from, sms.body_sealed, sms.created_at])?;
            Ok(())
        })
        .await
    }

    async fn dev_sms(&self, phone: Option<&str>, limit: u32) -> Result<Vec<DevSms>, IssuerError> {
        self.read(|c| dev_sms_rows(c, phone, limit))
    }

    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>, IssuerError> {
        self.read(|c| crate::sealed::sealed_values(c, kind, after, limit))
    }

    async fn replace_sealed(
        &self,
        kind: SealedKind,
        key: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, IssuerError> {
        let (key, old, new) = (key.to_owned(), old.to_vec(), new.to_vec());
        self.write(move |c| crate::sealed::replace_sealed(c, kind, &key, &old, &new))
            .await
    }

    async fn set_meta(
        &self,
        key: &str,
        value: Vec<u8>,
        event_kind: &'static str,
        at: i64,
    ) -> Result<(), IssuerError> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
            event(c, at, None, None, event_kind, "")
        })
        .await
    }

    async fn health(&self) -> Result<(), IssuerError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))?;
        self.write(|_| Ok(())).await
    }

    async fn prune(&self, now: i64) -> Result<(), IssuerError> {
        self.write(move |c| prune(c, now)).await
    }

    fn stats(&self) -> Vec<(&'static str, &'static str, u64)> {
        vec![
            (
                "pooya_issuer_writer_commits_total",
                "Write transactions committed (group commits).",
                self.stats.commits.load(Relaxed),
            ),
            (
                "pooya_issuer_writer_jobs_total",
                "Write jobs committed.",
                self.stats.jobs.load(Relaxed),
            ),
        ]
    }
}

fn dev_sms_rows(c: &Connection, phone: Option<&str>, limit: u32) -> Result<Vec<DevSms>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT to_phone, sender, body_sealed, created_at FROM ( \
           SELECT id, to_phone, sender, body_sealed, created_at FROM dev_sms_log \
           WHERE ?1 IS NULL OR to_phone = ?1 ORDER BY id DESC LIMIT ?2 \
         ) ORDER BY id ASC",
    )?;
    let rows = stmt.query_map(params![phone, limit], |r| {
        Ok(DevSms {
            to: r.get(0)?,
            from: r.get(1)?,
            body_sealed: r.get(2)?,
            created_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Deletes what no rule looks at any more.
fn prune(c: &Connection, now: i64) -> Result<(), DbError> {
    // Spent steps of builds before migration 005, once past every window.
    c.execute("DELETE FROM used_steps WHERE expires_at <= ?1", [now])?;
    c.execute(
        "DELETE FROM verify_failures WHERE at <= ?1",
        [now - i64::try_from(MAX_FAILURE_WINDOW_SECS).unwrap_or(i64::MAX)],
    )?;
    // Failure counts of phones idle longer than any activation code can
    // live: no code they counted against is still pending.
    c.execute(
        "DELETE FROM activation_failures WHERE updated_at < ?1",
        [now - i64::try_from(MAX_ACTIVATION_TTL_SECS).unwrap_or(i64::MAX)],
    )?;
    c.execute(
        "DELETE FROM verify_blocks WHERE at <= ?1",
        [now - ESCALATION_WINDOW_SECS],
    )?;
    // An idle unknown card number's counters go after 30 days, but not a
    // block that lasts until lifted: it waits for an ops unblock.
    c.execute(
        "DELETE FROM probe_failures WHERE updated_at < ?1 AND blocked_until <= ?2",
        params![now - PROBE_RETENTION_SECS, now],
    )?;
    c.execute("DELETE FROM otp_sends WHERE at <= ?1", [now - HOUR])?;
    c.execute("DELETE FROM sms_replies WHERE at <= ?1", [now - HOUR])?;
    c.execute(
        "DELETE FROM one_time_codes WHERE expires_at < ?1",
        [now - 24 * HOUR],
    )?;
    c.execute(
        "DELETE FROM sms_outbox WHERE state IN ('delivered', 'failed') AND created_at < ?1",
        [now - DELIVERED_RETENTION_SECS],
    )?;
    Ok(())
}

/// Reads the development recorder's messages of a data directory made with
/// the default key file, once the outbox holds no pending message (or
/// after 10 s): what tests and demos use to play the customer
/// reading their SMS. `phone` in any form
/// [`pooya_protocol::normalize_phone`] accepts.
///
/// # Errors
/// [`IssuerError`] when the directory, key or database cannot be read, or
/// the phone number is invalid.
pub fn read_outbox(data_dir: &Path, phone: Option<&str>) -> Result<Vec<OutboxEntry>, IssuerError> {
    let keys = FileKeyProvider::load(&data_dir.join(KEY_FILE))?;
    let phone = phone.map(pooya_protocol::normalize_phone).transpose()?;
    let conn = Connection::open_with_flags(
        data_dir.join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(storage)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
    // Messages are delivered from the durable outbox after their commit:
    // wait (up to 10 s) until none is pending, as a customer waits for
    // their SMS.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM sms_outbox WHERE state IN ('pending', 'sending')",
                [],
                |r| r.get(0),
            )
            .map_err(storage)?;
        if pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rows = dev_sms_rows(
        &conn,
        phone.as_deref(),
        pooya_issuer_service::outbox::OUTBOX_LIMIT,
    )?;
    open_dev_rows(rows, &keys)
}
