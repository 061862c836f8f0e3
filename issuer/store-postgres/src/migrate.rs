//! Numbered migrations (`migrations/NNN_name.sql`, loaded with
//! `include_str!`), applied in order at connect, each in its own
//! transaction; the version applied last is the one row of
//! `schema_version` (created by 001).
//!
//! Several nodes may start at once: each migration's transaction first
//! takes `pg_advisory_xact_lock(MIGRATION_LOCK)` and then reads the
//! version, so exactly one node applies each migration and the others,
//! once the lock is theirs, find it applied.

use pooya_issuer_service::IssuerError;
use tokio_postgres::Client;

use crate::error::PgError;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/001_initial.sql")),
    (
        2,
        "delivery_reports",
        include_str!("../migrations/002_delivery_reports.sql"),
    ),
    (
        3,
        "card_status",
        include_str!("../migrations/003_card_status.sql"),
    ),
];

/// The advisory lock key every node takes around migrating ("pooyamig").
pub const MIGRATION_LOCK: i64 = 0x706f_6f79_616d_6967;

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The schema version of the database (0: empty), read inside `tx`.
async fn current_version(tx: &tokio_postgres::Transaction<'_>) -> Result<i64, PgError> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    Ok(tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?
        .try_get(0)?)
}

/// Brings the schema up to date, one migration per transaction, and
/// returns the version.
///
/// # Errors
/// [`IssuerError::SchemaTooNew`] for a database a newer build migrated
/// (nothing is changed); [`IssuerError::Storage`] when a migration fails
/// (that migration is rolled back whole, earlier ones stay).
pub async fn migrate(client: &mut Client) -> Result<i64, IssuerError> {
    loop {
        let tx = client.transaction().await.map_err(PgError::from)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(PgError::from)?;
        let current = current_version(&tx).await?;
        if current > latest_version() {
            return Err(IssuerError::SchemaTooNew {
                found: current,
                supported: latest_version(),
            });
        }
        let Some((version, name, sql)) = MIGRATIONS.iter().find(|m| m.0 > current) else {
            tx.commit().await.map_err(PgError::from)?;
            return Ok(current);
        };
        tx.batch_execute(sql).await.map_err(|e| {
            IssuerError::Storage(format!(
                "migration {version:03}_{name}: {}",
                crate::error::message(&e)
            ))
        })?;
        tx.execute("DELETE FROM schema_version", &[])
            .await
            .map_err(PgError::from)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(PgError::from)?;
        tx.commit().await.map_err(PgError::from)?;
        tracing::info!(version, name, "applied PostgreSQL migration");
    }
}
