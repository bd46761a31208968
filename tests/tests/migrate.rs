//! `devicetrust-server migrate --from sqlite://… --to postgres://…`: a
//! single-node installation with users, a device, sessions, a card and an
//! audit trail moves into PostgreSQL; every table's count matches, a second
//! run into the now non-empty target is refused, and the moved users sign
//! in afterwards (device proof, password + OTP, and an old access token).
//!
//! PostgreSQL only: without `DEVICETRUST_TEST_DATABASE` it says why it skips.

use clap::Parser;
use devicetrust_e2e::*;
use devicetrust_server::cli::{self, Cli, CliError};
use devicetrust_server::server_key::ServerKey;
use devicetrust_server::storage::migrate::{schema_differences, sqlite_to_postgres, MigrateError};
use devicetrust_server::storage::postgres::PostgresStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_moves_to_postgres_and_signs_in_after() {
    let Some(url) = fresh_database().await else {
        skip(
            "migrate needs PostgreSQL \
             (set DEVICETRUST_TEST_DATABASE=postgres://…, or run under scripts/postgres)",
        );
        return;
    };
    let key = ServerKey::generate().expect("server key");
    let old = TestServer::start_with(Options {
        sqlite: true,
        server_key: Some(key.clone()),
        ..Options::default()
    })
    .await;
    let (session, device_id, device_key) = old.user_with_device("mover").await;
    old.add_user("stayer", "SE", Some("+46701234567")).await;
    old.set_market("SE", "off").await;
    let card = old
        .post(
            "/admin/v1/cards",
            json!({
                "card_number": "4111111111111111", "card_id": "1234", "name": "Mo Ver",
                "email": "mover@example.com", "primary_market": "GB", "activated": true,
            }),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(card.status, 201, "{:?}", card.body);
    for _ in 0..3 {
        old.password("stayer", "not the password", None).await;
    }
    assert_eq!(
        old.device_sign_in(&device_id, &device_key, "mover")
            .await
            .status,
        200
    );
    old.pause().await;
    let from = format!("sqlite://{}", old.db_path().display());

    let report = sqlite_to_postgres(&from, &url).await.expect("migrate");
    for c in &report {
        assert_eq!(c.source, c.target, "{}", c.table);
    }
    let count = |t: &str| report.iter().find(|c| c.table == t).map(|c| c.target);
    assert_eq!(count("users"), Some(2));
    assert_eq!(count("devices"), Some(1));
    assert_eq!(count("cards"), Some(1));
    assert_eq!(count("markets"), Some(1));
    assert_eq!(count("attempts"), Some(1));
    assert!(count("sessions") >= Some(2));
    assert!(count("audit") >= Some(5));

    // The command itself refuses a target that is not empty.
    let again = cli::run(
        Cli::try_parse_from([
            "devicetrust-server",
            "migrate",
            "--from",
            &from,
            "--to",
            &url,
        ])
        .expect("arguments"),
    )
    .await;
    match again {
        Err(e @ CliError::Migrate(MigrateError::NotEmpty(_))) => assert_eq!(e.exit_code(), 3),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The same users sign in on PostgreSQL.
    let new = TestServer::start_with(Options {
        database: Some(url.clone()),
        server_key: Some(key),
        clock: Some(old.clock.clone()),
        ..Options::default()
    })
    .await;
    assert_eq!(
        new.get("/v1/me", session["access_token"].as_str())
            .await
            .status,
        200,
        "a session opened before the move lives on"
    );
    let bio = new.device_sign_in(&device_id, &device_key, "mover").await;
    assert_eq!(bio.status, 200, "{:?}", bio.body);
    new.sign_in_with_otp("mover", None).await;
    // The failure count moved too: two more failures lock `stayer`.
    for _ in 0..2 {
        new.password("stayer", "not the password", None).await;
    }
    assert_eq!(
        new.password("stayer", PASSWORD, None).await.code(),
        "account_locked"
    );
    // New audit lines continue after the copied ids.
    assert!(new.audit_events("mover").await.len() > old.audit_events("mover").await.len());
}

/// The two backends' migrations are in step: the same tables and columns.
/// A column added to SQLite's schema and not to PostgreSQL's (or the other
/// way round) fails here, naming it.
#[tokio::test]
async fn both_backends_have_the_same_tables_and_columns() {
    let Some(url) = fresh_database().await else {
        skip("comparing the schemas needs PostgreSQL (DEVICETRUST_TEST_DATABASE)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let path = path.to_str().unwrap();
    drop(
        devicetrust_server::storage::sqlite::SqliteStore::open(path)
            .await
            .unwrap(),
    );
    let pg = PostgresStore::open(&url).await.unwrap();
    let differences = schema_differences(path, &pg).await.unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
}
