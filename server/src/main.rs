use std::io::Write;

use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("DEVICETRUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| LossyStderr)
        .init();
    let cli = match devicetrust_server::ops::config::parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "devicetrust-server: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = devicetrust_server::cli::run(cli).await {
        let _ = writeln!(std::io::stderr(), "devicetrust-server: {e}");
        std::process::exit(e.exit_code());
    }
}
