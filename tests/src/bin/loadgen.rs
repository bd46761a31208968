//! Load generator: device (biometric) sign-ins per second against a server
//! it starts on 127.0.0.1 with a fresh database: SQLite, or a schema of
//! `DEVICETRUST_TEST_DATABASE=postgres://…` (then `--instances N` starts N
//! servers on it, and each sign-in's proof goes to another instance than
//! its challenge). Bounded in count and time; loopback only.
//!
//! `cargo run --release -p devicetrust-e2e --bin loadgen -- --sign-ins 4000 --concurrency 16`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use devicetrust_e2e::{fresh_database, DeviceKey, Options, Risk, TestServer, RP_ID};
use devicetrust_server::clock::ManualClock;
use devicetrust_server::proof::verify_es256;
use devicetrust_server::risk::{AllowAll, HabitsConfig};
use devicetrust_server::server_key::ServerKey;
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Measure device sign-ins per second (challenge + signed proof) on loopback")]
struct Args {
    /// Device sign-ins to perform in total.
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    sign_ins: u64,
    /// Sign-ins in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=512))]
    concurrency: u64,
    /// Distinct users, each with one trusted device.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    devices: u64,
    /// Tasks that hammer password sign-in (wrong passwords, fresh user ids,
    /// so each costs a full argon2id) while the device sign-ins run.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=256))]
    password_flood: u64,
    /// Stop after this many seconds even if not done.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// The server's risk policy: `habits` (its default) or `off`, to
    /// measure what the engine costs.
    #[arg(long, default_value = "habits", value_parser = ["habits", "off"])]
    risk: String,
    /// Server instances on one PostgreSQL database (needs
    /// DEVICETRUST_TEST_DATABASE); requests are spread over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=8))]
    instances: u64,
    /// Export traces (docs/OPERATIONS.md, "Traces") to an OTLP sink this
    /// process starts on loopback, which reads and discards each batch: what
    /// export costs the server, against a collector that keeps up.
    #[arg(long)]
    trace_sink: bool,
}

/// A loopback OTLP/HTTP endpoint that reads every batch and drops it;
/// returns its URL and the bytes it received.
async fn trace_sink() -> (String, Arc<AtomicUsize>) {
    let bytes = Arc::new(AtomicUsize::new(0));
    let seen = bytes.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(body.len(), Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the trace sink");
    let url = format!("http://{}", listener.local_addr().expect("sink address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bytes)
}

fn ring_verify_rate() -> f64 {
    let key = DeviceKey::generate();
    let jws = key.login_proof(RP_ID, "kid", "sub", "nonce");
    let (input, sig) = jws.rsplit_once('.').expect("jws");
    let sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
        .expect("sig");
    let jwk = key.jwk();
    let b = |v: &serde_json::Value| {
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.as_str().expect("str"),
        )
        .expect("b64")
    };
    let mut point = vec![4u8];
    point.extend(b(&jwk["x"]));
    point.extend(b(&jwk["y"]));
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        assert!(verify_es256(&point, input.as_bytes(), &sig));
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tracing = if args.trace_sink {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let (url, bytes) = trace_sink().await;
        let url = devicetrust_server::ops::trace::parse_endpoint(&url).expect("sink URL");
        let (layer, exporter) = devicetrust_server::ops::trace::layer(&url).expect("exporter");
        tracing_subscriber::registry().with(layer).init();
        eprintln!("trace export: on, to a loopback sink");
        Some((exporter, bytes))
    } else {
        None
    };
    let backend = match devicetrust_e2e::test_database() {
        Some(_) => "PostgreSQL",
        None => "SQLite synchronous=FULL",
    };
    let shared = if args.instances > 1 {
        let Some(url) = fresh_database().await else {
            eprintln!("loadgen: --instances needs DEVICETRUST_TEST_DATABASE=postgres://…");
            std::process::exit(2);
        };
        Some((
            url,
            ServerKey::generate().expect("server key"),
            ManualClock::new(),
        ))
    } else {
        None
    };
    let mut servers = Vec::new();
    for _ in 0..args.instances {
        let risk = match args.risk.as_str() {
            "off" => Risk::Policy(Arc::new(AllowAll)),
            _ => Risk::Habits(HabitsConfig::default()),
        };
        let opts = match &shared {
            Some((url, key, clock)) => Options {
                database: Some(url.clone()),
                server_key: Some(key.clone()),
                clock: Some(clock.clone()),
                risk,
                ..Options::default()
            },
            None => Options {
                risk,
                ..Options::default()
            },
        };
        servers.push(Arc::new(TestServer::start_with(opts).await));
    }
    eprintln!("risk policy: {}", args.risk);
    let servers = Arc::new(servers);
    let srv = servers[0].clone();
    eprintln!("provisioning {} users with a trusted device…", args.devices);
    let mut devices = Vec::new();
    for i in 0..args.devices {
        let user = format!("load{i}");
        let (_, device_id, key) = srv.user_with_device(&user).await;
        devices.push(Arc::new((user, device_id, key)));
    }
    let devices = Arc::new(devices);

    eprintln!(
        "running {} device sign-ins, {} at a time…",
        args.sign_ins, args.concurrency
    );
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let started = Instant::now();
    let stop_flood = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood_done = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..args.password_flood)
        .map(|w| {
            let srv = servers[w as usize % servers.len()].clone();
            let (stop, done) = (stop_flood.clone(), flood_done.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let a = srv
                        .password(&format!("flood{w}x{n}"), "wrong password", None)
                        .await;
                    if a.status == 401 || a.status == 429 {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (servers, devices, next, failures) = (
                servers.clone(),
                devices.clone(),
                next.clone(),
                failures.clone(),
            );
            let total = args.sign_ins as usize;
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() > deadline {
                        break;
                    }
                    let d = &devices[i % devices.len()];
                    // The challenge from one instance, the proof to the next.
                    let (srv, other) = (
                        &servers[i % servers.len()],
                        &servers[(i + 1) % servers.len()],
                    );
                    let t = Instant::now();
                    let c = srv.challenge(&d.1).await;
                    let proof = d.2.login_proof(
                        RP_ID,
                        &d.1,
                        &d.0,
                        c.body["challenge"].as_str().unwrap_or(""),
                    );
                    let a = other
                        .post(
                            "/v1/login/device",
                            json!({"challenge_id": c.body["challenge_id"], "proof": proof}),
                            None,
                        )
                        .await;
                    if a.status == 200 {
                        hist.record(t.elapsed().as_micros() as u64).expect("record");
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for w in workers {
        hist.add(w.await.expect("worker")).expect("merge");
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop_flood.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.expect("flood task");
    }
    let ok = hist.len();
    let verify_rate = ring_verify_rate();
    println!(
        "device sign-ins (challenge + proof, 2 HTTP requests each), loopback, {backend}, {} instance(s)",
        args.instances
    );
    println!(
        "  completed     {ok} in {elapsed:.2} s, failures {}",
        failures.load(Ordering::Relaxed)
    );
    println!("  throughput    {:.0} sign-ins/s", ok as f64 / elapsed);
    println!(
        "  latency p50   {:.2} ms",
        hist.value_at_quantile(0.50) as f64 / 1000.0
    );
    println!(
        "  latency p99   {:.2} ms",
        hist.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!("  latency max   {:.2} ms", hist.max() as f64 / 1000.0);
    if args.password_flood > 0 {
        println!(
            "  meanwhile     {} password attempts answered by {} flooding tasks ({:.0}/s)",
            flood_done.load(Ordering::Relaxed),
            args.password_flood,
            flood_done.load(Ordering::Relaxed) as f64 / elapsed
        );
    }
    println!("  ring ES256 verify, one core, same run: {verify_rate:.0} /s");
    if let Some((exporter, bytes)) = tracing {
        exporter.shutdown().await;
        println!(
            "  trace export  {} bytes of OTLP received by the sink",
            bytes.load(Ordering::Relaxed)
        );
    }
    drop(srv);
    if let Ok(servers) = Arc::try_unwrap(servers) {
        for srv in servers {
            if let Ok(srv) = Arc::try_unwrap(srv) {
                srv.stop().await;
            }
        }
    }
    if failures.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
