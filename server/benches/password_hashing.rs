//! The password step's CPU path: one argon2id with the server's own
//! parameters (`HasherConfig::default()`), raw, and through the server's
//! bounded hashing pool as an unknown user's attempt costs it (a verify
//! against the dummy hash).
//! `cargo bench -p devicetrust-server --bench password_hashing`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use devicetrust_server::secrets::{Hasher, HasherConfig, Secret};

fn bench(c: &mut Criterion) {
    let cfg = HasherConfig::default();
    let params = argon2::Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, Some(32))
        .expect("the server's parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut group = c.benchmark_group("password");
    // Tens of milliseconds a call: fewer, longer samples.
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("argon2id_raw_server_params", |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            argon
                .hash_password_into(b"Correct horse battery 9", &[5u8; 16], &mut out)
                .expect("hash")
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hasher = Hasher::new(cfg).expect("hasher");
    let wrong = Secret::new("not the password");
    group.bench_function("unknown_user_verify_through_pool", |b| {
        b.iter(|| {
            let ok = runtime
                .block_on(hasher.verify(None, &wrong))
                .expect("verify");
            assert!(!ok);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
