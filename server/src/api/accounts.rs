//! Cards and online enrolment: the bank's cards (administration), a user ID
//! from card details, and the user's linked cards. The rules live in
//! `flows::cards`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::types::*;
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ApiJson, ApiPath, Auth, ClientIp, EmptyBody, StrongAuth};
use crate::flows::cards::{self, NewAccount, NewCard};

#[utoipa::path(
    post, path = "/admin/v1/cards", tag = "admin",
    security(("admin" = [])),
    request_body = CreateCardRequest,
    responses(
        (status = 201, description = "Stored; number and card ID only as keyed hashes", body = CardRefResponse),
        (status = 400, description = "invalid_request (length, Luhn, card ID, name, e-mail, mobile, market)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 409, description = "card_exists", body = ErrorBody),
    )
)]
pub async fn create_card(
    State(app): State<AppState>,
    _admin: Admin,
    ApiJson(req): ApiJson<CreateCardRequest>,
) -> Result<(StatusCode, Json<CardRefResponse>), ApiError> {
    let card_ref = cards::create_card(
        &app,
        NewCard {
            card_number: req.card_number.expose().to_owned(),
            card_id: req.card_id.expose().to_owned(),
            name: req.name,
            email: req.email,
            mobile: req.mobile,
            primary_market: req.primary_market,
            activated: req.activated,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CardRefResponse { card_ref })))
}

#[utoipa::path(
    post, path = "/admin/v1/cards/{card_ref}/activate", tag = "admin",
    security(("admin" = [])),
    params(("card_ref" = String, Path, description = "The card's reference", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 204, description = "Activated"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn activate_card(
    State(app): State<AppState>,
    _admin: Admin,
    ApiPath(card_ref): ApiPath<String>,
    _body: EmptyBody,
) -> Result<StatusCode, ApiError> {
    cards::activate_card(&app, &card_ref).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/v1/accounts", tag = "account",
    request_body = CreateAccountRequest,
    responses(
        (status = 201, description = "The user ID exists; sign in with it (enrolment comes at the first sign-in)", body = CreateAccountResponse),
        (status = 400, description = "invalid_request (not counted), password_rejected with `reasons`", body = ErrorBody),
        (status = 401, description = "card_not_recognized: number, card ID or name wrong (counted per card number)", body = ErrorBody),
        (status = 403, description = "card_not_activated", body = ErrorBody),
        (status = 409, description = "card_already_enrolled, user_exists", body = ErrorBody),
        (status = 423, description = "account_locked: too many wrong card details for this number", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn create_account(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CreateAccountRequest>,
) -> Result<(StatusCode, Json<CreateAccountResponse>), ApiError> {
    app.rate.check(ip)?;
    let user_id = cards::create_account(
        &app,
        NewAccount {
            card_number: req.card_number.expose().to_owned(),
            card_id: req.card_id.expose().to_owned(),
            name: req.name,
            user_id: req.user_id,
            password: req.password,
        },
        ip,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreateAccountResponse { user_id })))
}

#[utoipa::path(
    get, path = "/v1/cards", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cards linked to the user", body = CardList),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn list_cards(
    State(app): State<AppState>,
    Auth(session): Auth,
) -> Result<Json<CardList>, ApiError> {
    let cards = app.store().cards_of(&session.user_id).await?;
    Ok(Json(CardList {
        cards: cards.into_iter().map(LinkedCard::from).collect(),
    }))
}

#[utoipa::path(
    post, path = "/v1/cards", tag = "account",
    security(("bearer" = [])),
    request_body = LinkCardRequest,
    responses(
        (status = 201, description = "Linked", body = LinkedCardResponse),
        (status = 400, description = "invalid_request (not counted)", body = ErrorBody),
        (status = 401, description = "unauthorized, card_not_recognized (counted per card number)", body = ErrorBody),
        (status = 403, description = "forbidden (not a strong session), card_not_activated", body = ErrorBody),
        (status = 409, description = "card_already_enrolled", body = ErrorBody),
        (status = 423, description = "account_locked: too many wrong card details for this number", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
pub async fn link_card(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    StrongAuth(session): StrongAuth,
    ApiJson(req): ApiJson<LinkCardRequest>,
) -> Result<(StatusCode, Json<LinkedCardResponse>), ApiError> {
    let user = app
        .store()
        .user(&session.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let card = cards::link_card(
        &app,
        &user,
        req.card_number.expose(),
        req.card_id.expose(),
        ip,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(LinkedCardResponse { card: card.into() }),
    ))
}
