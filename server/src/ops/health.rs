//! Readiness and the metrics endpoint on the API listener.
//!
//! `/healthz` (liveness) says the process answers; `/readyz` says whether
//! this instance should get traffic now: a load balancer takes it out of
//! rotation while its database cannot be reached or its schema still lacks
//! a migration, and back in once both are fixed, without a restart.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::Admin;

/// Whether the instance is ready, and if not, why.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Why not: `database_unreachable` or `migrations_pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready: the database answers and its schema is current", body = Readiness),
        (status = 503, description = "Not ready: the database is unreachable or a migration is pending", body = Readiness),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let not_ready = |reason| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not_ready",
                reason: Some(reason),
            }),
        )
            .into_response()
    };
    match app.readiness.check(&app).await {
        None => Json(Readiness {
            status: "ready",
            reason: None,
        })
        .into_response(),
        Some(reason) => not_ready(reason),
    }
}

/// How long one readiness answer is reused. `/readyz` is unauthenticated:
/// without this, every probe (anyone's) was two database round trips.
const READINESS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The last readiness answer (`None`: ready, else the reason) and when it
/// was found. One probe at a time asks the database; those that arrive
/// meanwhile wait for and share its answer.
#[derive(Debug, Default)]
pub struct ReadinessCache(tokio::sync::Mutex<Option<(std::time::Instant, Option<&'static str>)>>);

impl ReadinessCache {
    async fn check(&self, app: &AppState) -> Option<&'static str> {
        let mut last = self.0.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < READINESS_TTL {
                return answer;
            }
        }
        let answer = probe(app).await;
        *last = Some((std::time::Instant::now(), answer));
        answer
    }
}

async fn probe(app: &AppState) -> Option<&'static str> {
    // A database that hangs must not hang the probe: probes have timeouts
    // of their own, and an answer is more useful than none.
    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        app.store().ping().await?;
        app.store().migrations_pending().await
    })
    .await;
    match probe {
        Ok(Ok(false)) => None,
        Ok(Ok(true)) => Some("migrations_pending"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Some("database_unreachable")
        }
        Err(_) => {
            tracing::warn!("readiness: the database did not answer within 5 s");
            Some("database_unreachable")
        }
    }
}

/// `GET /metrics` on the API listener: only with the admin token (metrics
/// tell traffic patterns), and only when no `--metrics-listen` is given.
pub async fn metrics_with_token(_: Admin, State(app): State<AppState>) -> Response {
    metrics_text(&app)
}

/// `GET /metrics` on the metrics listener, which is the operator's to keep
/// private (a loopback or management address).
pub async fn metrics_open(State(app): State<AppState>) -> Response {
    metrics_text(&app)
}

fn metrics_text(app: &AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(app.hasher().queued()),
    )
        .into_response()
}

/// The metrics listener's router: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_open))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}
