//! The load generator's logic, end to end with small counts: each mode
//! against a real server (the backend of the matrix), the seeded
//! population's keys as the server sees them, and a seeded SQLite file
//! the server can open. No timing is asserted: figures are for the binary.

use std::sync::Arc;
use std::time::Duration;

use devicetrust_e2e::loadgen::{self, Mode, Population, RunConfig, Target};
use devicetrust_e2e::*;
use devicetrust_server::secrets::HasherConfig;
use devicetrust_server::storage::sqlite::SqliteStore;
use devicetrust_server::storage::Store;

fn population(seed: &str) -> Population {
    Population {
        users: 5,
        devices_per_user: 2,
        seed: seed.into(),
    }
}

fn config(mode: Mode, requests: u64) -> RunConfig {
    RunConfig {
        mode,
        requests,
        concurrency: 3,
        password_tasks: 0,
        max_time: Duration::from_secs(60),
        calibrate: Duration::ZERO,
        rp_id: RP_ID.into(),
        population: population("smoke"),
        server_pid: None,
    }
}

/// A server with the smoke population seeded through its store.
async fn seeded_server() -> TestServer {
    let srv = TestServer::start_with(Options {
        // Two hashes at once: the password runs stay short in debug builds.
        hasher: HasherConfig {
            concurrency: 2,
            ..HasherConfig::default()
        },
        ..Options::default()
    })
    .await;
    loadgen::seed(srv.store.clone(), &population("smoke"), srv.now(), 3, false)
        .await
        .expect("seed");
    srv
}

fn target(srv: &TestServer) -> Target {
    Target::new(vec![srv.base.clone()]).expect("target")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_mode_signs_in_with_seeded_keys_across_users() {
    let srv = seeded_server().await;
    let report = loadgen::run(&target(&srv), &config(Mode::Device, 30))
        .await
        .expect("run");
    assert_eq!(report.main.errors, Default::default());
    assert_eq!(report.main.ok_count(), 30);
    // Every one of the 10 seeded devices signed in (30 sign-ins, user first).
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM devices WHERE last_used_at IS NOT NULL")
            .await,
        10
    );
    assert!(report.text().contains("device: 30 ok"));
    assert!(report.markdown_row().starts_with("| device | "));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_another_seed_are_refused() {
    let srv = seeded_server().await;
    let mut cfg = config(Mode::Device, 4);
    cfg.population = population("another seed");
    let report = loadgen::run(&target(&srv), &cfg).await.expect("run");
    assert_eq!(report.main.ok_count(), 0);
    // Unknown device ids: the challenge is refused, counted by code.
    assert_eq!(report.main.error_count(), 4);
    assert!(
        report
            .main
            .errors
            .keys()
            .all(|k| k.starts_with("challenge 4")),
        "{:?}",
        report.main.errors
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_mode_counts_full_hash_answers() {
    let srv = seeded_server().await;
    let mut cfg = config(Mode::Password, 4);
    // Both raw rates, briefly: the report carries them and the ratio.
    cfg.calibrate = Duration::from_millis(50);
    let report = loadgen::run(&target(&srv), &cfg).await.expect("run");
    assert_eq!(report.main.errors, Default::default());
    assert_eq!(report.main.ok_count(), 4);
    assert!(report.ring_verify_per_s.expect("ring rate") > 0.0);
    assert!(report.argon2_per_s.expect("argon2 rate") > 0.0);
    assert!(report.ratio().is_some());
    assert!(report.text().contains("password / argon2id-all-cores"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_mode_rotates_single_flight_without_reuse() {
    let srv = seeded_server().await;
    let report = loadgen::run(&target(&srv), &config(Mode::Refresh, 24))
        .await
        .expect("run");
    assert_eq!(report.main.errors, Default::default());
    assert_eq!(report.main.ok_count(), 24);
    // One session per worker, none revoked: no token was presented twice.
    assert_eq!(srv.sql_i64("SELECT COUNT(*) FROM sessions").await, 3);
    assert_eq!(
        srv.sql_i64("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        0
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_mode_reports_both_streams() {
    let srv = seeded_server().await;
    let mut cfg = config(Mode::Mixed, 20);
    cfg.password_tasks = 2;
    let report = loadgen::run(&target(&srv), &cfg).await.expect("run");
    assert_eq!(report.main.errors, Default::default());
    assert_eq!(report.main.ok_count(), 20);
    let passwords = report.passwords.as_ref().expect("password stream");
    assert_eq!(passwords.errors, Default::default());
    assert!(passwords.ok_count() >= 1);
    assert!(report.text().contains("device p99 beside passwords"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shapes_are_refused_before_any_load() {
    let srv = seeded_server().await;
    let t = target(&srv);
    let mut cfg = config(Mode::Mixed, 5);
    assert!(
        loadgen::run(&t, &cfg).await.is_err(),
        "mixed without passwords"
    );
    cfg.mode = Mode::Device;
    cfg.password_tasks = 2;
    assert!(
        loadgen::run(&t, &cfg).await.is_err(),
        "passwords outside mixed"
    );
    assert!(matches!(
        Target::new(vec!["http://192.0.2.1:8080".into()]),
        Err(loadgen::LoadgenError::NotLoopback(_))
    ));
    // Nothing listens on the stopped server's port: a clear error, not a run.
    let base = srv.base.clone();
    srv.stop().await;
    let gone = Target::new(vec![base]).expect("target");
    assert!(loadgen::run(&gone, &config(Mode::Device, 1)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_sqlite_file_is_a_migrated_database_with_the_population() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("seeded.db");
    let p = population("file");
    loadgen::seed_sqlite(&db, dir.path(), &p, 1_700_000_000)
        .await
        .expect("seed");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&db).expect("file").permissions().mode() & 0o777,
        0o600
    );
    // The copy keeps the schema version: were it lost, opening would run
    // the first migration again and fail on its existing tables.
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(db.to_str().expect("utf-8"))
            .await
            .expect("open"),
    );
    assert!(!store.migrations_pending().await.expect("version"));
    for n in 0..p.total() {
        let d = p.device(n).expect("device");
        let stored = store
            .device(&d.device_id)
            .await
            .expect("read")
            .expect("seeded device");
        assert_eq!(stored.user_id, d.user_id);
        assert_eq!(stored.public_key, d.public_point());
    }
    assert_eq!(store.devices("lg4").await.expect("devices").len(), 2);
    // Never over an existing file.
    assert!(loadgen::seed_sqlite(&db, dir.path(), &p, 1_700_000_000)
        .await
        .is_err());
}
