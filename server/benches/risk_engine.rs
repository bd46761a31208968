//! What the habits engine adds to a steady device sign-in (a known device
//! on a known network): judging (one read of the user's document from
//! SQLite, its JSON, the rules) and planning what it learns (nothing, for a
//! steady sign-in). Set beside a whole device sign-in's time in
//! docs/PERFORMANCE.md. `cargo bench -p devicetrust-server --bench risk_engine`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use devicetrust_server::risk::{
    Flow, HabitsConfig, HabitsPolicy, RiskContext, RiskPolicy, SignedIn,
};
use devicetrust_server::storage::{sqlite::SqliteStore, Store};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bench.db");
    let store: Arc<dyn Store> = Arc::new(
        rt.block_on(SqliteStore::open(path.to_str().expect("path")))
            .expect("store"),
    );
    let policy = HabitsPolicy::new(store, HabitsConfig::default());
    let ip = "10.1.2.3".parse().expect("ip");
    let amr = vec!["hwk".to_owned(), "bio".to_owned()];
    // Half past an hour, so the last sign-in below falls in the same hour.
    let now = 1_800_001_800;
    // A seasoned holder: 21 sign-ins from home on the phone, hours apart,
    // the last a minute ago.
    for i in 0..=20 {
        let e = SignedIn {
            user_id: "jane",
            device_id: Some("phone"),
            ip,
            amr: &amr,
            now: now - (20 - i) * 3_600 - 60,
            teaches_network: true,
        };
        rt.block_on(policy.signed_in(&e)).expect("learn");
    }
    let ctx = RiskContext {
        flow: Flow::Device,
        user_id: "jane",
        device_id: Some("phone"),
        ip,
        user_agent: None,
        now,
        second_factor_market: true,
    };
    let event = SignedIn {
        user_id: "jane",
        device_id: Some("phone"),
        ip,
        amr: &amr,
        now,
        teaches_network: true,
    };
    c.bench_function("habits_steady_device_sign_in", |b| {
        b.iter(|| {
            rt.block_on(async {
                let judged = policy.assess(&ctx).await.expect("assess");
                assert!(!judged.step_up());
                let plan = policy.sign_in_write(&event, &judged).await.expect("plan");
                assert!(plan.is_none(), "a steady sign-in writes nothing");
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
