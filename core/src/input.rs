//! The contract's input rules, checked on the phone before a round trip so
//! that a typo costs no request and never counts as a failed attempt. The
//! server applies the same rules (and has the last word).

use crate::error::{DeviceTrustError, Result};

fn invalid(message: &str) -> Result<()> {
    Err(DeviceTrustError::invalid(message))
}

/// A security code: 6–9 digits, not one digit repeated, not a straight run.
pub(crate) fn security_code(code: &str) -> Result<()> {
    let d = code.as_bytes();
    if !(6..=9).contains(&d.len()) || !d.iter().all(u8::is_ascii_digit) {
        invalid("the security code must be 6 to 9 digits")
    } else if d.iter().all(|&c| c == d[0]) {
        invalid("the security code must not repeat one digit")
    } else if d.windows(2).all(|w| w[1] as i8 - w[0] as i8 == 1)
        || d.windows(2).all(|w| w[1] as i8 - w[0] as i8 == -1)
    {
        invalid("the security code must not be a straight run such as 123456")
    } else {
        Ok(())
    }
}

/// A security code as typed to prove who one is (recovery): only its shape;
/// the server compares it.
pub(crate) fn security_code_shape(code: &str) -> Result<()> {
    if (6..=9).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        invalid("the security code has 6 to 9 digits")
    }
}

/// A one-time code: six digits (surrounding spaces trimmed).
pub(crate) fn otp_code(code: &str) -> Result<&str> {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(DeviceTrustError::invalid("the code has 6 digits"))
    }
}

/// 1–64 characters of `A-Z a-z 0-9 . _ @ + -`.
pub(crate) fn user_id(user_id: &str) -> Result<()> {
    let ok = !user_id.is_empty()
        && user_id.len() <= 64
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        invalid("the user ID must be 1 to 64 characters: letters, digits and . _ @ + -")
    }
}

/// The API path of a device: its id is one of the server's (1–64 of
/// `A-Z a-z 0-9 _ -`, as the server's own check), so that an id from the
/// app or a tampered answer cannot steer the request to another path
/// (`../account/mobile`).
pub(crate) fn device_path(device_id: &str) -> Result<String> {
    let ok = !device_id.is_empty()
        && device_id.len() <= 64
        && device_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(format!("/v1/devices/{device_id}"))
    } else {
        Err(DeviceTrustError::invalid("no such device"))
    }
}

/// E.164: `+`, a non-zero digit, then 7 to 14 more digits.
pub(crate) fn mobile(mobile: &str) -> Result<()> {
    let b = mobile.as_bytes();
    let ok = (9..=16).contains(&b.len())
        && b[0] == b'+'
        && (b'1'..=b'9').contains(&b[1])
        && b[2..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        invalid("the mobile number must be in international form, e.g. +447700900123")
    }
}

/// One `@`, a non-empty local part, a dotted domain, no spaces.
pub(crate) fn email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        invalid("enter an e-mail address such as jane@example.com")
    }
}

/// A card number as typed (spaces and dashes allowed), returned as digits
/// only: 15–19 digits passing the Luhn check.
pub(crate) fn card_number(raw: &str) -> Result<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ok = (15..=19).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && luhn(&digits);
    if ok {
        Ok(digits)
    } else {
        Err(DeviceTrustError::invalid(
            "check the card number: 15 to 19 digits as printed on the card",
        ))
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 {
                    twice - 9
                } else {
                    twice
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The 4-digit card ID.
pub(crate) fn card_id(card_id: &str) -> Result<()> {
    if card_id.len() == 4 && card_id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        invalid("the card ID has 4 digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_code_rules_match_the_server() {
        for ok in ["135790", "2468024", "908172635"] {
            assert!(security_code(ok).is_ok(), "{ok}");
        }
        for bad in [
            "12345",
            "1234567890",
            "111111",
            "123456",
            "987654",
            "12a456",
        ] {
            assert!(security_code(bad).is_err(), "{bad}");
        }
        assert!(security_code_shape("123456").is_ok());
        assert!(security_code_shape("12345").is_err());
    }

    #[test]
    fn card_numbers_pass_luhn_and_may_be_typed_with_spaces() {
        assert_eq!(card_number("3782 822463 10005").unwrap(), "378282246310005");
        assert_eq!(
            card_number("4111-1111-1111-1111").unwrap(),
            "4111111111111111"
        );
        for bad in ["4111111111111112", "41111111111111", "4111a11111111111", ""] {
            assert!(card_number(bad).is_err(), "{bad}");
        }
        assert!(card_id("1234").is_ok());
        assert!(card_id("123").is_err() && card_id("12a4").is_err());
    }

    #[test]
    fn contacts_and_user_ids() {
        assert!(mobile("+447700900123").is_ok());
        for bad in ["07700900123", "+0447700900", "+44", "+44 7700 900123"] {
            assert!(mobile(bad).is_err(), "{bad}");
        }
        assert!(email("jane@example.com").is_ok());
        for bad in ["jane", "@example.com", "jane@example", "ja ne@example.com"] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(user_id("Jane.Doe+1@bank").is_ok());
        assert!(user_id("jane doe").is_err() && user_id("").is_err());
        assert_eq!(otp_code(" 123456 ").unwrap(), "123456");
        assert!(otp_code("12345").is_err());
    }
}
