//! The metric work one device sign-in does (docs/PERFORMANCE.md, "Metrics
//! overhead"), on the real `ops::metrics` types: two requests (challenge,
//! proof), each timed and counted under its route template by
//! `metrics::track`; the six storage calls `MeteredStore` times (device
//! twice, create_challenge, challenge, redeem_challenge, audit); the audit
//! line's counters (security event, sign-in by method). Counted by diffing
//! `/metrics` around one sign-in in the end-to-end harness.
//!
//! `cargo bench -p devicetrust-server --bench metrics_overhead`

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::http::Method;
use criterion::{criterion_group, criterion_main, Criterion};
use devicetrust_server::ops::metrics::Metrics;

/// What `track` does around one request: a clock read, the template
/// copied, the histogram and the counter.
fn request(m: &Metrics, route: &str) {
    let start = Instant::now();
    let route = route.to_owned();
    m.observe_request(&Method::POST, route, 200, start.elapsed().as_secs_f64());
}

/// What `MeteredStore` does around one call.
fn storage(m: &Metrics, op: &'static str) {
    let start = Instant::now();
    m.observe_storage(op, "ok", start.elapsed());
}

fn one_device_sign_in(m: &Metrics) {
    // Challenge: the device is read, a challenge stored.
    storage(m, "device");
    storage(m, "create_challenge");
    request(m, "/v1/login/device/challenge");
    // Proof: the challenge and device read, the challenge redeemed (the
    // session issued in the same transaction), the audit line written.
    storage(m, "challenge");
    storage(m, "device");
    storage(m, "redeem_challenge");
    storage(m, "audit");
    m.observe_event("signin_ok", Some("hwk bio"));
    request(m, "/v1/login/device");
}

fn bench(c: &mut Criterion) {
    let m = Metrics::new();
    // Series exist after the first sign-in; the steady state is measured.
    one_device_sign_in(&m);
    c.bench_function(
        "metrics: one device sign-in (2 requests, 6 storage calls, audit)",
        |b| b.iter(|| one_device_sign_in(black_box(&m))),
    );
    c.bench_function("metrics: one storage-call observation", |b| {
        b.iter(|| m.observe_storage(black_box("device"), "ok", Duration::from_micros(80)))
    });
    c.bench_function("metrics: one request observation", |b| {
        b.iter(|| {
            m.observe_request(
                &Method::POST,
                black_box("/v1/login/device").to_owned(),
                200,
                0.002,
            )
        })
    });
    c.bench_function("trace export off: the per-request check", |b| {
        b.iter(|| black_box(devicetrust_server::ops::trace::enabled()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
