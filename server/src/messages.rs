//! Every message a card holder receives, as plain-text templates with the
//! operator's brand name (`--brand-name`). Codes appear as six consecutive
//! digits; no message carries a password, a token or a security code.

/// A message's subject line and body.
pub struct Text {
    pub subject: String,
    pub body: String,
}

fn text(brand: &str, subject: &str, body: String) -> Text {
    Text {
        subject: format!("{brand}: {subject}"),
        body: format!("{body}\n\n{brand}"),
    }
}

/// The one-time code of a sign-in, a recovery or a contact change.
pub fn otp(brand: &str, code: &str, minutes: i64, what: &str) -> Text {
    text(
        brand,
        "your one-time code",
        format!(
            "Your {brand} {what} code is {code}. It expires in {minutes} minutes. \
             We will never ask you for it: do not share it with anyone."
        ),
    )
}

/// The user-ID reminder of recovery (several user IDs may share an address).
pub fn user_ids(brand: &str, user_ids: &[String]) -> Text {
    let list = user_ids.join(", ");
    text(
        brand,
        "your user ID",
        format!(
            "You asked for your {brand} user ID. The user ID for this e-mail address: {list}. \
             If this was not you, nobody has signed in: you can ignore this message."
        ),
    )
}

/// A security alert for `event` (one of the contract's security event types).
pub fn alert(brand: &str, event: &str, detail: &str) -> Text {
    let (subject, lead) = match event {
        "enrolled" => ("two-step sign-in set up", "You set up two-step sign-in."),
        "account_locked" => ("sign-in locked", "Your sign-in was locked."),
        "device_added" => (
            "a device was added",
            "A device can now sign in to your account.",
        ),
        "device_removed" => (
            "a device was removed",
            "A device was removed from your account.",
        ),
        "password_changed" => ("password changed", "Your password was changed."),
        "contact_changed" => (
            "contact details changed",
            "Your contact details were changed.",
        ),
        "security_code_changed" => ("security code changed", "Your security code was changed."),
        "recovery_used" => (
            "password reset",
            "Your password was reset with your security code.",
        ),
        "refresh_reuse" => (
            "a sign-in was ended",
            "A sign-in of yours was ended because its credentials were used twice.",
        ),
        _ => ("security alert", "Something changed on your account."),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" {detail}")
    };
    text(
        brand,
        subject,
        format!("{lead}{detail} If this was not you, call the number on your card straight away."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_consecutive_digits_and_the_brand_is_named() {
        let t = otp("Acme Bank", "012345", 5, "sign-in");
        assert!(t.body.contains(" 012345."));
        assert!(t.subject.starts_with("Acme Bank:"));
        let a = alert("Acme Bank", "device_added", "\"Pixel\" was added.");
        assert!(a.body.contains("\"Pixel\" was added."));
        assert!(a.body.contains("call the number on your card"));
    }
}
