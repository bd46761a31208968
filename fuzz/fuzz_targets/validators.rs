//! Every function of `validate` on arbitrary strings (non-UTF-8 input mapped
//! lossily), including the masking functions, which slice strings. Nothing
//! may panic; accepted values keep the documented shapes.
#![no_main]

use devicetrust_server::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    let key = validate::lockout_key(s);
    if let Ok(id) = validate::user_id(s) {
        assert!(!id.is_empty() && id.len() <= 64);
        assert_eq!(id, key);
    }
    if let Ok(id) = validate::server_id("login_id", s) {
        assert_eq!(id, s);
    }
    let _ = validate::password(s);
    if validate::otp_code(s).is_ok() {
        assert_eq!(s.len(), 6);
    }
    if validate::security_code(s).is_ok() {
        assert!((6..=9).contains(&s.len()));
    }
    if validate::e164(s).is_ok() {
        assert!(s.starts_with('+') && (9..=16).contains(&s.len()));
    }
    if let Ok(m) = validate::market(s) {
        assert!(m.len() == 2 && m.bytes().all(|b| b.is_ascii_uppercase()));
    }
    // The max comes from the input too: 0, tiny and the real limits.
    let max = data.first().map_or(64, |&b| b as usize % 130);
    for max in [max, 64, 128] {
        if let Ok(l) = validate::label("name", s, max) {
            assert!(!l.is_empty() && l.chars().count() <= max);
        }
    }
    if let Ok(e) = validate::email(s) {
        assert!(e.contains('@'));
        let _ = validate::mask_email(&e);
    }
    let _ = devicetrust_server::password_policy::PasswordPolicy::default().check(s, s);
    let _ = devicetrust_server::password_policy::normalize(s);
    let _ = devicetrust_server::flows::cards::card_number(s);
    let _ = devicetrust_server::flows::cards::name_key(s);
    let _ = validate::security_code_shape(s);
    let _ = validate::mask_email(s);
    let _ = validate::mask_mobile(s);
});
