//! `sslmode=require` to PostgreSQL: the link is TLS (rustls), and the
//! database's certificate is verified: without the CA that issued it
//! (`sslrootcert`), the store refuses to connect.
//!
//! Needs the cluster of `scripts/postgres`, which serves TLS under a
//! throwaway CA named by `DEVICETRUST_TEST_DATABASE_CA`; otherwise it says
//! why it skips.

use devicetrust_e2e::*;
use devicetrust_server::storage::postgres::PostgresStore;
use devicetrust_server::storage::{StorageError, Store};

#[tokio::test]
async fn sslmode_require_is_tls_with_the_certificate_verified() {
    let (Some(url), Ok(ca)) = (
        fresh_database().await,
        std::env::var("DEVICETRUST_TEST_DATABASE_CA"),
    ) else {
        skip(
            "sslmode=require needs DEVICETRUST_TEST_DATABASE and DEVICETRUST_TEST_DATABASE_CA \
             (a cluster serving TLS, as scripts/postgres starts)",
        );
        return;
    };
    // Without the CA: the certificate is not trusted, so no connection.
    match PostgresStore::open(&format!("{url}&sslmode=require")).await {
        Err(StorageError::Pool(msg)) => assert!(
            msg.to_lowercase().contains("certificate") || msg.contains("UnknownIssuer"),
            "{msg}"
        ),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("an unverified certificate was accepted"),
    }
    let name = format!("dt-tls-{}", std::process::id());
    let store = PostgresStore::open(&format!(
        "{url}&sslmode=require&sslrootcert={ca}&application_name={name}"
    ))
    .await
    .expect("TLS with the CA");
    store.ping().await.expect("ping over TLS");
    // The server saw TLS on the store's connections.
    let plain = pg_connect(&url).await;
    let tls: i64 = plain
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE s.ssl AND a.application_name = $1",
            &[&name],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(tls >= 1, "no TLS connection from the store");
}
