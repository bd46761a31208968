//! Load generator (docs/PERFORMANCE.md, "The load generator"): device
//! sign-ins, password steps, refresh rotations or a mix, against a server it
//! starts in-process on 127.0.0.1 (SQLite, or PostgreSQL with
//! `DEVICETRUST_TEST_DATABASE`, `--instances N`), or against a separately
//! started server on loopback (`--url`) whose database `loadgen seed`
//! filled. Bounded in count and time; loopback only.
//!
//! ```sh
//! cargo run --release -p devicetrust-e2e --bin loadgen -- --mode device --requests 4000 --concurrency 16
//! loadgen seed --db sqlite:///tmp/lg.db --users 100000 --devices-per-user 2
//! loadgen --url http://127.0.0.1:8080 --users 100000 --devices-per-user 2 --requests 20000
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use devicetrust_e2e::loadgen::{self, LoadgenError, Mode, Population, Report, RunConfig, Target};
use devicetrust_e2e::{fresh_database, Options, Risk, TestServer, RP_ID};
use devicetrust_server::clock::ManualClock;
use devicetrust_server::risk::{AllowAll, HabitsConfig};
use devicetrust_server::secrets::HasherConfig;
use devicetrust_server::server_key::ServerKey;
use devicetrust_server::storage;

#[derive(Debug, Parser)]
#[command(
    about = "Load on a devicetrust server over loopback: device sign-ins, password steps, refreshes, or a mix",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill an empty database (the server stopped) with users and trusted
    /// devices whose keys a run derives from the same --seed.
    Seed(SeedArgs),
}

#[derive(Debug, Args)]
struct PopulationArgs {
    /// Users (lg0, lg1, …) of the seeded population.
    #[arg(long, alias = "devices", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    users: u64,
    /// Trusted devices of each user.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    devices_per_user: u64,
    /// Seed the device ids and keys are derived from (a benchmark's, not a
    /// secret: never seed a database real users use).
    #[arg(long, default_value = "loadgen")]
    seed: String,
}

impl PopulationArgs {
    fn population(&self) -> Population {
        Population {
            users: self.users,
            devices_per_user: self.devices_per_user,
            seed: self.seed.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// The database: sqlite://PATH (must not exist yet) or postgres://… (an
    /// empty one).
    #[arg(long)]
    db: String,
    #[command(flatten)]
    population: PopulationArgs,
    /// Where a SQLite database is built before it is copied to PATH: every
    /// write is fsynced (synchronous = FULL), so on a disk 500,000 of them
    /// would take most of an hour; on tmpfs they take seconds.
    #[arg(long, default_value = "/dev/shm")]
    work_dir: std::path::PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// What to load the server with.
    #[arg(long, value_enum, default_value_t = Mode::Device)]
    mode: Mode,
    /// Operations of the measured stream (device sign-ins, password
    /// attempts or refreshes).
    #[arg(long, alias = "sign-ins", default_value_t = 4000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    requests: u64,
    /// Workers of the measured stream (operations in flight at once).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Mixed mode: tasks sending password steps (unknown users) beside the
    /// device sign-ins.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1024))]
    password_tasks: u64,
    /// Stop after this many seconds even if not done.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    max_seconds: u64,
    /// Milliseconds each raw rate (ring verify on one core, argon2id on all
    /// cores) is measured after the load; 0 skips them.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    calibrate_ms: u64,
    /// Print the result as a markdown table row too (docs/PERFORMANCE.md).
    #[arg(long)]
    markdown: bool,
    #[command(flatten)]
    population: PopulationArgs,
    /// A server already running on loopback (http://127.0.0.1:PORT), its
    /// database filled by `loadgen seed` with the same population flags;
    /// start it with --ip-rate-limit 0. Without it a server is started
    /// in-process.
    #[arg(long)]
    url: Option<String>,
    /// The server's --rp-id (external server; default: --url).
    #[arg(long, requires = "url")]
    rp_id: Option<String>,
    /// The external server's process id: its VmRSS/VmHWM are reported idle
    /// and under load.
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
    /// In-process: the server's risk policy, `habits` (its default) or `off`.
    #[arg(long, default_value = "habits", value_parser = ["habits", "off"])]
    risk: String,
    /// In-process: server instances on one PostgreSQL database (needs
    /// DEVICETRUST_TEST_DATABASE); requests are spread over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=8))]
    instances: u64,
    /// In-process: password hashes computed at once (the server's default:
    /// half the cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    hash_concurrency: Option<u64>,
    /// In-process: export traces (docs/OPERATIONS.md, "Traces") to an OTLP
    /// sink this process starts on loopback, which reads and discards each
    /// batch: what export costs the server, against a collector that keeps up.
    #[arg(long)]
    trace_sink: bool,
}

/// A loopback OTLP/HTTP endpoint that reads every batch and drops it;
/// returns its URL and the bytes it received.
async fn trace_sink() -> Result<(String, Arc<AtomicUsize>), LoadgenError> {
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
        .map_err(|e| LoadgenError::Setup(format!("trace sink: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| LoadgenError::Setup(format!("trace sink: {e}")))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}"), bytes))
}

/// Where the load goes, decided from the flags before anything starts.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    External { base: String, rp_id: String },
    InProcess,
}

fn plan(args: &RunArgs) -> Result<Plan, LoadgenError> {
    match &args.url {
        Some(url) => {
            let base = loadgen::loopback_base(url)?;
            if args.instances != 1
                || args.hash_concurrency.is_some()
                || args.risk != "habits"
                || args.trace_sink
            {
                return Err(LoadgenError::Usage(
                    "--instances, --hash-concurrency, --risk and --trace-sink set up the \
                     in-process server; give them to the external server instead"
                        .into(),
                ));
            }
            let rp_id = args.rp_id.clone().unwrap_or_else(|| base.clone());
            Ok(Plan::External { base, rp_id })
        }
        None => Ok(Plan::InProcess),
    }
}

fn run_config(args: &RunArgs, rp_id: String, server_pid: Option<u32>) -> RunConfig {
    RunConfig {
        mode: args.mode,
        requests: args.requests,
        concurrency: args.concurrency,
        password_tasks: args.password_tasks,
        max_time: Duration::from_secs(args.max_seconds),
        calibrate: Duration::from_millis(args.calibrate_ms),
        rp_id,
        population: args.population.population(),
        server_pid,
    }
}

async fn in_process(args: &RunArgs) -> Result<Report, LoadgenError> {
    // Before any server starts: its routers add the trace layer only when
    // export is on.
    let tracing = if args.trace_sink {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let (url, bytes) = trace_sink().await?;
        let url =
            devicetrust_server::ops::trace::parse_endpoint(&url).map_err(LoadgenError::Setup)?;
        let (layer, exporter) = devicetrust_server::ops::trace::layer(&url)
            .map_err(|e| LoadgenError::Setup(format!("trace exporter: {e}")))?;
        tracing_subscriber::registry().with(layer).init();
        eprintln!("trace export: on, to a loopback sink");
        Some((exporter, bytes))
    } else {
        None
    };
    let shared = if args.instances > 1 {
        let url = fresh_database().await.ok_or_else(|| {
            LoadgenError::Usage("--instances needs DEVICETRUST_TEST_DATABASE=postgres://…".into())
        })?;
        let key = ServerKey::generate().map_err(|e| LoadgenError::Setup(e.to_string()))?;
        Some((url, key, ManualClock::new()))
    } else {
        None
    };
    let mut hasher = HasherConfig::default();
    if let Some(n) = args.hash_concurrency {
        hasher.concurrency = n as usize;
    }
    let mut servers = Vec::new();
    for _ in 0..args.instances {
        let risk = match args.risk.as_str() {
            "off" => Risk::Policy(Arc::new(AllowAll)),
            _ => Risk::Habits(HabitsConfig::default()),
        };
        let mut opts = Options {
            risk,
            hasher,
            ..Options::default()
        };
        if let Some((url, key, clock)) = &shared {
            opts.database = Some(url.clone());
            opts.server_key = Some(key.clone());
            opts.clock = Some(clock.clone());
        }
        servers.push(TestServer::start_with(opts).await);
    }
    let backend = match devicetrust_e2e::test_database() {
        Some(_) => "PostgreSQL",
        None => "SQLite synchronous=FULL",
    };
    eprintln!(
        "in-process server(s): {} × {backend}, risk {}",
        args.instances, args.risk
    );
    let population = args.population.population();
    if args.mode != Mode::Password {
        eprintln!(
            "seeding {} users × {} devices…",
            population.users, population.devices_per_user
        );
        loadgen::seed(
            servers[0].store.clone(),
            &population,
            servers[0].now(),
            4,
            false,
        )
        .await?;
    }
    let target = Target::new(servers.iter().map(|s| s.base.clone()).collect())?;
    let report = loadgen::run(&target, &run_config(args, RP_ID.to_owned(), None)).await;
    for s in servers {
        s.stop().await;
    }
    if let Some((exporter, bytes)) = tracing {
        exporter.shutdown().await;
        eprintln!(
            "trace export: {} bytes of OTLP received by the sink",
            bytes.load(Ordering::Relaxed)
        );
    }
    report
}

async fn external(args: &RunArgs, base: String, rp_id: String) -> Result<Report, LoadgenError> {
    let target = Target::new(vec![base])?;
    loadgen::run(&target, &run_config(args, rp_id, args.server_pid)).await
}

async fn seed_command(args: &SeedArgs) -> Result<(), LoadgenError> {
    let population = args.population.population();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| LoadgenError::Setup(e.to_string()))?
        .as_secs() as i64;
    let started = std::time::Instant::now();
    eprintln!(
        "seeding {} users × {} devices (seed {:?})…",
        population.users, population.devices_per_user, population.seed
    );
    if let Some(path) = args.db.strip_prefix("sqlite://") {
        let target = std::path::Path::new(path);
        if target.exists() {
            return Err(LoadgenError::Usage(format!(
                "{path} exists: seed a database that does not exist yet"
            )));
        }
        loadgen::seed_sqlite(target, &args.work_dir, &population, now).await?;
    } else {
        let store = storage::open(&args.db).await?;
        loadgen::seed(store, &population, now, 8, true).await?;
    }
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "run: loadgen --url http://127.0.0.1:PORT --users {} --devices-per-user {} --seed {:?}",
        population.users, population.devices_per_user, population.seed
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    devicetrust_e2e::install_crypto_provider();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Some(Command::Seed(args)) => seed_command(args).await.map(|()| None),
        None => match plan(&cli.run) {
            Ok(Plan::InProcess) => in_process(&cli.run).await.map(Some),
            Ok(Plan::External { base, rp_id }) => external(&cli.run, base, rp_id).await.map(Some),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(None) => {}
        Ok(Some(report)) => {
            print!("{}", report.text());
            if cli.run.markdown {
                println!("{}", Report::markdown_header());
                println!("{}", report.markdown_row());
            }
            // The measured stream must work: a run with errors fails (CI's
            // short run keeps the generator and the flows it drives honest).
            if report.main.error_count() > 0 || report.main.ok_count() == 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut argv = vec!["loadgen"];
        argv.extend_from_slice(list);
        Cli::try_parse_from(argv).map(|c| c.run)
    }

    #[test]
    fn a_url_off_loopback_is_refused() {
        for url in [
            "http://10.0.0.5:8080",
            "http://example.com:8080",
            "http://0.0.0.0:8080",
            "http://[2001:db8::1]:8080",
            "http://128.0.0.1:80",
        ] {
            let a = args(&["--url", url]).expect("parses");
            match plan(&a) {
                Err(LoadgenError::NotLoopback(u)) => assert_eq!(u, url),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn loopback_urls_are_accepted_and_normalised() {
        for (url, base) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("http://127.9.0.1:9", "http://127.9.0.1:9"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://localhost:8080", "http://127.0.0.1:8080"),
        ] {
            let a = args(&["--url", url]).expect("parses");
            assert_eq!(
                plan(&a).expect("loopback"),
                Plan::External {
                    base: base.into(),
                    rp_id: base.into()
                }
            );
        }
    }

    #[test]
    fn other_schemes_paths_and_garbage_are_refused() {
        for url in [
            "https://127.0.0.1:8443",
            "http://127.0.0.1:8080/v1",
            "http://user@127.0.0.1:8080",
            "127.0.0.1:8080",
            "",
        ] {
            let a = args(&["--url", url]).expect("parses");
            assert!(
                matches!(plan(&a), Err(LoadgenError::Usage(_))),
                "{url}: {:?}",
                plan(&a)
            );
        }
    }

    #[test]
    fn in_process_flags_are_refused_with_an_external_server() {
        let a = args(&["--url", "http://127.0.0.1:8080", "--instances", "2"]).expect("parses");
        assert!(matches!(plan(&a), Err(LoadgenError::Usage(_))));
        let a = args(&["--url", "http://127.0.0.1:8080", "--risk", "off"]).expect("parses");
        assert!(matches!(plan(&a), Err(LoadgenError::Usage(_))));
    }

    #[test]
    fn bounds_are_enforced() {
        for bad in [
            &["--requests", "0"][..],
            &["--requests", "10000001"],
            &["--concurrency", "0"],
            &["--concurrency", "1025"],
            &["--max-seconds", "0"],
            &["--max-seconds", "3601"],
            &["--users", "0"],
            &["--devices-per-user", "101"],
            &["--password-tasks", "1025"],
            &["--mode", "flood"],
            &["--server-pid", "1"],
            &["--rp-id", "x"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
        // The CI command of earlier versions still parses.
        let a = args(&[
            "--sign-ins",
            "200",
            "--concurrency",
            "4",
            "--devices",
            "2",
            "--max-seconds",
            "60",
        ])
        .expect("parses");
        assert_eq!((a.requests, a.population.users), (200, 2));
    }

    #[test]
    fn seed_takes_no_run_flags() {
        assert!(Cli::try_parse_from(["loadgen", "--requests", "5", "seed", "--db", "x"]).is_err());
        let c =
            Cli::try_parse_from(["loadgen", "seed", "--db", "sqlite:///tmp/x.db"]).expect("parses");
        assert!(matches!(c.command, Some(Command::Seed(_))));
    }
}
