//! Input rules of the contract: user ids, security codes, phone numbers,
//! markets, device names; and the masking of delivery destinations.

use crate::error::ApiError;

/// Checks a `user_id` (1–64 of `A-Z a-z 0-9 . _ @ + -`) and lower-cases it.
pub fn user_id(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'));
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(
            "user_id must be 1-64 characters of A-Z a-z 0-9 . _ @ + -",
        ))
    }
}

/// The key lockout counts under: the lower-cased string, whether it is a
/// valid id or not, so the count exists for ids that do not.
pub fn lockout_key(raw: &str) -> String {
    raw.to_ascii_lowercase()
}

/// An id the server issued (`login_id`, `device_id`, ...): base64url, at
/// most 64 characters. Anything else cannot be one of ours.
pub fn server_id<'a>(field: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::invalid(format!("{field} is not a valid id")))
    }
}

/// A password as typed at sign-in: present and of sane length.
pub fn password(raw: &str) -> Result<(), ApiError> {
    if raw.is_empty() || raw.len() > 1024 {
        Err(ApiError::invalid("password must be 1 to 1024 bytes"))
    } else {
        Ok(())
    }
}

/// An OTP as typed: six ASCII digits.
pub fn otp_code(raw: &str) -> Result<(), ApiError> {
    if raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid("code must be 6 digits"))
    }
}

/// A security code as typed to prove it (recovery, a caller check): 6–9
/// ASCII digits. The creation rules are not repeated: a code breaking them
/// cannot match.
pub fn security_code_shape(code: &str) -> Result<(), ApiError> {
    if (6..=9).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid("security_code must be 6 to 9 digits"))
    }
}

/// A security code: 6–9 ASCII digits, not one digit repeated, not a straight
/// ascending or descending run.
pub fn security_code(code: &str) -> Result<(), ApiError> {
    let digits = code.as_bytes();
    if !(6..=9).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ApiError::invalid("security_code must be 6 to 9 digits"));
    }
    if digits.iter().all(|&d| d == digits[0]) {
        return Err(ApiError::invalid("security_code must not repeat one digit"));
    }
    let steps = |delta: i8| digits.windows(2).all(|w| w[1] as i8 - w[0] as i8 == delta);
    if steps(1) || steps(-1) {
        return Err(ApiError::invalid(
            "security_code must not be a straight run such as 123456",
        ));
    }
    Ok(())
}

/// An E.164 number: `+`, a non-zero digit, then 7 to 14 more digits.
pub fn e164(mobile: &str) -> Result<(), ApiError> {
    let bytes = mobile.as_bytes();
    let ok = bytes.len() >= 9
        && bytes.len() <= 16
        && bytes[0] == b'+'
        && (b'1'..=b'9').contains(&bytes[1])
        && bytes[2..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "mobile must be in E.164 form, e.g. +447700900123",
        ))
    }
}

/// An ISO 3166-1 alpha-2 market code, upper-cased.
pub fn market(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid(
            "market must be an ISO 3166-1 alpha-2 code such as GB",
        ))
    }
}

/// A printable, trimmed, 1–64 character label (device names, people's names).
pub fn label(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > max || trimmed.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(ApiError::invalid(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Invisible formatting characters that make a name display as something
/// it is not: bidirectional overrides and isolates (a "Trojan Source" name
/// reads backwards), zero-width characters, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// An e-mail address, strictly: `local@domain`, ASCII, no display name,
/// no comments, no quoting (so the address stored is the address a carrier
/// delivers to). Local part: 1–64 of `A-Z a-z 0-9 ! # $ % & ' * + / = ? ^
/// _ ` { | } ~ -` and dots between them; domain: two or more labels of
/// letters, digits and inner hyphens, the last one letters. At most 254.
pub fn email(raw: &str) -> Result<String, ApiError> {
    fn local_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
    }
    fn label(l: &str) -> bool {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    }
    let valid = raw.len() <= 254
        && match raw.split_once('@') {
            Some((local, domain)) => {
                let labels: Vec<&str> = domain.split('.').collect();
                !local.is_empty()
                    && local
                        .split('.')
                        .all(|p| !p.is_empty() && p.chars().all(local_char))
                    && labels.len() >= 2
                    && labels.iter().all(|l| label(l))
                    && labels
                        .last()
                        .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
            }
            None => false,
        };
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::invalid("email must be an e-mail address"))
    }
}

/// `j•••@example.com`: enough for the card holder to recognise, too little to harvest.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// `+44•••••••123`: country prefix and the last three digits.
pub fn mask_mobile(mobile: &str) -> String {
    let chars: Vec<char> = mobile.chars().collect();
    if chars.len() < 6 {
        return "•••".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}{}{tail}", "•".repeat(chars.len() - 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_plain_addresses() {
        for ok in [
            "jane@example.com",
            "j.o'neil+bank@mail.example.co.uk",
            "a@b.io",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "x<victim@example.com>",
            "<a@evil.test>",
            "a@b.c;x",
            "a@b..c",
            "a@b.c",
            ".a@b.cd",
            "a..b@c.de",
            "a@-b.cd",
            " jane@example.com",
            "jane@example",
            "j\u{e9}@example.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_ids_are_lower_cased_and_restricted() {
        assert_eq!(user_id("Jane.Doe+1@X").unwrap(), "jane.doe+1@x");
        assert!(user_id("").is_err());
        assert!(user_id(&"a".repeat(65)).is_err());
        assert!(user_id(&"a".repeat(64)).is_ok());
        assert!(user_id("jane doe").is_err());
        assert!(user_id("jané").is_err());
    }

    #[test]
    fn security_codes_follow_the_enrolment_rules() {
        for ok in ["135790", "2468024", "11223344", "908172635", "123457"] {
            assert!(security_code(ok).is_ok(), "{ok} should pass");
        }
        for bad in [
            "12345",
            "1234567890",
            "111111",
            "999999999",
            "123456",
            "987654",
            "3456789",
            "12a456",
            "１２３４５６",
            " 135790",
        ] {
            assert!(security_code(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn mobiles_must_be_e164() {
        assert!(e164("+447700900123").is_ok());
        assert!(e164("+15551234567").is_ok());
        for bad in [
            "447700900123",
            "+0447700900",
            "+44 7700 900123",
            "+1234567",
            "+12345678901234567",
        ] {
            assert!(e164(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn destinations_are_masked() {
        assert_eq!(mask_email("jane@example.com"), "j•••@example.com");
        assert_eq!(mask_mobile("+447700900123"), "+44•••••••123");
    }

    #[test]
    fn markets_are_alpha2() {
        assert_eq!(market("gb").unwrap(), "GB");
        assert!(market("GBR").is_err());
        assert!(market("1A").is_err());
    }
}
