//! TLS to PostgreSQL (issue 11, item 2): a cluster of the test's own with
//! `ssl = on` and a certificate from a test authority. With the
//! authority's certificate the store connects over TLS (PostgreSQL's
//! `pg_stat_ssl` says so); with another authority, or without one for
//! `sslmode=require`, it refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use pooya_issuer_postgres::{PostgresOptions, PostgresStore};
use pooya_issuer_service::Store;
use pooya_testpg::TestPostgres;

/// A test certificate authority and a server certificate it issued for
/// 127.0.0.1 and localhost: (CA PEM, server certificate PEM, server key PEM).
fn authority_and_server() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pooya test database CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    let server = params.signed_by(&server_key, &issuer).unwrap();
    (ca_cert.pem(), server.pem(), server_key.serialize_pem())
}

/// Writes a file the cluster's owner (the `postgres` user when the test
/// runs as root) can read, and nobody else.
fn write_private(path: &Path, text: &str, like: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let owner = std::fs::metadata(like).unwrap();
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

async fn sql(url: &str, query: &str) -> Vec<tokio_postgres::Row> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.query(query, &[]).await.unwrap()
}

fn options(ca: Option<&Path>) -> PostgresOptions {
    PostgresOptions {
        pool_size: 2,
        timeout: Duration::from_secs(10),
        tls_ca: ca.map(Path::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_speaks_tls_to_a_server_its_authority_vouches_for() {
    let pg = tokio::task::spawn_blocking(|| TestPostgres::start_owned().unwrap())
        .await
        .unwrap();
    let dir = pg.data_dir().to_owned();
    let (ca, cert, key) = authority_and_server();
    write_private(&dir.join("server.crt"), &cert, &dir);
    write_private(&dir.join("server.key"), &key, &dir);
    let admin = pg.admin_url();
    for q in [
        format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            dir.join("server.crt").display()
        ),
        format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            dir.join("server.key").display()
        ),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        sql(&admin, &q).await;
    }
    // The reload is asynchronous: wait until the server says ssl is on.
    for _ in 0..100 {
        let on: String = sql(&admin, "SHOW ssl").await[0].get(0);
        if on == "on" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = tokio::task::block_in_place(|| pg.fresh_database().unwrap());
    let work = tempfile::tempdir().unwrap();
    let ca_file = work.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let require = format!("{db}?sslmode=require");

    // The authority given: connected over TLS, and the store works.
    let store = PostgresStore::connect(&require, options(Some(&ca_file)))
        .await
        .unwrap();
    store.health().await.unwrap();
    let ssl: i64 = sql(
        &admin,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE s.ssl AND a.usename = 'pooya' AND a.backend_type = 'client backend'",
    )
    .await[0]
        .get(0);
    assert!(ssl >= 1, "no TLS connection seen by the server");
    store.close();

    // sslmode=require without an authority: a settings error, at once.
    let err = PostgresStore::connect(&require, options(None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_settings", "{err}");

    // Another authority: the server's certificate is refused.
    let (other_ca, _, _) = authority_and_server();
    let other = work.path().join("other.pem");
    std::fs::write(&other, &other_ca).unwrap();
    let err = PostgresStore::connect(&require, options(Some(&other)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage", "{err}");

    // A file that holds no certificate: a settings error.
    let empty = work.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = PostgresStore::connect(&require, options(Some(&empty)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_settings", "{err}");
    drop(pg);
}
