//! Schema migrations: numbered SQL files in `core/migrations/`, each
//! applied in its own transaction together with the new
//! `PRAGMA user_version`, so a crash leaves the file at one version or the
//! next.

use rusqlite::{Connection, TransactionBehavior};

use crate::CoreError;

/// One migration: the version it brings the file to, its name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The schema version after this migration.
    pub version: u32,
    /// The file name without `.sql`.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Every migration, in order. Versions are 1, 2, 3… without gaps.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_initial",
        sql: include_str!("../../migrations/001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "002_lockout_boot_clock",
        sql: include_str!("../../migrations/002_lockout_boot_clock.sql"),
    },
    Migration {
        version: 3,
        name: "003_accounts",
        sql: include_str!("../../migrations/003_accounts.sql"),
    },
    Migration {
        version: 4,
        name: "004_card_life",
        sql: include_str!("../../migrations/004_card_life.sql"),
    },
];

/// The schema objects of a connection: `(type, name, table, sql)` of
/// every table, index and trigger, sorted by name.
///
/// # Errors
/// Storage errors, or [`CoreError::VaultCorrupted`] for a damaged schema.
pub fn schema_objects(conn: &Connection) -> Result<Vec<[String; 4]>, CoreError> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_schema ORDER BY name",
    )?;
    let rows = stmt
        .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Checks that the file's schema is exactly what the migrations create
/// (a damaged or altered schema is refused before any query runs on it).
///
/// # Errors
/// [`CoreError::VaultCorrupted`] when it differs.
pub fn verify_schema(conn: &Connection) -> Result<(), CoreError> {
    static EXPECTED: std::sync::OnceLock<Option<Vec<[String; 4]>>> = std::sync::OnceLock::new();
    let expected = EXPECTED.get_or_init(|| {
        let mut mem = Connection::open_in_memory().ok()?;
        migrate(&mut mem).ok()?;
        schema_objects(&mem).ok()
    });
    let expected = expected
        .as_ref()
        .ok_or_else(|| CoreError::Storage("cannot build the reference schema".into()))?;
    if &schema_objects(conn).map_err(|_| CoreError::VaultCorrupted)? != expected {
        return Err(CoreError::VaultCorrupted);
    }
    Ok(())
}

/// The newest schema version this build knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The file's schema version (`PRAGMA user_version`).
///
/// # Errors
/// [`CoreError::VaultCorrupted`] for a negative version or a damaged file.
pub fn current_version(conn: &Connection) -> Result<u32, CoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| CoreError::VaultCorrupted)
}

/// Applies the migrations newer than the file's version, up to `target`,
/// each in its own immediate transaction.
///
/// # Errors
/// [`CoreError::VaultTooNew`] when the file is newer than this build;
/// [`CoreError::VaultCorrupted`] when a migration does not apply (the file
/// is not what its version says); storage errors otherwise.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<(), CoreError> {
    let found = current_version(conn)?;
    let supported = latest_version();
    if found > supported {
        return Err(CoreError::VaultTooNew { found, supported });
    }
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(m.sql)
            .map_err(|e| match CoreError::from(e) {
                CoreError::Storage(msg) if msg.contains("already exists") => {
                    CoreError::VaultCorrupted
                }
                other => other,
            })?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
    }
    Ok(())
}

/// Applies every migration newer than the file's version.
///
/// # Errors
/// As [`migrate_to`].
pub fn migrate(conn: &mut Connection) -> Result<(), CoreError> {
    migrate_to(conn, latest_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_names_match() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:03}_", m.version)));
        }
    }

    #[test]
    fn upgrade_from_every_earlier_version() {
        // A database at every earlier version (0 = empty) migrates to the
        // latest and ends with the same schema as a fresh one.
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let schema = |c: &Connection| -> Vec<String> {
            let mut s = c
                .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
                .unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        for v in 0..latest_version() {
            let mut c = Connection::open_in_memory().unwrap();
            migrate_to(&mut c, v).unwrap();
            assert_eq!(current_version(&c).unwrap(), v);
            migrate(&mut c).unwrap();
            assert_eq!(current_version(&c).unwrap(), latest_version());
            assert_eq!(schema(&c), schema(&fresh));
        }
        // Migrating again is a no-op.
        migrate(&mut fresh).unwrap();
    }

    #[test]
    fn altered_schemas_are_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        verify_schema(&c).unwrap();
        c.execute_batch("CREATE TABLE extra (x)").unwrap();
        assert_eq!(verify_schema(&c).unwrap_err(), CoreError::VaultCorrupted);
    }

    #[test]
    fn newer_files_are_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        assert_eq!(
            migrate(&mut c).unwrap_err(),
            CoreError::VaultTooNew {
                found: 99,
                supported: latest_version()
            }
        );
    }

    #[test]
    fn a_version_that_lies_is_corruption() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        c.pragma_update(None, "user_version", 0).unwrap();
        assert_eq!(migrate(&mut c).unwrap_err(), CoreError::VaultCorrupted);
    }
}
