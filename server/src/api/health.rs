//! Operations: health and the OpenAPI description.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};

use crate::api::types::Health;
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};

#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 500, description = "internal: the database does not answer", body = ErrorBody),
    )
)]
pub async fn healthz(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    app.store().ping().await?;
    Ok(Json(Health { status: "ok" }))
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn openapi(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
}

/// The OpenAPI document, rendered once at start-up.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<str>);
