//! Operations (docs/OPERATIONS.md): metrics, readiness, the configuration
//! file, the server's own TLS.

pub mod config;
pub mod health;
pub mod metered_store;
pub mod metrics;
pub mod tls;
pub mod trace;

use std::sync::Arc;

/// The version `--version` and the start-up line show: the crate's, and
/// the commit it was built from (build.rs; `unknown` outside a checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DEVICETRUST_COMMIT"),
    ")"
);

/// Reloads the TLS certificate and key on every SIGHUP. A reload that
/// fails is logged and the certificate in service stays; the process and
/// its connections are untouched either way.
pub fn reload_on_sighup(certs: Arc<tls::ReloadingCert>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match certs.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: TLS certificate not reloaded; the previous one stays in service"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = certs;
    Ok(())
}

/// Serves `/metrics` on its own listener until the process ends. Plain
/// HTTP through hyper's auto builder: a scrape is one small request.
pub fn serve_metrics(state: crate::app::AppState, listener: tokio::net::TcpListener) {
    let router = health::metrics_router(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
}
