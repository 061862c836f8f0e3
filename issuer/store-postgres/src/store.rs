//! [`Store`] over PostgreSQL: each method one transaction on a pooled
//! connection, its locks taken before it reads what it decides on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
    Transaction,
};
use pooya_issuer_service::merchants::Merchant;
use pooya_issuer_service::outbox::{NewSms, Notice, NoticeKind};
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
use pooya_issuer_service::{IssuerError, Role};
use pooya_protocol::PinKind;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::error::{MAX_ATTEMPTS, PgError, corrupt, message};

/// How long an unknown card number's failure counters are kept idle.
const PROBE_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// How long a delivered or given-up message's row is kept (payload wiped).
const DELIVERED_RETENTION_SECS: i64 = 24 * 3600;

/// Tuning of the PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections of this node's pool.
    pub pool_size: usize,
    /// How long a request waits for a free connection, and a new
    /// connection for the server, before failing with
    /// [`IssuerError::Storage`].
    pub timeout: Duration,
    /// The certificate authorities (PEM) a TLS connection's server
    /// certificate must chain to. Needed for `sslmode=require`; with
    /// `sslmode=prefer` (tokio-postgres' default) TLS is tried when given.
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(10),
            tls_ca: None,
        }
    }
}

/// A TLS connector (rustls, TLS 1.2 and 1.3) that accepts only server
/// certificates chaining to the authorities in `ca` (PEM) and naming the
/// host of the URL.
fn tls_connector(
    ca: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, IssuerError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let bad = |what: String| IssuerError::InvalidSettings(format!("database_tls_ca: {what}"));
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(ca).map_err(|e| bad(format!("{}: {e}", ca.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!("{} holds no certificate", ca.display())));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The PostgreSQL store of one node.
pub struct PostgresStore {
    pool: Pool,
    retries: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's configuration holds the password: not shown.
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    p: Params<'_>,
) -> Result<u64, PgError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.execute(&st, p).await?)
}

pub(crate) async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    p: Params<'_>,
) -> Result<Vec<Row>, PgError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query(&st, p).await?)
}

async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    p: Params<'_>,
) -> Result<Option<Row>, PgError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&st, p).await?)
}

async fn query_one<C: GenericClient>(c: &C, sql: &str, p: Params<'_>) -> Result<Row, PgError> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_one(&st, p).await?)
}

fn hash_of(v: &[u8]) -> Result<Hash, PgError> {
    <[u8; 32]>::try_from(v).map_err(|_| corrupt("hash"))
}

/// Runs `$body` (an expression over the transaction `$tx`, typically a
/// call of one of this file's `async fn`s) in one transaction and commits
/// it; a serialization failure or deadlock runs it again, up to
/// [`MAX_ATTEMPTS`] times in all. An error rolls the transaction back.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1u32;
        loop {
            let mut client = $store.client().await?;
            let result: Result<_, PgError> = async {
                let $tx = client.transaction().await?;
                let value = $body?;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(v) => break Ok(v),
                Err(e) if e.retryable() && attempt < MAX_ATTEMPTS => {
                    $store.retries.fetch_add(1, Relaxed);
                    tracing::debug!(attempt, error = %IssuerError::from(e), "retrying a transaction");
                    attempt += 1;
                }
                Err(e) => break Err(IssuerError::from(e)),
            }
        }
    }};
}

/// Runs a read (`$body` over the pooled client `$c`) outside a
/// transaction.
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let client = $store.client().await?;
        let $c = &client;
        let r: Result<_, PgError> = async { $body }.await;
        r.map_err(IssuerError::from)
    }};
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:pass@host/db`
    /// or a `key=value` string), with every session at
    /// `synchronous_commit = on` (checked on each new connection), and
    /// brings its schema up to date ([`crate::migrate::migrate`]).
    ///
    /// # Errors
    /// [`IssuerError::InvalidSettings`] for a malformed URL, a pool size of
    /// 0 or an `sslmode` that needs TLS; [`IssuerError::SchemaTooNew`] for a
    /// database a newer build migrated; [`IssuerError::Storage`] when the
    /// database cannot be reached or a migration fails.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, IssuerError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                IssuerError::InvalidSettings(format!("the database URL is not valid: {e}"))
            })?;
        let tls = match (config.get_ssl_mode(), &options.tls_ca) {
            (SslMode::Disable, _) | (SslMode::Prefer, None) => None,
            (_, Some(ca)) => Some(tls_connector(ca)?),
            (_, None) => {
                return Err(IssuerError::InvalidSettings(
                    "sslmode=require needs the database's certificate authority \
                     (database_tls_ca)"
                        .into(),
                ));
            }
        };
        if options.pool_size == 0 {
            return Err(IssuerError::InvalidSettings(
                "the database pool size must be at least 1".into(),
            ));
        }
        let session = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c synchronous_commit=on"),
            _ => "-c synchronous_commit=on".to_owned(),
        };
        config.options(&session);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            Some(tls) => Manager::from_config(config, tls, manager_config),
            None => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    let row = client
                        .query_one("SHOW synchronous_commit", &[])
                        .await
                        .map_err(HookError::Backend)?;
                    let value: String = row.try_get(0).map_err(HookError::Backend)?;
                    if value == "on" {
                        Ok(())
                    } else {
                        Err(HookError::message(format!(
                            "the session's synchronous_commit is {value}, not on"
                        )))
                    }
                })
            }))
            .build()
            .map_err(|e| IssuerError::Storage(format!("database pool: {e}")))?;
        let store = Self {
            pool,
            retries: Arc::new(AtomicU64::new(0)),
        };
        let mut client = store.client().await?;
        crate::migrate::migrate(&mut client).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, IssuerError> {
        self.pool.get().await.map_err(|e| {
            IssuerError::Storage(match e {
                deadpool_postgres::PoolError::Backend(e) => {
                    format!("database connection: {}", message(&e))
                }
                other => format!("database connection: {other}"),
            })
        })
    }

    /// Closes the pool: connections are closed as they come back.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Transactions run again after a serialization failure or deadlock.
    pub fn retries(&self) -> u64 {
        self.retries.load(Relaxed)
    }
}

async fn queue(t: &Transaction<'_>, m: &NewSms, now: i64) -> Result<(), PgError> {
    exec(
        t,
        "INSERT INTO sms_outbox (message_id, to_phone, kind, payload, sealed, state, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        &[
            &m.message_id,
            &m.to,
            &m.kind.as_str(),
            &m.payload,
            &m.sealed,
            &now,
        ],
    )
    .await?;
    Ok(())
}

/// A [`CardState`] from `id, seed_sealed, seed_generation, drift_first,
/// drift_second, blocked_until, app_status`.
fn card_state(r: &Row) -> Result<CardState, PgError> {
    Ok(CardState {
        id: r.try_get(0)?,
        seed_sealed: r.try_get(1)?,
        seed_generation: r.try_get(2)?,
        drift_first: r.try_get(3)?,
        drift_second: r.try_get(4)?,
        blocked_until: r.try_get(5)?,
        status: CardStatus::parse(r.try_get(6)?).ok_or_else(|| corrupt("app status"))?,
    })
}

/// `Store::change_card_status` in `t`: the card's row is locked first, as
/// a settlement takes it.
async fn change_card_status(
    t: &Transaction<'_>,
    card: &CardRef,
    cause: StatusCause,
    now: i64,
) -> Result<Option<StatusOutcome>, PgError> {
    let row = match card {
        CardRef::Pan(h) => {
            query_opt(
                t,
                "SELECT id, app_status, phone, last4 FROM cards WHERE pan_hash = $1 FOR UPDATE",
                &[&&h[..]],
            )
            .await?
        }
        CardRef::Id(id) => {
            query_opt(
                t,
                "SELECT id, app_status, phone, last4 FROM cards WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?
        }
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let id: String = row.try_get(0)?;
    let previous = CardStatus::parse(row.try_get(1)?).ok_or_else(|| corrupt("app status"))?;
    let (phone, last4): (String, String) = (row.try_get(2)?, row.try_get(3)?);
    let transition = rules::status_transition(previous, cause);
    if let rules::Transition::Change(to) = transition {
        exec(
            t,
            "UPDATE cards SET app_status = $2, updated_at = $3 WHERE id = $1",
            &[&id, &to.as_str(), &now],
        )
        .await?;
        event(
            t,
            now,
            Some(&id),
            None,
            cause.as_str(),
            &format!("{} -> {}", previous.as_str(), to.as_str()),
        )
        .await?;
        let notice = pooya_issuer_service::outbox::Notice::AppStatusChanged { last4, cause }
            .plain_to(&phone)?;
        queue(t, &notice, now).await?;
    }
    Ok(Some(StatusOutcome {
        card_id: id,
        previous,
        transition,
    }))
}

pub(crate) async fn event(
    t: &Transaction<'_>,
    at: i64,
    card_id: Option<&str>,
    phone: Option<&str>,
    kind: &str,
    detail: &str,
) -> Result<(), PgError> {
    exec(
        t,
        "INSERT INTO events (at, card_id, phone, kind, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&at, &card_id, &phone, &kind, &detail],
    )
    .await?;
    Ok(())
}

/// The card number's failures within the window and blocks within the
/// escalation window (read under the lock of the card or probe row).
async fn lock_state(
    t: &Transaction<'_>,
    pan_hash: &[u8],
    consecutive: i64,
    now: i64,
    rules: Lockout,
) -> Result<LockState, PgError> {
    let times = |rows: Vec<Row>| -> Result<Vec<i64>, PgError> {
        rows.iter()
            .map(|r| r.try_get(0).map_err(PgError::from))
            .collect()
    };
    let since = now.saturating_sub(rules.window_secs);
    let failures_at = times(
        query(
            t,
            "SELECT at FROM verify_failures WHERE pan_hash = $1 AND at > $2",
            &[&pan_hash, &since],
        )
        .await?,
    )?;
    let since = now - ESCALATION_WINDOW_SECS;
    let blocks_at = times(
        query(
            t,
            "SELECT at FROM verify_blocks WHERE pan_hash = $1 AND at > $2",
            &[&pan_hash, &since],
        )
        .await?,
    )?;
    Ok(LockState {
        consecutive,
        failures_at,
        blocks_at,
    })
}

/// Applies a [`FailureSettlement`] to the rows kept by PAN hash.
async fn apply_failure(
    t: &Transaction<'_>,
    pan_hash: &[u8],
    now: i64,
    settlement: FailureSettlement,
) -> Result<(), PgError> {
    match settlement {
        FailureSettlement::Count { .. } => {
            exec(
                t,
                "INSERT INTO verify_failures (pan_hash, at) VALUES ($1, $2)",
                &[&pan_hash, &now],
            )
            .await?;
        }
        FailureSettlement::Block(_) => {
            exec(
                t,
                "DELETE FROM verify_failures WHERE pan_hash = $1",
                &[&pan_hash],
            )
            .await?;
            exec(
                t,
                "INSERT INTO verify_blocks (pan_hash, at) VALUES ($1, $2)",
                &[&pan_hash, &now],
            )
            .await?;
        }
    }
    Ok(())
}

/// Forgets a card number's failures and blocks. Callers hold the card's
/// row lock first, as settlements do, so the two never wait on each
/// other in opposite orders.
async fn forget_failures(t: &Transaction<'_>, pan_hash: &[u8]) -> Result<(), PgError> {
    for sql in [
        "DELETE FROM probe_failures WHERE pan_hash = $1",
        "DELETE FROM verify_blocks WHERE pan_hash = $1",
        "DELETE FROM verify_failures WHERE pan_hash = $1",
    ] {
        exec(t, sql, &[&pan_hash]).await?;
    }
    Ok(())
}

fn merchant_of(r: &Row) -> Result<Merchant, PgError> {
    Ok(Merchant {
        payee_id: r.try_get(0)?,
        name: r.try_get(1)?,
        created_at: u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0),
        updated_at: u64::try_from(r.try_get::<_, i64>(3)?).unwrap_or(0),
    })
}

const MERCHANT: &str =
    "SELECT payee_id, name, created_at, updated_at FROM merchants WHERE payee_id = $1";

async fn put_meta_once(
    t: &Transaction<'_>,
    entries: &[(&'static str, Vec<u8>)],
    event_kind: &str,
    at: i64,
) -> Result<Vec<Vec<u8>>, PgError> {
    let Some((first, value)) = entries.first() else {
        return Err(PgError::Issuer(IssuerError::Storage(
            "no meta entries".into(),
        )));
    };
    // A second node inserting at once waits here for the first's commit,
    // then inserts nothing and reads the first's values back.
    let inserted = exec(
        t,
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[first, value],
    )
    .await?;
    if inserted == 1 {
        for (k, v) in &entries[1..] {
            exec(t, "INSERT INTO meta (key, value) VALUES ($1, $2)", &[k, v]).await?;
        }
        event(t, at, None, None, event_kind, "").await?;
    }
    let mut out = Vec::with_capacity(entries.len());
    for (k, _) in entries {
        let v = query_opt(t, "SELECT value FROM meta WHERE key = $1", &[k]).await?;
        out.push(match v {
            Some(r) => r.try_get(0)?,
            None => Vec::new(),
        });
    }
    Ok(out)
}

async fn initialize(
    t: &Transaction<'_>,
    meta: &[(&'static str, Vec<u8>)],
    tokens: &[(Hash, Role)],
    at: i64,
) -> Result<(), PgError> {
    for (i, (k, v)) in meta.iter().enumerate() {
        let n = exec(
            t,
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[k, v],
        )
        .await?;
        if n == 0 && i == 0 {
            return Err(PgError::Issuer(IssuerError::AlreadyInitialized));
        }
    }
    for (hash, role) in tokens {
        exec(
            t,
            "INSERT INTO api_tokens (token_hash, role, created_at) VALUES ($1, $2, $3)",
            &[&&hash[..], &role.as_str(), &at],
        )
        .await?;
    }
    event(t, at, None, None, "initialised", "").await
}

async fn enroll(t: &Transaction<'_>, e: &Enrollment) -> Result<Enrolled, PgError> {
    let now = e.now;
    let pan = &e.pan_hash[..];
    let inserted = exec(
        t,
        "INSERT INTO cards (id, pan_hash, pan_sealed, last4, phone, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (pan_hash) DO NOTHING",
        &[
            &e.new_card_id,
            &pan,
            &e.pan_sealed,
            &e.last4,
            &e.phone,
            &now,
        ],
    )
    .await?;
    let mut old_phone = None;
    let card_id = if inserted == 1 {
        e.new_card_id.clone()
    } else {
        let row = query_one(
            t,
            "SELECT id, phone FROM cards WHERE pan_hash = $1 FOR UPDATE",
            &[&pan],
        )
        .await?;
        let (id, phone): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if phone != e.phone {
            old_phone = Some(phone);
        }
        // Re-enrollment (card and card PIN at an ATM) lifts a block of its
        // dynamic PINs, escalated or not.
        exec(
            t,
            "UPDATE cards SET phone = $2, updated_at = $3, failures = 0, blocked_until = 0 \
             WHERE id = $1",
            &[&id, &e.phone, &now],
        )
        .await?;
        id
    };
    forget_failures(t, pan).await?;
    match e.code {
        Some(code) => {
            exec(
                t,
                "UPDATE activation_codes SET state = 'superseded', closed_at = $2 \
                 WHERE card_id = $1 AND state = 'pending'",
                &[&card_id, &now],
            )
            .await?;
            // A fresh guessing budget only when no other code of this
            // phone is still live.
            exec(
                t,
                "DELETE FROM activation_failures WHERE phone = $1 AND NOT EXISTS \
                 (SELECT 1 FROM activation_codes WHERE phone = $1 \
                  AND state = 'pending' AND expires_at > $2)",
                &[&e.phone, &now],
            )
            .await?;
            exec(
                t,
                "INSERT INTO activation_codes (card_id, phone, code_hash, state, created_at, expires_at) \
                 VALUES ($1, $2, $3, 'pending', $4, $5)",
                &[&card_id, &e.phone, &&code.hash[..], &now, &code.expires_at],
            )
            .await?;
        }
        None => {
            exec(
                t,
                "UPDATE cards SET sms_enabled = TRUE WHERE id = $1",
                &[&card_id],
            )
            .await?;
        }
    }
    event(
        t,
        now,
        Some(&card_id),
        Some(&e.phone),
        "enrolled",
        if e.code.is_some() { "app" } else { "sms" },
    )
    .await?;
    queue(t, &e.message, now).await?;
    let moved = old_phone.is_some();
    if let Some(old) = old_phone {
        let notice = e.phone_changed.clone().plain_to(&old)?;
        queue(t, &notice, now).await?;
    }
    Ok(Enrolled {
        card_id,
        moved_from_another_phone: moved,
    })
}

async fn complete_activation(t: &Transaction<'_>, a: &ActivationWrite) -> Result<bool, PgError> {
    let now = a.now;
    // The phone's failures row, locked (made if absent, at 0): a wrong
    // guess counted at once waits for this transaction, and this one
    // sees every guess committed before it.
    exec(
        t,
        "INSERT INTO activation_failures (phone, failures, updated_at) VALUES ($1, 0, $2) \
         ON CONFLICT (phone) DO NOTHING",
        &[&a.phone, &now],
    )
    .await?;
    let failures: i64 = query_one(
        t,
        "SELECT failures FROM activation_failures WHERE phone = $1 FOR UPDATE",
        &[&a.phone],
    )
    .await?
    .try_get(0)?;
    if failures >= i64::from(a.max_failures) {
        return Ok(false);
    }
    let spent = exec(
        t,
        "UPDATE activation_codes SET state = 'used', closed_at = $2 \
         WHERE id = $1 AND state = 'pending' AND expires_at > $2",
        &[&a.code_id, &now],
    )
    .await?;
    if spent != 1 {
        return Ok(false);
    }
    exec(
        t,
        "UPDATE activation_codes SET state = 'superseded', closed_at = $2 \
         WHERE card_id = $1 AND state = 'pending'",
        &[&a.card_id, &now],
    )
    .await?;
    exec(
        t,
        "UPDATE cards SET seed_sealed = $2, seed_generation = seed_generation + 1, \
         device_label = $3, device_public_key = $4, activated_at = $5, \
         drift_first = 0, drift_second = 0, failures = 0, \
         app_status = CASE app_status WHEN 'revoked' THEN 'active' ELSE app_status END, \
         updated_at = $5 WHERE id = $1",
        &[
            &a.card_id,
            &a.seed_sealed,
            &a.device_label,
            &&a.device_public_key[..],
            &now,
        ],
    )
    .await?;
    exec(
        t,
        "DELETE FROM activation_failures WHERE phone = $1",
        &[&a.phone],
    )
    .await?;
    event(
        t,
        now,
        Some(&a.card_id),
        Some(&a.phone),
        "activated",
        &a.device_label,
    )
    .await?;
    queue(t, &a.notice, now).await?;
    Ok(true)
}

async fn count_activation_failure(
    t: &Transaction<'_>,
    phone: &str,
    now: i64,
    max_failures: u32,
) -> Result<ActivationFailure, PgError> {
    let failures: i64 = query_one(
        t,
        "INSERT INTO activation_failures (phone, failures, updated_at) VALUES ($1, 1, $2) \
         ON CONFLICT (phone) DO UPDATE SET failures = activation_failures.failures + 1, \
         updated_at = $2 RETURNING failures",
        &[&phone, &now],
    )
    .await?
    .try_get(0)?;
    let max = i64::from(max_failures);
    if failures == max {
        exec(
            t,
            "UPDATE activation_codes SET state = 'burned', closed_at = $2 \
             WHERE phone = $1 AND state = 'pending'",
            &[&phone, &now],
        )
        .await?;
        event(t, now, None, Some(phone), "activation_burned", "").await?;
        return Ok(ActivationFailure::Burned);
    }
    Ok(if failures > max {
        ActivationFailure::OverBudget
    } else {
        ActivationFailure::Counted
    })
}

async fn settle(t: &Transaction<'_>, s: &Settlement) -> Result<SettleDecision, PgError> {
    // The card's row, locked: every settlement of this card (on any node)
    // waits here, so each decides on the state the previous one left.
    // What else the decision needs is read by the next statement, after
    // the lock: under READ COMMITTED a statement that waited for a lock
    // re-reads only the locked row, not what it joined, so one statement
    // for both could decide on another settlement's past.
    let row = query_opt(
        t,
        "SELECT failures, blocked_until, seed_generation, drift_first, drift_second, phone, \
         last4, pan_hash FROM cards WHERE id = $1 FOR UPDATE",
        &[&s.card_id],
    )
    .await?;
    let Some(row) = row else {
        // Cards are never deleted; answered as any failure would be.
        return Ok(SettleDecision::Rejected {
            reason: rules::Reason::WrongCode,
            failure: None,
        });
    };
    let failures: i64 = row.try_get(0)?;
    let blocked_until: i64 = row.try_get(1)?;
    let generation: i64 = row.try_get(2)?;
    let drift_first: i64 = row.try_get(3)?;
    let drift_second: i64 = row.try_get(4)?;
    let phone: String = row.try_get(5)?;
    let last4: String = row.try_get(6)?;
    let pan: Vec<u8> = row.try_get(7)?;
    // One round trip for the matched kind's mark and the card number's
    // failures within the window and blocks within the escalation window.
    let mark_key = match s.spend {
        Spend::Step { kind, .. } => kind.as_str(),
        _ => "",
    };
    let failures_since = s.now.saturating_sub(s.rules.window_secs);
    let blocks_since = s.now - ESCALATION_WINDOW_SECS;
    let state = query_one(
        t,
        "SELECT m.generation, m.step, \
         ARRAY(SELECT f.at FROM verify_failures f WHERE f.pan_hash = $3 AND f.at > $4), \
         ARRAY(SELECT b.at FROM verify_blocks b WHERE b.pan_hash = $3 AND b.at > $5) \
         FROM (SELECT 1) one \
         LEFT JOIN step_marks m ON m.card_id = $1 AND m.key = $2",
        &[&s.card_id, &mark_key, &pan, &failures_since, &blocks_since],
    )
    .await?;
    let mark = match (
        state.try_get::<_, Option<i64>>(0)?,
        state.try_get::<_, Option<i64>>(1)?,
    ) {
        (Some(generation), Some(step)) if !mark_key.is_empty() => Some(Mark { generation, step }),
        _ => None,
    };
    let lock = LockState {
        consecutive: failures,
        failures_at: state.try_get(2)?,
        blocks_at: state.try_get(3)?,
    };
    let one_time = match s.spend {
        Spend::OneTime { id, .. } => {
            match query_opt(
                t,
                "SELECT state, expires_at FROM one_time_codes WHERE id = $1 AND card_id = $2",
                &[&id, &s.card_id],
            )
            .await?
            {
                Some(r) => {
                    let state: String = r.try_get(0)?;
                    let expires_at: i64 = r.try_get(1)?;
                    CodeState::parse(&state).map(|state| OneTimeState { state, expires_at })
                }
                None => None,
            }
        }
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
                    let old = if kind == PinKind::First {
                        drift_first
                    } else {
                        drift_second
                    };
                    // The mark, and the card's count and drift when they
                    // change, in one statement.
                    let sql = match (failures != 0 || old != drift, kind == PinKind::First) {
                        (false, _) => {
                            "INSERT INTO step_marks (card_id, key, generation, step) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (card_id, key) \
                             DO UPDATE SET generation = EXCLUDED.generation, step = EXCLUDED.step \
                             RETURNING $5::BIGINT"
                        }
                        (true, true) => {
                            "WITH m AS (INSERT INTO step_marks (card_id, key, generation, step) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (card_id, key) \
                             DO UPDATE SET generation = EXCLUDED.generation, step = EXCLUDED.step) \
                             UPDATE cards SET failures = 0, drift_first = $5 WHERE id = $1 \
                             RETURNING $5::BIGINT"
                        }
                        (true, false) => {
                            "WITH m AS (INSERT INTO step_marks (card_id, key, generation, step) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (card_id, key) \
                             DO UPDATE SET generation = EXCLUDED.generation, step = EXCLUDED.step) \
                             UPDATE cards SET failures = 0, drift_second = $5 WHERE id = $1 \
                             RETURNING $5::BIGINT"
                        }
                    };
                    query(
                        t,
                        sql,
                        &[&s.card_id, &kind.as_str(), &generation, &step, &drift],
                    )
                    .await?;
                }
                rules::Acceptance::OneTime { id, .. } => {
                    exec(
                        t,
                        "UPDATE one_time_codes SET state = 'used', closed_at = $2 WHERE id = $1",
                        &[&id, &s.now],
                    )
                    .await?;
                    if failures != 0 {
                        exec(
                            t,
                            "UPDATE cards SET failures = 0 WHERE id = $1",
                            &[&s.card_id],
                        )
                        .await?;
                    }
                }
            }
            return Ok(SettleDecision::Accepted(acceptance.kind()));
        }
        SpendDecision::RefuseCounted(reason) => reason,
    };
    let settlement = rules::settle_failure(&lock, s.now, s.rules);
    match settlement {
        FailureSettlement::Count { consecutive } => {
            // The failure's row and the card's count in one statement.
            exec(
                t,
                "WITH f AS (INSERT INTO verify_failures (pan_hash, at) VALUES ($3, $4)) \
                 UPDATE cards SET failures = $2 WHERE id = $1",
                &[&s.card_id, &consecutive, &pan, &s.now],
            )
            .await?;
        }
        FailureSettlement::Block(block) => {
            apply_failure(t, &pan, s.now, settlement).await?;
            exec(
                t,
                "UPDATE cards SET failures = 0, blocked_until = $2 WHERE id = $1",
                &[&s.card_id, &block.until],
            )
            .await?;
            event(
                t,
                s.now,
                Some(&s.card_id),
                None,
                "blocked",
                &block.audit_detail(),
            )
            .await?;
            let notice = Notice::of_block(&block, &last4, s.rules.lockout_secs).plain_to(&phone)?;
            queue(t, &notice, s.now).await?;
        }
    }
    Ok(SettleDecision::Rejected {
        reason,
        failure: Some(settlement),
    })
}

async fn settle_unknown(
    t: &Transaction<'_>,
    pan_hash: &[u8],
    now: i64,
    rules: Lockout,
) -> Result<UnknownSettled, PgError> {
    // The card number's probe row, made if absent and locked: the
    // settlements of one unknown number wait for each other as a known
    // card's do.
    exec(
        t,
        "INSERT INTO probe_failures (pan_hash, failures, blocked_until, updated_at) \
         VALUES ($1, 0, 0, $2) ON CONFLICT (pan_hash) DO NOTHING",
        &[&pan_hash, &now],
    )
    .await?;
    let row = query_one(
        t,
        "SELECT failures, blocked_until FROM probe_failures WHERE pan_hash = $1 FOR UPDATE",
        &[&pan_hash],
    )
    .await?;
    let (failures, blocked_until): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    if blocked_until > now {
        return Ok(UnknownSettled::Blocked);
    }
    let state = lock_state(t, pan_hash, failures, now, rules).await?;
    let settlement = rules::settle_failure(&state, now, rules);
    apply_failure(t, pan_hash, now, settlement).await?;
    let (failures, blocked_until) = match settlement {
        FailureSettlement::Count { consecutive } => (consecutive, 0),
        FailureSettlement::Block(b) => (0, b.until),
    };
    exec(
        t,
        "UPDATE probe_failures SET failures = $2, blocked_until = $3, updated_at = $4 \
         WHERE pan_hash = $1",
        &[&pan_hash, &failures, &blocked_until, &now],
    )
    .await?;
    Ok(if blocked_until > now {
        UnknownSettled::BlockedNow
    } else {
        UnknownSettled::Counted
    })
}

/// Serialises, across every node, the transactions that count against
/// one rate-limit subject, until this transaction ends.
async fn lock_subject(t: &Transaction<'_>, namespace: &str, subject: &[u8]) -> Result<(), PgError> {
    exec(
        t,
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || encode($2, 'hex'), 0))",
        &[&namespace, &subject],
    )
    .await?;
    Ok(())
}

async fn send_histories(
    t: &Transaction<'_>,
    channel: CodeChannel,
    subjects: &[Vec<u8>],
    now: i64,
) -> Result<Vec<SendHistory>, PgError> {
    let mut out = Vec::with_capacity(subjects.len());
    let since = now - HOUR;
    for subject in subjects {
        let r = query_one(
            t,
            "SELECT count(*), min(at), max(at) FROM otp_sends \
             WHERE channel = $1 AND subject = $2 AND at > $3",
            &[&channel.as_str(), subject, &since],
        )
        .await?;
        out.push(SendHistory {
            count: r.try_get(0)?,
            first: r.try_get(1)?,
            last: r.try_get(2)?,
        });
    }
    Ok(out)
}

/// Counts a reply without a code against the phone's hourly limit (the
/// phone's advisory lock held); false when the limit is reached.
async fn may_reply(t: &Transaction<'_>, phone: &str, now: i64, max: u32) -> Result<bool, PgError> {
    lock_subject(t, "reply:", phone.as_bytes()).await?;
    let since = now - HOUR;
    let n: i64 = query_one(
        t,
        "SELECT count(*) FROM sms_replies WHERE phone = $1 AND at > $2",
        &[&phone, &since],
    )
    .await?
    .try_get(0)?;
    if n >= i64::from(max) {
        return Ok(false);
    }
    exec(
        t,
        "INSERT INTO sms_replies (phone, at) VALUES ($1, $2)",
        &[&phone, &now],
    )
    .await?;
    Ok(true)
}

async fn issue_one_time_code(t: &Transaction<'_>, i: &IssueCode) -> Result<Issued, PgError> {
    let now = i.now;
    // Every subject's lock, in one order on every node (no deadlock),
    // before its sends are counted.
    let mut subjects: Vec<&Vec<u8>> = i.subjects.iter().collect();
    subjects.sort();
    subjects.dedup();
    let namespace = format!("otp:{}:", i.channel.as_str());
    for subject in subjects {
        lock_subject(t, &namespace, subject).await?;
    }
    let histories = send_histories(t, i.channel, &i.subjects, now).await?;
    if let Some(wait) = rules::otp_retry_after(&histories, now, i.limits) {
        let mut told = false;
        if let Some((phone, max)) = &i.wait_reply
            && may_reply(t, phone, now, *max).await?
        {
            let notice = Notice::SmsWait { seconds: wait }.plain_to(phone)?;
            queue(t, &notice, now).await?;
            told = true;
        }
        return Ok(Issued::Limited {
            retry_after_secs: wait,
            told_to_wait: told,
        });
    }
    if let Some(card_id) = &i.card_id {
        exec(
            t,
            "UPDATE one_time_codes SET state = 'superseded', closed_at = $3 \
             WHERE card_id = $1 AND channel = $2 AND state = 'pending'",
            &[card_id, &i.channel.as_str(), &now],
        )
        .await?;
        exec(
            t,
            "INSERT INTO one_time_codes (card_id, channel, code_hash, state, created_at, expires_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5)",
            &[card_id, &i.channel.as_str(), &&i.code_hash[..], &now, &i.expires_at],
        )
        .await?;
        event(
            t,
            now,
            Some(card_id),
            None,
            "one_time_code",
            i.channel.as_str(),
        )
        .await?;
    }
    for subject in &i.subjects {
        exec(
            t,
            "INSERT INTO otp_sends (channel, subject, at) VALUES ($1, $2, $3)",
            &[&i.channel.as_str(), subject, &now],
        )
        .await?;
    }
    if let Some(m) = &i.message {
        queue(t, m, now).await?;
    }
    Ok(Issued::Issued)
}

async fn reply_without_code(
    t: &Transaction<'_>,
    phone: &str,
    now: i64,
    max_per_hour: u32,
    message: &NewSms,
) -> Result<bool, PgError> {
    if !may_reply(t, phone, now, max_per_hour).await? {
        return Ok(false);
    }
    queue(t, message, now).await?;
    Ok(true)
}

async fn unblock(
    t: &Transaction<'_>,
    pan_hash: &[u8],
    now: i64,
) -> Result<Option<Unblocked>, PgError> {
    // The card's row first, as a settlement takes it.
    let row = query_opt(
        t,
        "SELECT id, blocked_until FROM cards WHERE pan_hash = $1 FOR UPDATE",
        &[&pan_hash],
    )
    .await?;
    forget_failures(t, pan_hash).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (id, blocked_until): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
    exec(
        t,
        "UPDATE cards SET failures = 0, blocked_until = 0 WHERE id = $1",
        &[&id],
    )
    .await?;
    let was_blocked = blocked_until > now;
    event(
        t,
        now,
        Some(&id),
        None,
        "unblocked",
        if was_blocked {
            "was blocked"
        } else {
            "was not blocked"
        },
    )
    .await?;
    Ok(Some(Unblocked {
        card_id: id,
        was_blocked,
    }))
}

async fn put_merchant(
    t: &Transaction<'_>,
    id: &str,
    name: &str,
    now: i64,
) -> Result<(Stored, Merchant), PgError> {
    // xmax = 0 for a row this statement inserted, not one it updated.
    let inserted: bool = query_one(
        t,
        "INSERT INTO merchants (payee_id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (payee_id) DO UPDATE SET name = EXCLUDED.name, updated_at = EXCLUDED.updated_at \
         RETURNING (xmax = 0)",
        &[&id, &name, &now],
    )
    .await?
    .try_get(0)?;
    event(t, now, None, None, "merchant", id).await?;
    let merchant = merchant_of(&query_one(t, MERCHANT, &[&id]).await?)?;
    Ok((
        if inserted {
            Stored::Created
        } else {
            Stored::Updated
        },
        merchant,
    ))
}

async fn claim_messages(
    t: &Transaction<'_>,
    now: i64,
    limit: u32,
    lease_secs: i64,
) -> Result<Vec<QueuedSms>, PgError> {
    let lease = now + lease_secs;
    let limit = i64::from(limit);
    let rows = query(
        t,
        "UPDATE sms_outbox SET state = 'sending', lease_until = $2 \
         WHERE id IN (SELECT id FROM sms_outbox \
           WHERE (state = 'pending' AND next_attempt_at <= $1) \
              OR (state = 'sending' AND lease_until <= $1) \
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, message_id, to_phone, kind, payload, sealed, attempts, created_at",
        &[&now, &lease, &limit],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get(3)?;
        let kind = NoticeKind::parse(&kind).ok_or_else(|| corrupt("outbox kind"))?;
        let payload: Option<Vec<u8>> = r.try_get(4)?;
        let attempts: i64 = r.try_get(6)?;
        out.push(QueuedSms {
            id: r.try_get(0)?,
            message_id: r.try_get(1)?,
            to: r.try_get(2)?,
            kind,
            payload: payload.unwrap_or_default(),
            sealed: r.try_get(5)?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            created_at: r.try_get(7)?,
        });
    }
    // RETURNING gives no order; deliver oldest first.
    out.sort_by_key(|q| q.id);
    Ok(out)
}

async fn prune(t: &Transaction<'_>, now: i64) -> Result<(), PgError> {
    let window = now - i64::try_from(MAX_FAILURE_WINDOW_SECS).unwrap_or(i64::MAX);
    let ttl = now - i64::try_from(MAX_ACTIVATION_TTL_SECS).unwrap_or(i64::MAX);
    let escalation = now - ESCALATION_WINDOW_SECS;
    let probe = now - PROBE_RETENTION_SECS;
    let hour = now - HOUR;
    let day = now - 24 * HOUR;
    let delivered = now - DELIVERED_RETENTION_SECS;
    for (sql, at) in [
        ("DELETE FROM verify_failures WHERE at <= $1", window),
        ("DELETE FROM activation_failures WHERE updated_at < $1", ttl),
        ("DELETE FROM verify_blocks WHERE at <= $1", escalation),
        ("DELETE FROM otp_sends WHERE at <= $1", hour),
        ("DELETE FROM sms_replies WHERE at <= $1", hour),
        ("DELETE FROM one_time_codes WHERE expires_at < $1", day),
        (
            "DELETE FROM sms_outbox WHERE state IN ('delivered', 'failed') AND created_at < $1",
            delivered,
        ),
    ] {
        exec(t, sql, &[&at]).await?;
    }
    // An idle unknown card number's counters go after 30 days, but not a
    // block that lasts until lifted: it waits for an ops unblock.
    exec(
        t,
        "DELETE FROM probe_failures WHERE updated_at < $1 AND blocked_until <= $2",
        &[&probe, &now],
    )
    .await?;
    Ok(())
}

fn code_card(r: &Row) -> Result<CodeCard, PgError> {
    let pan: Vec<u8> = r.try_get(1)?;
    Ok(CodeCard {
        id: r.try_get(0)?,
        pan_hash: hash_of(&pan)?,
        phone: r.try_get(2)?,
        last4: r.try_get(3)?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn close(&self) {
        Self::close(self);
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, IssuerError> {
        let row = read!(self, |c| query_opt(
            c,
            "SELECT value FROM meta WHERE key = $1",
            &[&key]
        )
        .await)?;
        row.map(|r| r.try_get(0).map_err(|e| PgError::from(e).into()))
            .transpose()
    }

    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>, IssuerError> {
        read!(self, |c| crate::sealed::sealed_values(
            c, kind, after, limit
        )
        .await)
    }

    async fn replace_sealed(
        &self,
        kind: SealedKind,
        key: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, IssuerError> {
        read!(self, |c| crate::sealed::replace_sealed(
            c, kind, key, old, new
        )
        .await)
    }

    async fn set_meta(
        &self,
        key: &str,
        value: Vec<u8>,
        event_kind: &'static str,
        at: i64,
    ) -> Result<(), IssuerError> {
        transaction!(self, |t| async {
            exec(
                &t,
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await?;
            event(&t, at, None, None, event_kind, "").await
        }
        .await)
    }

    async fn put_meta_once(
        &self,
        entries: Vec<(&'static str, Vec<u8>)>,
        event_kind: &'static str,
        at: i64,
    ) -> Result<Vec<Vec<u8>>, IssuerError> {
        transaction!(self, |t| put_meta_once(&t, &entries, event_kind, at).await)
    }

    async fn initialize(
        &self,
        meta: Vec<(&'static str, Vec<u8>)>,
        tokens: Vec<(Hash, Role)>,
        at: i64,
    ) -> Result<(), IssuerError> {
        transaction!(self, |t| initialize(&t, &meta, &tokens, at).await)
    }

    async fn tokens(&self) -> Result<Vec<(Hash, Role)>, IssuerError> {
        read!(self, |c| {
            let rows = query(
                c,
                "SELECT token_hash, role FROM api_tokens WHERE revoked_at IS NULL",
                &[],
            )
            .await?;
            let mut out = Vec::new();
            for r in rows {
                let hash: Vec<u8> = r.try_get(0)?;
                let role: String = r.try_get(1)?;
                if let (Ok(h), Some(role)) = (hash_of(&hash), Role::parse(&role)) {
                    out.push((h, role));
                }
            }
            Ok(out)
        })
    }

    async fn enroll(&self, e: Enrollment) -> Result<Enrolled, IssuerError> {
        transaction!(self, |t| enroll(&t, &e).await)
    }

    async fn activation_lookup(
        &self,
        phone: &str,
        code_hash: Hash,
        now: i64,
    ) -> Result<ActivationLookup, IssuerError> {
        read!(self, |c| {
            let live: i64 = query_one(
                c,
                "SELECT count(*) FROM activation_codes \
                 WHERE phone = $1 AND state = 'pending' AND expires_at > $2",
                &[&phone, &now],
            )
            .await?
            .try_get(0)?;
            let failures: i64 = match query_opt(
                c,
                "SELECT failures FROM activation_failures WHERE phone = $1",
                &[&phone],
            )
            .await?
            {
                Some(r) => r.try_get(0)?,
                None => 0,
            };
            let found = match query_opt(
                c,
                "SELECT a.id, a.card_id, c.pan_sealed, c.phone FROM activation_codes a \
                 JOIN cards c ON c.id = a.card_id \
                 WHERE a.code_hash = $1 AND a.phone = $2 AND a.state = 'pending' \
                 AND a.expires_at > $3",
                &[&&code_hash[..], &phone, &now],
            )
            .await?
            {
                Some(r) => Some(PendingActivation {
                    code_id: r.try_get(0)?,
                    card_id: r.try_get(1)?,
                    pan_sealed: r.try_get(2)?,
                    registered_phone: r.try_get(3)?,
                }),
                None => None,
            };
            Ok(ActivationLookup {
                live_code: live > 0,
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                found,
            })
        })
    }

    async fn complete_activation(&self, a: ActivationWrite) -> Result<bool, IssuerError> {
        transaction!(self, |t| complete_activation(&t, &a).await)
    }

    async fn count_activation_failure(
        &self,
        phone: &str,
        now: i64,
        max_failures: u32,
    ) -> Result<ActivationFailure, IssuerError> {
        transaction!(self, |t| count_activation_failure(
            &t,
            phone,
            now,
            max_failures
        )
        .await)
    }

    async fn count_activation_stranger(&self, now: i64) -> Result<(), IssuerError> {
        transaction!(self, |t| exec(
            &t,
            "INSERT INTO activation_strangers (id, guesses, updated_at) VALUES (1, 1, $1) \
             ON CONFLICT (id) DO UPDATE SET guesses = activation_strangers.guesses + 1, \
             updated_at = $1",
            &[&now],
        )
        .await)
        .map(|_| ())
    }

    async fn card_by_pan(&self, pan_hash: Hash) -> Result<Option<CardState>, IssuerError> {
        read!(self, |c| {
            match query_opt(
                c,
                "SELECT id, seed_sealed, seed_generation, drift_first, drift_second, blocked_until, \
                 app_status FROM cards WHERE pan_hash = $1",
                &[&&pan_hash[..]],
            )
            .await?
            {
                Some(r) => Ok(Some(card_state(&r)?)),
                None => Ok(None),
            }
        })
    }

    async fn card_by_id(&self, card_id: &str) -> Result<Option<CardState>, IssuerError> {
        read!(self, |c| {
            match query_opt(
                c,
                "SELECT id, seed_sealed, seed_generation, drift_first, drift_second, blocked_until, \
                 app_status FROM cards WHERE id = $1",
                &[&card_id],
            )
            .await?
            {
                Some(r) => Ok(Some(card_state(&r)?)),
                None => Ok(None),
            }
        })
    }

    async fn change_card_status(
        &self,
        card: CardRef,
        cause: StatusCause,
        now: i64,
    ) -> Result<Option<StatusOutcome>, IssuerError> {
        transaction!(self, |t| change_card_status(&t, &card, cause, now).await)
    }

    async fn probe_blocked_until(&self, pan_hash: Hash) -> Result<i64, IssuerError> {
        read!(self, |c| {
            match query_opt(
                c,
                "SELECT blocked_until FROM probe_failures WHERE pan_hash = $1",
                &[&&pan_hash[..]],
            )
            .await?
            {
                Some(r) => Ok(r.try_get(0)?),
                None => Ok(0),
            }
        })
    }

    async fn one_time_codes(
        &self,
        card_id: &str,
        since: i64,
    ) -> Result<Vec<OneTimeCodeRow>, IssuerError> {
        read!(self, |c| {
            let rows = query(
                c,
                "SELECT id, channel, code_hash, state, expires_at FROM one_time_codes \
                 WHERE card_id = $1 AND created_at > $2",
                &[&card_id, &since],
            )
            .await?;
            let mut out = Vec::new();
            for r in rows {
                let channel: String = r.try_get(1)?;
                let state: String = r.try_get(3)?;
                let (Some(channel), Some(state)) =
                    (CodeChannel::parse(&channel), CodeState::parse(&state))
                else {
                    continue;
                };
                let hash: Vec<u8> = r.try_get(2)?;
                out.push(OneTimeCodeRow {
                    id: r.try_get(0)?,
                    channel,
                    code_hash: hash_of(&hash)?,
                    state,
                    expires_at: r.try_get(4)?,
                });
            }
            Ok(out)
        })
    }

    async fn settle_verification(&self, s: Settlement) -> Result<SettleDecision, IssuerError> {
        transaction!(self, |t| settle(&t, &s).await)
    }

    async fn settle_unknown(
        &self,
        pan_hash: Hash,
        now: i64,
        rules: Lockout,
    ) -> Result<UnknownSettled, IssuerError> {
        transaction!(self, |t| settle_unknown(&t, &pan_hash, now, rules).await)
    }

    async fn sms_card(&self, phone: &str, last4: &str) -> Result<Option<CodeCard>, IssuerError> {
        read!(self, |c| {
            query_opt(
                c,
                "SELECT id, pan_hash, phone, last4 FROM cards \
                 WHERE phone = $1 AND last4 = $2 AND sms_enabled \
                 ORDER BY created_at DESC LIMIT 1",
                &[&phone, &last4],
            )
            .await?
            .map(|r| code_card(&r))
            .transpose()
        })
    }

    async fn harim_card(&self, pan_hash: Hash) -> Result<Option<CodeCard>, IssuerError> {
        read!(self, |c| {
            query_opt(
                c,
                "SELECT id, pan_hash, phone, last4 FROM cards WHERE pan_hash = $1",
                &[&&pan_hash[..]],
            )
            .await?
            .map(|r| code_card(&r))
            .transpose()
        })
    }

    async fn issue_one_time_code(&self, i: IssueCode) -> Result<Issued, IssuerError> {
        transaction!(self, |t| issue_one_time_code(&t, &i).await)
    }

    async fn reply_without_code(
        &self,
        phone: &str,
        now: i64,
        max_per_hour: u32,
        message: NewSms,
    ) -> Result<bool, IssuerError> {
        transaction!(self, |t| reply_without_code(
            &t,
            phone,
            now,
            max_per_hour,
            &message
        )
        .await)
    }

    async fn unblock(&self, pan_hash: Hash, now: i64) -> Result<Option<Unblocked>, IssuerError> {
        transaction!(self, |t| unblock(&t, &pan_hash, now).await)
    }

    async fn put_merchant(
        &self,
        payee_id: &str,
        name: &str,
        now: i64,
    ) -> Result<(Stored, Merchant), IssuerError> {
        transaction!(self, |t| put_merchant(&t, payee_id, name, now).await)
    }

    async fn merchant(&self, payee_id: &str) -> Result<Option<Merchant>, IssuerError> {
        read!(self, |c| {
            query_opt(c, MERCHANT, &[&payee_id])
                .await?
                .map(|r| merchant_of(&r))
                .transpose()
        })
    }

    async fn claim_messages(
        &self,
        now: i64,
        limit: u32,
        lease_secs: i64,
    ) -> Result<Vec<QueuedSms>, IssuerError> {
        transaction!(self, |t| claim_messages(&t, now, limit, lease_secs).await)
    }

    async fn message_delivered(
        &self,
        id: i64,
        now: i64,
        gateway_ref: Option<String>,
    ) -> Result<(), IssuerError> {
        transaction!(self, |t| exec(
            &t,
            "UPDATE sms_outbox SET state = 'delivered', payload = NULL, delivered_at = $2, \
             lease_until = NULL, attempts = attempts + 1, gateway_ref = $3 WHERE id = $1",
            &[&id, &now, &gateway_ref],
        )
        .await)
        .map(|_| ())
    }

    async fn message_failed(
        &self,
        id: i64,
        retry_at: Option<i64>,
        error: &str,
    ) -> Result<(), IssuerError> {
        transaction!(self, |t| match retry_at {
            Some(at) =>
                exec(
                    &t,
                    "UPDATE sms_outbox SET state = 'pending', next_attempt_at = $2, \
                 lease_until = NULL, attempts = attempts + 1, last_error = $3 WHERE id = $1",
                    &[&id, &at, &error],
                )
                .await,
            None =>
                exec(
                    &t,
                    "UPDATE sms_outbox SET state = 'failed', payload = NULL, lease_until = NULL, \
                 attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    &[&id, &error],
                )
                .await,
        })
        .map(|_| ())
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, IssuerError> {
        read!(self, |c| {
            let r = query_one(
                c,
                "SELECT count(*) FILTER (WHERE state IN ('pending', 'sending')), \
                 count(*) FILTER (WHERE state = 'failed') FROM sms_outbox",
                &[],
            )
            .await?;
            Ok(OutboxCounts {
                pending: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
                failed: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
            })
        })
    }

    async fn record_delivery_report(
        &self,
        message_id: &str,
        report: DeliveryReport,
        at: i64,
    ) -> Result<bool, IssuerError> {
        let report = report.as_str();
        transaction!(self, |t| exec(
            &t,
            "INSERT INTO sms_delivery_reports (message_id, report, at) \
             SELECT $1, $2, $3 WHERE EXISTS \
             (SELECT 1 FROM sms_outbox WHERE message_id = $1)",
            &[&message_id, &report, &at],
        )
        .await)
        .map(|n| n == 1)
    }

    async fn delivery_reports(
        &self,
        message_id: &str,
    ) -> Result<Vec<(DeliveryReport, i64)>, IssuerError> {
        read!(self, |c| {
            let rows = query(
                c,
                "SELECT report, at FROM sms_delivery_reports WHERE message_id = $1 ORDER BY id",
                &[&message_id],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    let report: String = r.try_get(0)?;
                    Ok((
                        DeliveryReport::parse(&report).ok_or_else(|| corrupt("delivery report"))?,
                        r.try_get(1)?,
                    ))
                })
                .collect()
        })
    }

    async fn record_dev_sms(&self, sms: DevSms) -> Result<(), IssuerError> {
        transaction!(self, |t| exec(
            &t,
            "INSERT INTO dev_sms_log (to_phone, sender, body_sealed, created_at) \
             VALUES ($1, $2, $3, $4)",
            &[&sms.to, &sms.from, &sms.body_sealed, &sms.created_at],
        )
        .await)
        .map(|_| ())
    }

    async fn dev_sms(&self, phone: Option<&str>, limit: u32) -> Result<Vec<DevSms>, IssuerError> {
        let limit = i64::from(limit);
        read!(self, |c| {
            let rows = query(
                c,
                "SELECT to_phone, sender, body_sealed, created_at FROM ( \
                   SELECT id, to_phone, sender, body_sealed, created_at FROM dev_sms_log \
                   WHERE $1::TEXT IS NULL OR to_phone = $1 ORDER BY id DESC LIMIT $2 \
                 ) newest ORDER BY id ASC",
                &[&phone, &limit],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(DevSms {
                        to: r.try_get(0)?,
                        from: r.try_get(1)?,
                        body_sealed: r.try_get(2)?,
                        created_at: r.try_get(3)?,
                    })
                })
                .collect()
        })
    }

    async fn health(&self) -> Result<(), IssuerError> {
        let standby: bool = read!(self, |c| {
            Ok(query_one(c, "SELECT pg_is_in_recovery()", &[])
                .await?
                .try_get(0)?)
        })?;
        if standby {
            return Err(IssuerError::Storage(
                "the database is a standby in recovery and takes no writes".into(),
            ));
        }
        Ok(())
    }

    async fn prune(&self, now: i64) -> Result<(), IssuerError> {
        transaction!(self, |t| prune(&t, now).await)
    }

    fn stats(&self) -> Vec<(&'static str, &'static str, u64)> {
        let status = self.pool.status();
        vec![
            (
                "pooya_issuer_pg_pool_connections",
                "Connections open in this node's PostgreSQL pool.",
                u64::try_from(status.size).unwrap_or(0),
            ),
            (
                "pooya_issuer_pg_pool_idle",
                "Idle connections in this node's PostgreSQL pool.",
                u64::try_from(status.available).unwrap_or(0),
            ),
            (
                "pooya_issuer_pg_retries_total",
                "Transactions run again after a serialization failure or deadlock.",
                self.retries.load(Relaxed),
            ),
        ]
    }
}
