//! The device sign-in end to end (issue 14's hot path): challenge, proof
//! signed with ring, session, over loopback HTTP against an in-process
//! server on SQLite with `synchronous = FULL`, the habits risk policy on.
//! Each iteration is one sign-in of a stream kept 16 in flight, so the time
//! per iteration is the inverse of the rate (client and server sharing the
//! machine's cores, as in `loadgen --mode device`).
//!
//! ```sh
//! cargo bench -p devicetrust-e2e --bench device_sign_in
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use devicetrust_e2e::loadgen::{self, Mode, Population, RunConfig, Target};
use devicetrust_e2e::{Options, Risk, TestServer, RP_ID};
use devicetrust_server::risk::HabitsConfig;

const IN_FLIGHT: u64 = 16;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let population = Population {
        users: 256,
        devices_per_user: 1,
        seed: "bench".into(),
    };
    let (server, target) = rt.block_on(async {
        let server = TestServer::start_with(Options {
            risk: Risk::Habits(HabitsConfig::default()),
            ..Options::default()
        })
        .await;
        loadgen::seed(server.store.clone(), &population, server.now(), 4, false)
            .await
            .expect("seed");
        let target = Target::new(vec![server.base.clone()]).expect("target");
        (server, target)
    });
    let mut group = c.benchmark_group("device_sign_in");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("http_sqlite_16_in_flight", |b| {
        b.iter_custom(|iters| {
            let cfg = RunConfig {
                mode: Mode::Device,
                requests: iters.max(IN_FLIGHT),
                concurrency: IN_FLIGHT,
                password_tasks: 0,
                max_time: Duration::from_secs(600),
                calibrate: Duration::ZERO,
                rp_id: RP_ID.to_owned(),
                population: population.clone(),
                server_pid: None,
            };
            let report = rt.block_on(loadgen::run(&target, &cfg)).expect("run");
            // A refused sign-in would make the figure meaningless; the risk
            // policy may step up a burst (velocity), which is a decision.
            let refused: u64 = report
                .main
                .errors
                .iter()
                .filter(|(k, _)| !k.contains("step_up_required"))
                .map(|(_, n)| n)
                .sum();
            assert_eq!(refused, 0, "errors: {:?}", report.main.errors);
            report.main.elapsed * iters as u32 / iters.max(IN_FLIGHT) as u32
        })
    });
    group.finish();
    rt.block_on(server.stop());
}

criterion_group!(benches, bench);
criterion_main!(benches);
