//! The one error type every endpoint answers with, rendered as the contract's
//! `{"error": {"code", "message", ...}}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::StorageError;

/// An error a client can branch on. `code()` is stable; `message` is for people.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the user ID or password is incorrect")]
    InvalidCredentials,
    #[error("too many failed attempts: try again later or call the number on your card")]
    AccountLocked { retry_after_s: i64 },
    #[error("this sign-in has expired or was already completed: start again")]
    LoginExpired,
    #[error("the code is incorrect")]
    OtpInvalid { attempts_left: i64 },
    #[error("the code has expired or has no tries left: send a new one")]
    OtpExpired,
    #[error("the challenge is unknown, expired or already used")]
    ChallengeInvalid,
    #[error("the proof is malformed, names the wrong claims, or its signature does not verify")]
    SignatureInvalid,
    #[error("we don't recognise this device: sign in with your password")]
    DeviceNotRecognized,
    #[error(
        "this device's trust has ended: sign in with your password and a one-time code to renew it"
    )]
    ReauthorisationRequired,
    #[error("additional verification is needed: enter the code we send you")]
    StepUpRequired {
        login_id: String,
        methods: Vec<crate::api::types::Method>,
        /// The risk signals behind it (stable codes such as `new_network`).
        reasons: Vec<String>,
    },
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the user already has the maximum number of trusted devices")]
    DeviceLimit,
    #[error("that user ID is taken")]
    UserExists,
    #[error("the request body exceeds 16 KiB")]
    PayloadTooLarge,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("too many requests: slow down")]
    RateLimited { retry_after_s: i64 },
    #[error("the message could not be delivered: try again shortly")]
    DeliveryFailed,
    #[error("the new password does not meet the password policy")]
    PasswordRejected { reasons: Vec<String> },
    #[error("the card number, card ID and name do not match a card")]
    CardNotRecognized,
    #[error("the card is not activated yet: activate it first")]
    CardNotActivated,
    #[error("the card already belongs to a user ID")]
    CardAlreadyEnrolled,
    #[error("that card number is known already")]
    CardExists,
    #[error("the attestation is missing, does not verify, or contradicts the registration")]
    AttestationInvalid,
    #[error("the service is briefly unavailable: try again in a moment")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::AccountLocked { .. } => "account_locked",
            ApiError::LoginExpired => "login_expired",
            ApiError::OtpInvalid { .. } => "otp_invalid",
            ApiError::OtpExpired => "otp_expired",
            ApiError::ChallengeInvalid => "challenge_invalid",
            ApiError::SignatureInvalid => "signature_invalid",
            ApiError::DeviceNotRecognized => "device_not_recognized",
            ApiError::ReauthorisationRequired => "reauthorisation_required",
            ApiError::StepUpRequired { .. } => "step_up_required",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::DeviceLimit => "device_limit",
            ApiError::UserExists => "user_exists",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::DeliveryFailed => "delivery_failed",
            ApiError::PasswordRejected { .. } => "password_rejected",
            ApiError::CardNotRecognized => "card_not_recognized",
            ApiError::CardNotActivated => "card_not_activated",
            ApiError::CardAlreadyEnrolled => "card_already_enrolled",
            ApiError::CardExists => "card_exists",
            ApiError::AttestationInvalid => "attestation_invalid",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::PasswordRejected { .. }
            | ApiError::AttestationInvalid => StatusCode::BAD_REQUEST,
            ApiError::CardNotRecognized => StatusCode::UNAUTHORIZED,
            ApiError::CardNotActivated => StatusCode::FORBIDDEN,
            ApiError::CardAlreadyEnrolled | ApiError::CardExists => StatusCode::CONFLICT,
            ApiError::InvalidCredentials
            | ApiError::LoginExpired
            | ApiError::OtpInvalid { .. }
            | ApiError::OtpExpired
            | ApiError::ChallengeInvalid
            | ApiError::SignatureInvalid
            | ApiError::DeviceNotRecognized
            | ApiError::ReauthorisationRequired
            | ApiError::StepUpRequired { .. }
            | ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AccountLocked { .. } => StatusCode::LOCKED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::DeviceLimit | ApiError::UserExists => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::DeliveryFailed => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::InvalidRequest(msg.into())
    }

    fn body(&self) -> ErrorBody {
        let mut detail = ErrorDetail {
            code: self.code().to_owned(),
            message: self.to_string(),
            retry_after_s: None,
            attempts_left: None,
            login_id: None,
            methods: None,
            reasons: None,
        };
        match self {
            ApiError::Unavailable => detail.retry_after_s = Some(1),
            ApiError::AccountLocked { retry_after_s } | ApiError::RateLimited { retry_after_s } => {
                detail.retry_after_s = Some((*retry_after_s).max(1));
            }
            ApiError::OtpInvalid { attempts_left } => detail.attempts_left = Some(*attempts_left),
            ApiError::PasswordRejected { reasons } => detail.reasons = Some(reasons.clone()),
            ApiError::StepUpRequired {
                login_id,
                methods,
                reasons,
            } => {
                detail.login_id = Some(login_id.clone());
                detail.methods = Some(methods.clone());
                // Why a code is asked for (e.g. `new_network`).
                detail.reasons = Some(reasons.clone()).filter(|r| !r.is_empty());
            }
            _ => {}
        }
        ErrorBody { error: detail }
    }
}

/// The error envelope of every non-2xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code; clients branch on it.
    pub code: String,
    /// Human-readable explanation; never contains secrets or internals.
    pub message: String,
    /// With `account_locked` and `rate_limited`: seconds until a retry can succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<i64>,
    /// With `otp_invalid`: tries left for this code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<i64>,
    /// With `step_up_required`: the login to finish with an OTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_id: Option<String>,
    /// With `step_up_required`: the OTP channels offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<crate::api::types::Method>>,
    /// With `password_rejected`: every rule the password breaks
    /// (`too_short`, `too_long`, `too_few_classes`, `common`,
    /// `contains_user_id`, `same_as_current`). With `step_up_required`: the
    /// risk signals behind it (`new_network`, `new_device`, `unusual_hour`,
    /// `velocity`, `recent_failures`, or a scorer's own codes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::Unavailable = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if let ApiError::AccountLocked { retry_after_s } | ApiError::RateLimited { retry_after_s } =
            &self
        {
            if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_s.max(&1).to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        // The cause goes to the operator's log, never to the client.
        tracing::error!(error = %err, "storage failure");
        match err {
            // A restart or failover: retry shortly, not a server bug.
            StorageError::Unavailable(_) => ApiError::Unavailable,
            _ => ApiError::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_503_with_retry_after_and_no_cause() {
        let err = ApiError::from(StorageError::Unavailable(
            "08006: connection to 10.0.0.5 refused".into(),
        ));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(axum::http::header::RETRY_AFTER),
            Some(&axum::http::HeaderValue::from_static("1"))
        );
        // Any other storage failure stays a 500, its cause in the log only.
        let other = ApiError::from(StorageError::Database("disk I/O error".into()));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!other.to_string().contains("disk"));
    }
}
