//! `GET /v1/password-policy`: the rules a new password must meet, for the
//! app to show while the user types (see `crate::password_policy`).

use axum::extract::State;
use axum::Json;

use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ClientIp;
use crate::password_policy::PolicyDescription;

#[utoipa::path(
    get, path = "/v1/password-policy", tag = "account",
    responses(
        (status = 200, description = "The password policy in force: limits in Unicode code points after NFKC, classes among lower-case, upper-case, digit and other", body = PolicyDescription),
        (status = 429, description = "rate_limited: the per-IP limit", body = ErrorBody),
        (status = 500, description = "internal", body = ErrorBody),
    )
)]
pub async fn policy(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
) -> Result<Json<PolicyDescription>, ApiError> {
    app.rate.check(ip)?;
    Ok(Json(app.settings().password_policy.describe()))
}
