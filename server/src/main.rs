use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("DEVICETRUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = devicetrust_server::cli::Cli::parse();
    if let Err(e) = devicetrust_server::cli::run(cli).await {
        eprintln!("devicetrust-server: {e}");
        std::process::exit(e.exit_code());
    }
}
