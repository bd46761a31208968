use std::io::Write;

use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// stderr that never fails: a closed log pipe must not take the server
/// down (tracing reports write errors with `eprintln!`, which panics).
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    // The settings first: `--otlp-endpoint` decides whether the subscriber
    // gets an exporting layer. Parsing logs nothing; its errors are printed.
    let cli = match devicetrust_server::ops::config::parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "devicetrust-server: {e}");
            std::process::exit(2);
        }
    };
    let (otel, exporter) = match cli.otlp_endpoint() {
        Some(endpoint) => match devicetrust_server::ops::trace::layer(endpoint) {
            Ok((layer, exporter)) => (Some(layer), Some(exporter)),
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "devicetrust-server: {e}");
                std::process::exit(2);
            }
        },
        None => (None, None),
    };
    let filter =
        EnvFilter::try_from_env("DEVICETRUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The exported spans are the trace's, not the log's: the log keeps its
    // own `request` span (method, path, request id).
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| LossyStderr)
        .with_filter(filter.and(tracing_subscriber::filter::filter_fn(|m| {
            m.target() != devicetrust_server::ops::trace::TARGET
        })));
    tracing_subscriber::registry().with(logs).with(otel).init();
    let result = devicetrust_server::cli::run(cli).await;
    // Graceful exit (or a failed start): send the spans still queued.
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    if let Err(e) = result {
        let _ = writeln!(std::io::stderr(), "devicetrust-server: {e}");
        std::process::exit(e.exit_code());
    }
}
