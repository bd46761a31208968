//! The password policy's rules the phone can check by itself, for "rules
//! shown as the user types". The server decides: only it knows the list of
//! common and breached passwords (`Common`) and the current password
//! (`SameAsCurrent`), and it normalises with NFKC before counting, which the
//! SDK approximates by counting code points as typed.

use crate::model::{PasswordPolicy, PasswordRule};

/// The rules of `policy` that `password` breaks, in the order the server
/// lists them; empty when the phone sees nothing wrong (never `Common` or
/// `SameAsCurrent`: only the server knows those). `user_id` is the user ID
/// the password is for (empty if not known yet). Memory only, not async.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn check_password(policy: &PasswordPolicy, password: &str, user_id: &str) -> Vec<PasswordRule> {
    let mut broken = Vec::new();
    let length = password.chars().count();
    if length < policy.min_length as usize {
        broken.push(PasswordRule::TooShort);
    }
    if length > policy.max_length as usize {
        broken.push(PasswordRule::TooLong);
    }
    if character_classes(password) < policy.classes_required {
        broken.push(PasswordRule::TooFewClasses);
    }
    let user_id = user_id.trim();
    if !user_id.is_empty() && password.to_lowercase().contains(&user_id.to_lowercase()) {
        broken.push(PasswordRule::ContainsUserId);
    }
    broken
}

/// How many of lower case, upper case, digit and other the password mixes.
fn character_classes(password: &str) -> u32 {
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for c in password.chars() {
        if c.is_lowercase() {
            lower = true;
        } else if c.is_uppercase() {
            upper = true;
        } else if c.is_numeric() {
            digit = true;
        } else {
            other = true;
        }
    }
    [lower, upper, digit, other].iter().filter(|&&b| b).count() as u32
}

impl PasswordPolicy {
    /// Same as `check_password`.
    pub fn check(&self, password: &str, user_id: &str) -> Vec<PasswordRule> {
        check_password(self, password, user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordRule::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            max_length: 128,
            classes_required: 3,
            description: "8 to 128 characters, 3 of 4 classes".into(),
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(check_password(&policy(), "Ab1!", ""), vec![TooShort]);
        // 8 characters, 16 bytes: long enough.
        assert!(check_password(&policy(), "Åäöü1!Éé", "").is_empty());
        let long = format!("Aa1!{}", "x".repeat(125));
        assert_eq!(check_password(&policy(), &long, ""), vec![TooLong]);
        assert!(check_password(&policy(), &long[..128], "").is_empty());
    }

    #[test]
    fn classes_are_lower_upper_digit_other() {
        assert_eq!(
            check_password(&policy(), "alllowercase", ""),
            vec![TooFewClasses]
        );
        assert_eq!(
            check_password(&policy(), "lower and space", ""),
            vec![TooFewClasses]
        );
        assert!(check_password(&policy(), "lower space 1", "").is_empty());
        assert!(check_password(&policy(), "Lower space", "").is_empty());
        assert_eq!(
            check_password(&policy(), "UPPER1234", ""),
            vec![TooFewClasses]
        );
        assert!(check_password(&policy(), "UPPER1234!", "").is_empty());
        let mut p = policy();
        p.classes_required = 4;
        assert_eq!(check_password(&p, "Lower space", ""), vec![TooFewClasses]);
        assert!(check_password(&p, "Lower space 1", "").is_empty());
    }

    #[test]
    fn the_user_id_is_found_ignoring_case() {
        assert_eq!(
            check_password(&policy(), "My JANE.DOE pass 1", "jane.doe"),
            vec![ContainsUserId]
        );
        assert!(check_password(&policy(), "My JANE.DOE pass 1", "").is_empty());
        assert!(check_password(&policy(), "My JANE.DOE pass 1", "john").is_empty());
    }

    #[test]
    fn every_broken_rule_is_listed() {
        assert_eq!(
            check_password(&policy(), "jane", "jane"),
            vec![TooShort, TooFewClasses, ContainsUserId]
        );
        assert!(check_password(&policy(), "Another strong Passw0rd", "jane.doe").is_empty());
    }

    #[test]
    fn rules_round_trip_their_wire_names() {
        for rule in [
            TooShort,
            TooLong,
            TooFewClasses,
            Common,
            ContainsUserId,
            SameAsCurrent,
            Other {
                code: "future_rule".into(),
            },
        ] {
            assert_eq!(PasswordRule::from_code(rule.code()), rule);
        }
    }
}
