//! The password policy (contract v1.1, "Password policy"): what a new
//! password must be, checked wherever one is set, and described to the app
//! by `GET /v1/password-policy`.
//!
//! Every password is first normalised to Unicode NFKC (`unicode-normalization`),
//! so that the same characters typed on two keyboards are the same password:
//! full-width `Ｐａｓｓ` is `Pass`, the ligature `ﬁ` is `fi`. The server hashes
//! and verifies the normalised form. Then:
//!
//! - **Length** counts Unicode code points of the normalised password (not
//!   bytes, not graphemes); nothing is ever truncated.
//! - **Classes**: lower-case (`char::is_lowercase`), upper-case
//!   (`char::is_uppercase`), digit (`char::is_numeric`: 0–9 and the digits
//!   and numerals of other scripts) and other: everything else, i.e.
//!   punctuation, symbols, spaces, and letters of scripts without case
//!   (Chinese, Japanese, Arabic, Hebrew, Thai...). Accented, Greek and
//!   Cyrillic letters count as lower or upper like Latin ones.
//! - **Common**: the normalised, lower-cased password, surrounding white
//!   space ignored, must not be in the list of common passwords.
//! - **User id**: the lower-cased password must not contain the user id
//!   when the id has at least [`MIN_USER_ID_LEN`] characters (shorter ids
//!   would refuse ordinary passwords by chance).
//!
//! The common-password list is Django's (`django/contrib/auth/common-passwords.txt.gz`
//! in the PyPI wheel django 5.2.19, decompressed as is into
//! `server/data/common-passwords.txt`; BSD-3-Clause, notice in
//! `server/data/common-passwords.LICENSE`): Royce Williams' 20,000 most
//! common passwords of the Have I Been Pwned corpus, unhexed, lower-cased and
//! deduplicated by Django: 19,640 entries. Chosen over the `zxcvbn` crate
//! (3.1.1, 30,000 Xato passwords) because zxcvbn does not expose its lists
//! (`mod frequency_lists` is private, `DictionaryType` is not re-exported):
//! the list is reachable only by running the whole estimator and reading its
//! match sequence, which costs +3.3 MB of binary, 25 ms on the first call and
//! about 250 µs per call (release build), against +0.2 MB, 4 ms to load and
//! 50 ns per look-up here. Django is maintained, and ships this list for
//! exactly this check. A unit test pins the file's SHA-256.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::secrets::Secret;

/// Ids shorter than this are not looked for inside the password.
pub const MIN_USER_ID_LEN: usize = 3;

/// Django's common-password list, one lower-case password a line.
const COMMON_LIST: &str = include_str!("../data/common-passwords.txt");

/// The list as folded by [`fold`], built on first use.
static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COMMON_LIST
        .lines()
        .map(|line| fold(line.trim()))
        .filter(|entry| !entry.is_empty())
        .collect()
});

/// Limits an operator can set; every default is the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest code points, after NFKC.
    pub min_length: u32,
    /// Most code points, after NFKC.
    pub max_length: u32,
    /// How many of the four classes (lower, upper, digit, other) must appear.
    pub classes_required: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            max_length: 128,
            classes_required: 3,
        }
    }
}

/// A rule a password breaks; `wire_name` is what `reasons` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    TooShort,
    TooLong,
    TooFewClasses,
    Common,
    ContainsUserId,
    /// Checked by the caller (password change, recovery): it needs the
    /// current hash.
    SameAsCurrent,
}

impl Reason {
    pub fn wire_name(self) -> &'static str {
        match self {
            Reason::TooShort => "too_short",
            Reason::TooLong => "too_long",
            Reason::TooFewClasses => "too_few_classes",
            Reason::Common => "common",
            Reason::ContainsUserId => "contains_user_id",
            Reason::SameAsCurrent => "same_as_current",
        }
    }
}

/// `password_rejected` with the wire names of `reasons`.
pub fn rejected(reasons: &[Reason]) -> ApiError {
    ApiError::PasswordRejected {
        reasons: reasons.iter().map(|r| r.wire_name().to_owned()).collect(),
    }
}

/// The answer of `GET /v1/password-policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PolicyDescription {
    /// Fewest characters (Unicode code points after NFKC normalisation).
    #[schema(example = 8)]
    pub min_length: u32,
    /// Most characters (Unicode code points after NFKC normalisation).
    #[schema(example = 128)]
    pub max_length: u32,
    /// How many of the four classes must appear: lower-case letters,
    /// upper-case letters, digits, other characters (symbols, spaces,
    /// letters of scripts without case).
    #[schema(example = 3, minimum = 1, maximum = 4)]
    pub classes_required: u32,
    /// The rules in one sentence, for the app to show.
    pub description: String,
}

/// NFKC: the form the policy checks and the server hashes and verifies.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// [`normalize`] for a `Secret`, keeping it secret.
pub fn normalized(password: &Secret) -> Secret {
    Secret::new(normalize(password.expose()))
}

/// NFKC, then lower case: how the common list and user ids are compared.
fn fold(s: &str) -> String {
    normalize(s).to_lowercase()
}

/// How many of lower, upper, digit and other appear in `s`.
fn classes(s: &str) -> u32 {
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for c in s.chars() {
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
    [lower, upper, digit, other]
        .into_iter()
        .filter(|&b| b)
        .count() as u32
}

/// Whether `password` (any form) is in the common list.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(fold(password).trim())
}

impl PasswordPolicy {
    /// Every rule `password` breaks (NFKC first), in a fixed order;
    /// `same_as_current` is the caller's to add.
    pub fn check(&self, password: &str, user_id: &str) -> Result<(), Vec<Reason>> {
        let normalized = normalize(password);
        let length = normalized.chars().count();
        let mut reasons = Vec::new();
        if length < self.min_length as usize {
            reasons.push(Reason::TooShort);
        }
        if length > self.max_length as usize {
            reasons.push(Reason::TooLong);
        }
        if classes(&normalized) < self.classes_required {
            reasons.push(Reason::TooFewClasses);
        }
        let folded = normalized.to_lowercase();
        if COMMON.contains(folded.trim()) {
            reasons.push(Reason::Common);
        }
        let user_id = fold(user_id);
        if user_id.chars().count() >= MIN_USER_ID_LEN && folded.contains(&user_id) {
            reasons.push(Reason::ContainsUserId);
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// A new password for `user_id`: its NFKC form, to hash, or
    /// `password_rejected` with every rule it breaks.
    pub fn new_password(&self, password: &Secret, user_id: &str) -> Result<Secret, ApiError> {
        let normalized = normalized(password);
        self.check(normalized.expose(), user_id)
            .map_err(|reasons| rejected(&reasons))?;
        Ok(normalized)
    }

    /// The policy for the app: its limits and one sentence to show.
    pub fn describe(&self) -> PolicyDescription {
        let classes = match self.classes_required {
            0 | 1 => String::new(),
            4 => " with lower-case and upper-case letters, digits and other characters \
                  (symbols, spaces)"
                .to_owned(),
            n => format!(
                " with at least {n} of: lower-case letters, upper-case letters, digits, \
                 other characters (symbols, spaces)"
            ),
        };
        PolicyDescription {
            min_length: self.min_length,
            max_length: self.max_length,
            classes_required: self.classes_required,
            description: format!(
                "{} to {} characters{classes}. Not a commonly used password, and not \
                 containing your user ID.",
                self.min_length, self.max_length
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(policy: &PasswordPolicy, password: &str, user_id: &str) -> Vec<&'static str> {
        match policy.check(password, user_id) {
            Ok(()) => Vec::new(),
            Err(r) => r.into_iter().map(Reason::wire_name).collect(),
        }
    }

    fn default_reasons(password: &str) -> Vec<&'static str> {
        reasons(&PasswordPolicy::default(), password, "jane.doe")
    }

    #[test]
    fn password_policy_the_list_is_djangos_and_loads() {
        let digest = ring::digest::digest(&ring::digest::SHA256, COMMON_LIST.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "29ca0fa5303165f012f3e9775e3e95a3071cdd59f219973ec1cbb308d0214a6f"
        );
        assert_eq!(COMMON_LIST.lines().count(), 19_640);
        assert!(COMMON.len() >= 19_600, "{}", COMMON.len());
        for top in ["123456", "password", "qwerty", "password1", "iloveyou"] {
            assert!(COMMON.contains(top), "{top}");
        }
    }

    #[test]
    fn password_policy_defaults() {
        let p = PasswordPolicy::default();
        assert_eq!(
            (p.min_length, p.max_length, p.classes_required),
            (8, 128, 3)
        );
        assert_eq!(
            default_reasons("Correct horse battery 9"),
            Vec::<&str>::new()
        );
        assert_eq!(default_reasons("Xk7#pQ2m"), Vec::<&str>::new());
    }

    #[test]
    fn password_policy_each_rule() {
        assert_eq!(default_reasons("Ab1!xyz"), ["too_short"]);
        assert_eq!(default_reasons("Ab1!xyz9"), Vec::<&str>::new());
        let long = format!("Ab1!{}", "x".repeat(124));
        assert_eq!(default_reasons(&long), Vec::<&str>::new());
        assert_eq!(default_reasons(&format!("{long}y")), ["too_long"]);
        assert_eq!(default_reasons("abcdefgh12"), ["too_few_classes"]);
        assert_eq!(default_reasons("Password1"), ["common"]);
        assert_eq!(default_reasons("My jane.doe 1"), ["contains_user_id"]);
    }

    #[test]
    fn password_policy_reports_every_broken_rule() {
        assert_eq!(default_reasons("short"), ["too_short", "too_few_classes"]);
        assert_eq!(
            default_reasons("qwerty"),
            ["too_short", "too_few_classes", "common"]
        );
        assert_eq!(
            reasons(&PasswordPolicy::default(), "jane.doe", "JANE.DOE"),
            ["too_few_classes", "contains_user_id"]
        );
        assert_eq!(
            default_reasons(&"a".repeat(129)),
            ["too_long", "too_few_classes"]
        );
        assert_eq!(
            reasons(&PasswordPolicy::default(), "", "jane"),
            ["too_short", "too_few_classes"]
        );
    }

    #[test]
    fn password_policy_common_is_case_insensitive_after_nfkc() {
        for p in [
            "Password1",
            "PASSWORD1",
            "pAsSwOrD1",
            "ＰＡＳＳＷＯＲＤ１",
            " Password1 ",
        ] {
            assert!(is_common(p), "{p}");
            assert!(default_reasons(p).contains(&"common"), "{p}");
        }
        assert!(!is_common("Correct horse battery 9"));
    }

    #[test]
    fn password_policy_nfkc_changes_length_and_classes() {
        // Full-width letters and digits are ASCII once normalised.
        assert_eq!(normalize("Ｐａｓｓ１"), "Pass1");
        // 7 code points typed, 8 after NFKC: the ligature is two letters.
        let typed = "Xy1!ﬁab";
        assert_eq!(typed.chars().count(), 7);
        assert_eq!(default_reasons(typed), Vec::<&str>::new());
        assert_eq!(default_reasons("Xy1!zab"), ["too_short"]);
        // Full-width digits are digits after NFKC: 3 classes.
        assert_eq!(default_reasons("Bcdfghjk１"), Vec::<&str>::new());
        // ... and a full-width common password is the common password.
        assert_eq!(default_reasons("Ａｂｃｄｅｆｇ１"), ["common"]);
        // Superscript two is the digit 2 after NFKC.
        assert_eq!(normalize("x²"), "x2");
        // Accented and Cyrillic letters have case; CJK has none and is "other".
        assert_eq!(classes("Éé"), 2);
        assert_eq!(classes("Жж"), 2);
        assert_eq!(classes("密码"), 1);
        assert_eq!(default_reasons("密码密码密码ab1"), Vec::<&str>::new());
        assert_eq!(default_reasons("密码密码密码密码"), ["too_few_classes"]);
        // Length counts code points, not bytes.
        assert_eq!(default_reasons("Жжжжжж1!"), Vec::<&str>::new());
    }

    #[test]
    fn password_policy_user_id_inside_the_password() {
        let p = PasswordPolicy::default();
        assert_eq!(
            reasons(&p, "Hello Jane.Doe 42", "jane.doe"),
            ["contains_user_id"]
        );
        assert_eq!(reasons(&p, "xJANEx!2024", "jane"), ["contains_user_id"]);
        // Full-width letters spell the id too.
        assert_eq!(reasons(&p, "Ｊａｎｅ!2024x", "jane"), ["contains_user_id"]);
        // Ids shorter than three characters are not looked for.
        assert_eq!(reasons(&p, "Jo is 42 today", "jo"), Vec::<&str>::new());
        assert_eq!(reasons(&p, "Bob is 42 today", "bob"), ["contains_user_id"]);
    }

    #[test]
    fn password_policy_configured_limits() {
        let p = PasswordPolicy {
            min_length: 12,
            max_length: 16,
            classes_required: 4,
        };
        assert_eq!(reasons(&p, "Ab1!Ab1!Ab1", "x"), ["too_short"]);
        assert_eq!(reasons(&p, "Ab1!Ab1!Ab1!", "x"), Vec::<&str>::new());
        assert_eq!(
            reasons(&p, "Ab1xAb1xAb1xAb1xA", "x"),
            ["too_long", "too_few_classes"]
        );
        let one = PasswordPolicy {
            classes_required: 1,
            ..PasswordPolicy::default()
        };
        assert_eq!(reasons(&one, "zqxjkvbnmw", "x"), Vec::<&str>::new());
        assert_eq!(reasons(&one, "zzzzzzzzzz", "x"), ["common"]);
    }

    #[test]
    fn password_policy_new_password_normalises_or_rejects() {
        let p = PasswordPolicy::default();
        let ok = p
            .new_password(&Secret::new("Ｃorrect horse ﬁsh 9"), "jane.doe")
            .unwrap();
        assert_eq!(ok.expose(), "Correct horse fish 9");
        let err = p
            .new_password(&Secret::new("Password1"), "jane.doe")
            .unwrap_err();
        match err {
            ApiError::PasswordRejected { reasons } => assert_eq!(reasons, ["common"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn password_policy_describes_itself() {
        let d = PasswordPolicy::default().describe();
        assert_eq!(
            (d.min_length, d.max_length, d.classes_required),
            (8, 128, 3)
        );
        assert!(d
            .description
            .starts_with("8 to 128 characters with at least 3 of"));
        assert!(d.description.contains("user ID"));
        let json = serde_json::to_value(&d).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "classes_required",
                "description",
                "max_length",
                "min_length"
            ]
        );
        assert_eq!(
            serde_json::to_value(Reason::ContainsUserId).unwrap(),
            "contains_user_id"
        );
        assert_eq!(Reason::SameAsCurrent.wire_name(), "same_as_current");
    }

    #[test]
    fn password_policy_flags() {
        use clap::Parser;

        use crate::cli::{Cli, Command, UserCommand};

        let serve = |extra: &[&str]| {
            let mut argv = vec!["devicetrust-server", "serve"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Serve(args)) => Ok(args.settings().map(|s| s.password_policy)),
                Ok(_) => unreachable!(),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(serve(&[]).unwrap().unwrap(), PasswordPolicy::default());
        let set = serve(&[
            "--password-min-length",
            "12",
            "--password-max-length",
            "64",
            "--password-classes",
            "4",
        ]);
        assert_eq!(
            set.unwrap().unwrap(),
            PasswordPolicy {
                min_length: 12,
                max_length: 64,
                classes_required: 4
            }
        );
        for out_of_range in [
            ["--password-min-length", "5"],
            ["--password-min-length", "65"],
            ["--password-max-length", "15"],
            ["--password-max-length", "1025"],
            ["--password-classes", "0"],
            ["--password-classes", "5"],
        ] {
            assert!(serve(&out_of_range).is_err(), "{out_of_range:?}");
        }
        let min_over_max = serve(&["--password-min-length", "20", "--password-max-length", "16"]);
        assert!(matches!(
            min_over_max,
            Ok(Err(crate::cli::CliError::Usage(_)))
        ));

        let add = Cli::try_parse_from([
            "devicetrust-server",
            "user",
            "add",
            "--user-id",
            "jane",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
            "--market",
            "GB",
            "--password-classes",
            "2",
        ])
        .unwrap();
        match add.command {
            Command::User(UserCommand::Add {
                password_policy, ..
            }) => assert_eq!(password_policy.policy().unwrap().classes_required, 2),
            _ => unreachable!(),
        }
    }
}
