//! SQLite: opening connections, numbered migrations
//! (`issuer/migrations/NNN_name.sql`, each in its own transaction, the
//! version in `PRAGMA user_version`) and the pool of read connections.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::DbError;

/// The database file inside the data directory.
pub const DB_FILE: &str = "issuer.db";
/// The master key file inside the data directory.
pub const KEY_FILE: &str = "master.key";

/// Files SQLite keeps beside the database (its WAL and shared-memory
/// index), private like it.
const DB_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes the data directory private before anything in it is opened
/// (docs/security.md, "Data at rest"): the directory mode 0700, the
/// database, its WAL, shared-memory index and journal, and the key file
/// 0600, each fixed (and logged) when looser. SQLite creates a new WAL or
/// index with the database file's mode, so they stay private.
///
/// # Errors
/// [`IssuerError::UnsafeDataDir`] when the directory or a file is owned by
/// another user, is a symbolic link, or its mode cannot be changed;
/// [`IssuerError::Io`] when it cannot be examined.
pub fn secure_data_dir(data_dir: &Path) -> Result<(), DbError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = rustix::process::geteuid().as_raw();
        let fix = |path: &Path, want: u32, is_dir: bool| -> Result<(), DbError> {
            let meta = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_dir => return Ok(()),
                Err(e) => return Err(DbError::io("examining the data directory", &e)),
            };
            if meta.file_type().is_symlink() || meta.is_dir() != is_dir {
                return Err(DbError::UnsafeDataDir(format!(
                    "{} is not a plain {}",
                    path.display(),
                    if is_dir { "directory" } else { "file" }
                )));
            }
            if meta.uid() != me {
                return Err(DbError::UnsafeDataDir(format!(
                    "{} is owned by user {}, not by this process's user {me}",
                    path.display(),
                    meta.uid()
                )));
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode != want {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)).map_err(
                    |e| {
                        DbError::UnsafeDataDir(format!(
                            "cannot make {} private: {e}",
                            path.display()
                        ))
                    },
                )?;
                tracing::warn!(
                    path = %path.display(),
                    from = format_args!("{mode:o}"),
                    to = format_args!("{want:o}"),
                    "tightened the mode of a data file"
                );
            }
            Ok(())
        };
        fix(data_dir, 0o700, true)?;
        let db = data_dir.join(DB_FILE);
        fix(&db, 0o600, false)?;
        for suffix in DB_SIDE_FILES {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            fix(Path::new(&name), 0o600, false)?;
        }
        fix(&data_dir.join(KEY_FILE), 0o600, false)?;
    }
    #[cfg(not(unix))]
    let _ = data_dir;
    Ok(())
}

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/001_initial.sql")),
    (
        2,
        "one_time_codes",
        include_str!("../migrations/002_one_time_codes.sql"),
    ),
    (
        3,
        "lockouts",
        include_str!("../migrations/003_lockouts.sql"),
    ),
    (
        4,
        "merchants",
        include_str!("../migrations/004_merchants.sql"),
    ),
    (
        5,
        "verification_rules",
        include_str!("../migrations/005_verification_rules.sql"),
    ),
    (
        6,
        "activation_v2",
        include_str!("../migrations/006_activation_v2.sql"),
    ),
    (
        7,
        "durable_outbox",
        include_str!("../migrations/007_durable_outbox.sql"),
    ),
    (
        8,
        "delivery_reports",
        include_str!("../migrations/008_delivery_reports.sql"),
    ),
    (
        9,
        "card_status",
        include_str!("../migrations/009_card_status.sql"),
    ),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

fn pragmas(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens (creating if needed) the database for writing: WAL journal,
/// `synchronous = FULL` so a commit is on disk before any answer depends
/// on it, then brings the schema up to date.
///
/// # Errors
/// [`IssuerError::Storage`] or [`IssuerError::SchemaTooNew`].
pub fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    pragmas(&conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the migrations the database lacks, each in its own transaction.
///
/// # Errors
/// [`IssuerError::SchemaTooNew`] for a database from a newer build;
/// [`IssuerError::Storage`] when a migration fails (that migration is
/// rolled back whole).
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > latest_version() {
        return Err(DbError::SchemaTooNew {
            found: current,
            supported: latest_version(),
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| DbError::Storage(format!("migration {version:03}_{name}: {e}")))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

/// A small pool of read-only connections (WAL lets them read while the
/// writer commits).
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl ReadPool {
    /// A pool for the database at `path`, keeping up to `keep` idle
    /// connections.
    pub fn new(path: &Path, keep: usize) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::with_capacity(keep)),
            keep,
        }
    }

    fn open(&self) -> Result<Connection, DbError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        pragmas(&conn)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Runs `f` on a pooled connection.
    ///
    /// # Errors
    /// Whatever `f` returns, or [`IssuerError::Storage`] when no connection
    /// can be opened.
    pub fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R, DbError>) -> Result<R, DbError> {
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push(conn);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let conn = open_writer(&path).unwrap();
            let v: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, latest_version());
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
        // Reopening applies nothing twice.
        drop(open_writer(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", latest_version() + 1)
                .unwrap();
        }
        assert_eq!(open_writer(&path).unwrap_err().code(), "schema_too_new");
    }

    #[test]
    fn failed_migration_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut conn = Connection::open(&path).unwrap();
        // A table that collides with migration 001 makes it fail half-way.
        conn.execute_batch("CREATE TABLE events (x INTEGER);")
            .unwrap();
        assert_eq!(migrate(&mut conn).unwrap_err().code(), "storage");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0);
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'cards'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "no half-applied migration");
    }

    #[test]
    fn upgrades_a_database_made_with_migration_001_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            // A database as the first release left it, with a card.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0].2).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO cards (id, pan_hash, pan_sealed, last4, phone, sms_enabled, created_at, updated_at) \
                 VALUES ('crd_1', x'01', x'02', '0001', '+989121234567', 1, 5, 5)",
                [],
            )
            .unwrap();
        }
        let conn = open_writer(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_version());
        conn.execute(
            "INSERT INTO verify_blocks (pan_hash, at) VALUES (x'01', 5)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO probe_failures (pan_hash, failures, updated_at) VALUES (x'09', 1, 5)",
            [],
        )
        .unwrap();
        // The card survived, and the new tables take rows for it.
        let (id, sms): (String, i64) = conn
            .query_row("SELECT id, sms_enabled FROM cards", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((id.as_str(), sms), ("crd_1", 1));
        conn.execute(
            "INSERT INTO one_time_codes (card_id, channel, code_hash, state, created_at, expires_at) \
             VALUES ('crd_1', 'sms', x'03', 'pending', 5, 125)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO otp_sends (channel, subject, at) VALUES ('harim', x'01', 5)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sms_replies (phone, at) VALUES ('+989121234567', 5)",
            [],
        )
        .unwrap();
        // The schema refuses what it must: unknown channels, codes of
        // unknown cards.
        assert!(
            conn.execute(
                "INSERT INTO one_time_codes (card_id, channel, code_hash, state, created_at, expires_at) \
                 VALUES ('crd_1', 'email', x'03', 'pending', 5, 125)",
                [],
            )
            .is_err()
        );
        assert!(
            conn.execute(
                "INSERT INTO one_time_codes (card_id, channel, code_hash, state, created_at, expires_at) \
                 VALUES ('crd_2', 'sms', x'03', 'pending', 5, 125)",
                [],
            )
            .is_err()
        );
    }

    #[test]
    fn upgrade_to_009_keeps_the_outbox_and_its_delivery_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            // A database at version 8 with a delivered message and its
            // two delivery reports.
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..8] {
                conn.execute_batch(m.2).unwrap();
            }
            conn.pragma_update(None, "user_version", 8).unwrap();
            conn.execute_batch(
                "INSERT INTO sms_outbox (message_id, to_phone, kind, payload, sealed, state, \
                 next_attempt_at, created_at) VALUES ('msg_1', '+989121234567', 'sms_help', \
                 NULL, 0, 'delivered', 5, 5);
                 INSERT INTO sms_delivery_reports (message_id, report, at) VALUES \
                 ('msg_1', 'smsc_submitted', 6), ('msg_1', 'delivered', 7);",
            )
            .unwrap();
        }
        let conn = open_writer(&path).unwrap();
        let reports: Vec<(String, String)> = conn
            .prepare("SELECT message_id, report FROM sms_delivery_reports ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            reports,
            vec![
                ("msg_1".to_owned(), "smsc_submitted".to_owned()),
                ("msg_1".to_owned(), "delivered".to_owned())
            ],
            "rebuilding sms_outbox must not cascade into its reports"
        );
        let kept: i64 = conn
            .query_row(
                "SELECT count(*) FROM sms_outbox WHERE message_id = 'msg_1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 1);
        // The foreign key still holds after the rebuild.
        assert!(
            conn.execute(
                "INSERT INTO sms_delivery_reports (message_id, report, at) VALUES ('msg_none', 'failed', 8)",
                [],
            )
            .is_err()
        );
    }

    #[test]
    fn upgrade_to_005_turns_spent_steps_into_high_water_marks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            // A database at version 3 with spent steps of two cards.
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..3] {
                conn.execute_batch(m.2).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            for (id, generation) in [("crd_1", 2), ("crd_2", 1)] {
                conn.execute(
                    "INSERT INTO cards (id, pan_hash, pan_sealed, last4, phone, seed_generation, created_at, updated_at) \
                     VALUES (?1, ?1, x'02', '0001', '+989121234567', ?2, 5, 5)",
                    rusqlite::params![id, generation],
                )
                .unwrap();
            }
            for (id, kind, step) in [
                ("crd_1", "first", 10),
                ("crd_1", "first", 12),
                ("crd_1", "second", 11),
                ("crd_1", "transaction", 13),
                ("crd_2", "transaction", 7),
            ] {
                conn.execute(
                    "INSERT INTO used_steps (card_id, kind, step, expires_at) VALUES (?1, ?2, ?3, 99)",
                    rusqlite::params![id, kind, step],
                )
                .unwrap();
            }
        }
        let conn = open_writer(&path).unwrap();
        let marks: Vec<(String, String, i64, i64)> = conn
            .prepare("SELECT card_id, key, generation, step FROM step_marks ORDER BY card_id, key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mark = |id: &str, key: &str, g: i64, s: i64| (id.to_owned(), key.to_owned(), g, s);
        assert_eq!(
            marks,
            vec![
                mark("crd_1", "first", 2, 12),
                mark("crd_1", "second", 2, 11),
                mark("crd_1", "transaction", 2, 13),
                mark("crd_2", "transaction", 1, 7),
            ]
        );
        // Only the three kinds exist.
        assert!(
            conn.execute(
                "INSERT INTO step_marks (card_id, key, generation, step) VALUES ('crd_2', 'third', 1, 1)",
                [],
            )
            .is_err()
        );
    }

    #[test]
    fn read_pool_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let _w = open_writer(&path).unwrap();
        let pool = ReadPool::new(&path, 2);
        for _ in 0..3 {
            let n: i64 = pool
                .with(|c| Ok(c.query_row("SELECT count(*) FROM cards", [], |r| r.get(0))?))
                .unwrap();
            assert_eq!(n, 0);
        }
    }
}
