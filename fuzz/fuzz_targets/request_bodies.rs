//! Every request body of `api::types`: the first byte picks the type, the
//! rest goes to `serde_json::from_slice` (as `ApiJson` does); a body that
//! parses goes through the same `validate` (and `proof`) calls as its
//! handler. Nothing may panic.
#![no_main]

use devicetrust_server::api::types::{
    wire_name, CreateUserRequest, DeviceChallengeRequest, DeviceLoginRequest, EnrolRequest,
    MarketRequest, OtpSendRequest, OtpVerifyRequest, PasswordLoginRequest, RefreshRequest,
    RegisterDeviceRequest,
};
use devicetrust_server::proof::{Jws, TYP_LOGIN, TYP_REGISTER};
use devicetrust_server::secrets::token_hash;
use devicetrust_server::validate;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

fn proof(compact: &str, typ: &str) {
    if let Ok(jws) = Jws::parse(compact, typ) {
        let _ = jws.kid();
        let _ = jws.jwk_point();
    }
}

fn mobile(m: &str) {
    let _ = validate::e164(m);
    let _ = validate::mask_mobile(m);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => {
            if let Some(r) = parse::<PasswordLoginRequest>(body) {
                let _ = validate::user_id(&r.user_id);
                let _ = validate::lockout_key(&r.user_id);
                let _ = validate::password(r.password.expose());
                if let Some(d) = &r.device_id {
                    let _ = validate::server_id("device_id", d);
                }
            }
        }
        1 => {
            if let Some(r) = parse::<EnrolRequest>(body) {
                let _ = validate::server_id("login_id", &r.login_id);
                let _ = validate::security_code(r.security_code.expose());
                if let Some(m) = &r.mobile {
                    mobile(m);
                }
            }
        }
        2 => {
            if let Some(r) = parse::<OtpSendRequest>(body) {
                let _ = validate::server_id("login_id", &r.login_id);
                let _ = r.channel.as_str();
            }
        }
        3 => {
            if let Some(r) = parse::<OtpVerifyRequest>(body) {
                let _ = validate::server_id("login_id", &r.login_id);
                let _ = validate::otp_code(r.code.expose());
            }
        }
        4 => {
            if let Some(r) = parse::<DeviceChallengeRequest>(body) {
                let _ = validate::server_id("device_id", &r.device_id);
            }
        }
        5 => {
            if let Some(r) = parse::<DeviceLoginRequest>(body) {
                let _ = validate::server_id("challenge_id", &r.challenge_id);
                proof(&r.proof, TYP_LOGIN);
            }
        }
        6 => {
            if let Some(r) = parse::<RefreshRequest>(body) {
                // api::session checks the length inline, then hashes it.
                let presented = r.refresh_token.expose();
                if !presented.is_empty() && presented.len() <= 256 {
                    assert_eq!(token_hash(presented).len(), 32);
                }
            }
        }
        7 => {
            if let Some(r) = parse::<RegisterDeviceRequest>(body) {
                let _ = validate::server_id("registration_id", &r.registration_id);
                let _ = validate::label("name", &r.name, 64);
                proof(&r.proof, TYP_REGISTER);
                let _ = wire_name(&r.platform);
                let _ = wire_name(&r.key_storage);
                let _ = wire_name(&r.user_verification);
            }
        }
        8 => {
            if let Some(r) = parse::<CreateUserRequest>(body) {
                let _ = validate::user_id(&r.user_id);
                let _ = validate::label("name", &r.name, 128);
                if let Ok(email) = validate::email(&r.email) {
                    let _ = validate::mask_email(&email);
                }
                let _ = validate::mask_email(&r.email);
                if let Some(m) = &r.mobile {
                    mobile(m);
                }
                let _ = validate::market(&r.primary_market);
                let _ = devicetrust_server::password_policy::PasswordPolicy::default()
                    .check(r.password.expose(), &r.user_id);
                let _ = validate::password(r.password.expose());
            }
        }
        _ => {
            if let Some(r) = parse::<MarketRequest>(body) {
                let _ = wire_name(&r.second_factor);
            }
        }
    }
});
