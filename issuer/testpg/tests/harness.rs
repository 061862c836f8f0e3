//! The harness itself: one shared cluster, fresh databases, durable
//! settings, an owned cluster that stops and starts, and nothing left
//! behind when the test process ends or is killed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pooya_testpg::{TestPostgres, URL_VAR};

#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(connection);
    client
}

#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
async fn one_string(client: &tokio_postgres::Client, sql: &str) -> String {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Whether `pid` is a live (not zombie) process.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit_once(')').unwrap().1.trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
    }
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[tokio::test]
async fn one_shared_server_many_fresh_databases() {
    let a = TestPostgres::shared().unwrap();
    let b = TestPostgres::shared().unwrap();
    assert!(std::ptr::eq(a, b), "shared() starts one server per process");

    let first = a.fresh_database().unwrap();
    let second = a.fresh_database().unwrap();
    assert_ne!(first, second);
    let prefix = format!("pooya_test_{}_", std::process::id());
    for url in [&first, &second] {
        let name = url.rsplit('/').next().unwrap();
        assert!(name.starts_with(&prefix), "{url}");
        let client = connect(url).await;
        assert_eq!(one_string(&client, "SELECT current_database()").await, name);
    }
    // Fresh means empty and separate.
    let one = connect(&first).await;
    one.batch_execute("CREATE TABLE only_here (x BIGINT)")
        .await
        .unwrap();
    let two = connect(&second).await;
    let err = two.query("SELECT x FROM only_here", &[]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
}

#[tokio::test]
async fn the_throwaway_cluster_is_durable_and_on_loopback() {
    let pg = TestPostgres::shared().unwrap();
    if pg.is_external() {
        // POOYA_TEST_POSTGRES_URL's server has its operator's settings.
        return;
    }
    let client = connect(&pg.fresh_database().unwrap()).await;
    for (setting, expected) in [
        ("fsync", "on"),
        ("synchronous_commit", "on"),
        ("max_connections", "200"),
        ("listen_addresses", "127.0.0.1"),
        ("shared_buffers", "128MB"),
        ("server_encoding", "UTF8"),
        ("lc_collate", "C"),
    ] {
        assert_eq!(
            one_string(&client, &format!("SHOW {setting}")).await,
            expected,
            "{setting}"
        );
    }
    assert_eq!(one_string(&client, "SELECT current_user").await, "pooya");
    let dir = pg.data_dir().unwrap();
    assert!(dir.join("data").join("PG_VERSION").is_file());
    assert!(alive(pg.postmaster_pid().unwrap()));
}

#[tokio::test]
async fn an_owned_cluster_stops_crashes_and_starts_keeping_committed_rows() {
    let pg = TestPostgres::start_owned().unwrap();
    let port = pg.port();
    let url = pg.fresh_database().unwrap();
    let client = connect(&url).await;
    client
        .batch_execute("CREATE TABLE kept (x BIGINT); INSERT INTO kept VALUES (1)")
        .await
        .unwrap();
    drop(client);

    pg.stop().unwrap();
    assert_eq!(pg.postmaster_pid(), None);
    let err = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .err()
        .unwrap();
    let io = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("not an I/O error: {err:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    // Stopping a stopped server is refused by pg_ctl.
    assert_eq!(pg.stop().unwrap_err().code(), "command_failed");

    pg.start().unwrap();
    assert_eq!(pg.port(), port);
    let client = connect(&url).await;
    client
        .batch_execute("INSERT INTO kept VALUES (2)")
        .await
        .unwrap();
    drop(client);

    // A commit answered is on disk (synchronous_commit = on): it survives
    // an immediate stop and crash recovery.
    pg.crash().unwrap();
    pg.start().unwrap();
    let client = connect(&url).await;
    let rows = client
        .query("SELECT x FROM kept ORDER BY x", &[])
        .await
        .unwrap();
    let xs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(xs, [1, 2]);
    drop(client);

    let dir = pg.data_dir().to_path_buf();
    let pid = pg.postmaster_pid().unwrap();
    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!alive(pid), "postmaster {pid} still running");
}

#[test]
fn a_start_on_a_taken_port_fails_with_the_log_tail() {
    let pg = TestPostgres::start_owned().unwrap();
    pg.stop().unwrap();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", pg.port())).unwrap();
    let err = pg.start().unwrap_err();
    assert_eq!(err.code(), "start_failed");
    assert!(err.to_string().contains("Address already in use"), "{err}");
    drop(squatter);
    pg.start().unwrap();
    pg.fresh_database().unwrap();
}

#[tokio::test]
async fn pooya_test_postgres_url_names_the_server_to_use() {
    let owned = TestPostgres::start_owned().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pooya-testpg"))
        .env(URL_VAR, owned.admin_url())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_owned)
    };
    assert_eq!(value("url=").unwrap(), owned.admin_url());
    assert_eq!(value("dir="), None, "nothing started: {stdout}");
    let database = value("database=").unwrap();
    let name = database.rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("pooya_test_"), "{database}");
    // The database was made on the named server.
    let client = connect(&owned.admin_url()).await;
    let rows = client
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    drop(client);
    connect(&database).await;
}

#[test]
fn a_bad_pooya_test_postgres_url_is_refused_by_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_pooya-testpg"))
        .env(URL_VAR, "mysql://root:hunter2@127.0.0.1/x")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("(bad_url)"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn owned_clusters_are_separate() {
    let a = TestPostgres::start_owned().unwrap();
    let b = TestPostgres::start_owned().unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    a.stop().unwrap();
    // b does not care.
    b.fresh_database().unwrap();
    assert_eq!(a.fresh_database().unwrap_err().code(), "command_failed");
}

/// The `pooya-testpg` binary with a cluster of its own, once it says
/// `ready`: the child, the cluster's directory and its postmaster.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn holder() -> (Child, PathBuf, u32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pooya-testpg"))
        .env_remove(URL_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut dir = None;
    let mut pid = None;
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("dir=") {
            dir = Some(PathBuf::from(d));
        } else if let Some(p) = line.strip_prefix("pid=") {
            pid = Some(p.parse().unwrap());
        } else if line == "ready" {
            break;
        }
    }
    let (dir, pid) = (dir.expect("dir= line"), pid.expect("pid= line"));
    assert!(dir.join("data").is_dir());
    assert!(alive(pid), "postmaster {pid} not running");
    (child, dir, pid)
}

#[test]
fn a_killed_test_process_leaves_no_server_and_no_directory() {
    let (mut child, dir, pid) = holder();
    child.kill().unwrap(); // SIGKILL: no destructor, no atexit.
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(15), || !alive(pid) && !dir.exists()),
        "after kill -9: postmaster {pid} alive {}, {} exists {}",
        alive(pid),
        dir.display(),
        dir.exists()
    );
}

#[test]
fn a_test_process_that_exits_leaves_no_server_and_no_directory() {
    let (mut child, dir, pid) = holder();
    drop(child.stdin.take()); // the holder then returns from main
    assert!(child.wait().unwrap().success());
    assert!(
        eventually(Duration::from_secs(15), || !alive(pid) && !dir.exists()),
        "after exit: postmaster {pid} alive {}, {} exists {}",
        alive(pid),
        dir.display(),
        dir.exists()
    );
}
