//! The console's pages, server-rendered with maud (escaped by default; no
//! script anywhere, so the CSP allows none).

use maud::{html, Markup, DOCTYPE};

use super::{url, Mount};
use crate::flows::operators::{Actor, Role};
use crate::flows::support::{AuditPage, Holder, SearchBy, SearchPage};
use crate::storage::{AuditFilter, MarketSummary, Operator};

/// A message at the top of a page.
pub enum Notice {
    Ok(String),
    Warn(String),
}

pub struct Chrome<'a> {
    pub mount: Mount,
    pub brand: &'a str,
    pub actor: Option<&'a Actor>,
    pub csrf: &'a str,
    pub now: i64,
}

fn when(t: i64) -> String {
    // UTC, to the minute, without a date crate: days since the epoch to a
    // civil date (Howard Hinnant's algorithm).
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

fn minutes_left(until: i64, now: i64) -> i64 {
    ((until - now) + 59) / 60
}

pub fn layout(c: &Chrome<'_>, title: &str, notice: Option<&Notice>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (c.brand) " support console" }
                link rel="stylesheet" href=(url(c.mount, "/static/console.css"));
            }
            body {
                header {
                    span.brand { (c.brand) " · support console" }
                    @if let Some(actor) = c.actor {
                        nav {
                            a href=(url(c.mount, "/")) { "Card holders" }
                            a href=(url(c.mount, "/markets")) { "Markets" }
                            a href=(url(c.mount, "/audit")) { "Audit" }
                            @if actor.role == Role::Admin {
                                a href=(url(c.mount, "/operators")) { "Operators" }
                            }
                        }
                        form.signout method="post" action=(url(c.mount, "/sign-out")) {
                            input type="hidden" name="csrf" value=(c.csrf);
                            span.who { (actor.name) " (" (actor.role.as_str()) ")" }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @match notice {
                        Some(Notice::Ok(m)) => p.notice.ok role="status" { (m) },
                        Some(Notice::Warn(m)) => p.notice.warn role="alert" { (m) },
                        None => {},
                    }
                    (body)
                }
            }
        }
    }
}

pub fn sign_in(csrf: &str, mount: Mount) -> Markup {
    html! {
        form.card method="post" action=(url(mount, "/sign-in")) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Operator name" input name="name" autocomplete="username" required maxlength="32"; }
            label { "Password" input name="password" type="password" autocomplete="current-password" required; }
            button type="submit" { "Continue" }
        }
    }
}

pub fn code(csrf: &str, mount: Mount) -> Markup {
    html! {
        form.card method="post" action=(url(mount, "/sign-in/code")) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Code from your authenticator app"
                input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus;
            }
            button type="submit" { "Sign in" }
        }
    }
}

pub fn enrolment_code(csrf: &str, mount: Mount) -> Markup {
    html! {
        p { "First sign-in (or a new second factor): type the one-time enrolment code the admin gave you with your password." }
        form.card method="post" action=(url(mount, "/sign-in/enrol-code")) autocomplete="off" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Enrolment code"
                input name="enrolment_code" maxlength="64" required autocomplete="off" spellcheck="false";
            }
            button type="submit" { "Continue" }
        }
    }
}

pub fn enrol(csrf: &str, mount: Mount, secret: &str, qr_data_uri: &str) -> Markup {
    html! {
        p { "First sign-in: add the console to an authenticator app. Scan the code, or type the key." }
        div.enrol {
            img.qr src=(qr_data_uri) alt="QR code of the authenticator key" width="220" height="220";
            p { "Key: " code id="totp-secret" { (secret) } }
        }
        form.card method="post" action=(url(mount, "/sign-in/enrol")) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Code the app shows now"
                input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
            }
            button type="submit" { "Confirm and sign in" }
        }
    }
}

pub fn search(mount: Mount, by: SearchBy, q: &str, page: Option<&SearchPage>) -> Markup {
    html! {
        form.search method="get" action=(url(mount, "/")) {
            select name="by" aria-label="Search by" {
                option value="user_id" selected[by == SearchBy::UserId] { "User ID" }
                option value="email" selected[by == SearchBy::Email] { "E-mail" }
                option value="last4" selected[by == SearchBy::Last4] { "Card's last 4 digits" }
            }
            input name="q" value=(q) required maxlength="254" aria-label="Search";
            button type="submit" { "Search" }
        }
        @if let Some(page) = page {
            @if page.users.is_empty() {
                p { "No card holder matches." }
            } @else {
                table {
                    thead { tr { th { "User ID" } th { "Name" } th { "E-mail" } th { "Market" } } }
                    tbody {
                        @for u in &page.users {
                            tr {
                                td { a href=(url(mount, &format!("/holders/{}", u.user_id))) { (u.user_id) } }
                                td { (u.name) }
                                td { (u.email) }
                                td { (u.primary_market) }
                            }
                        }
                    }
                }
                @if let Some(next) = &page.next {
                    a.next href=(format!("{}?by={}&q={}&after={}", url(mount, "/"), by.as_str(), enc(q), enc(next))) { "Next page" }
                }
            }
        }
    }
}

/// Query-string encoding of a value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn post_button(
    mount: Mount,
    csrf: &str,
    path: &str,
    label: &str,
    extra: Option<(&str, &str)>,
) -> Markup {
    html! {
        form.inline method="post" action=(url(mount, path)) {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some((k, v)) = extra { input type="hidden" name=(k) value=(v); }
            button type="submit" { (label) }
        }
    }
}

pub fn holder(c: &Chrome<'_>, h: &Holder) -> Markup {
    let u = &h.user;
    let base = format!("/holders/{}", u.user_id);
    html! {
        section.grid {
            div.card {
                h2 { "Profile" }
                dl {
                    dt { "User ID" } dd { (u.user_id) }
                    dt { "Name" } dd { (u.name) }
                    dt { "E-mail" } dd { (u.email) }
                    dt { "Mobile" } dd { (u.mobile.as_deref().map(mask).unwrap_or_else(|| "none".into())) }
                    dt { "Enrolled" } dd { (u.enrolled_at.map(when).unwrap_or_else(|| "not yet (no security code)".into())) }
                    dt { "Market" } dd { (u.primary_market) " · second factor " (if h.market_requires_second_factor { "required" } else { "off" }) }
                }
            }
            div.card {
                h2 { "Sign-in" }
                @match h.locked_until {
                    Some(until) => {
                        p.state.locked { "Locked for another " (minutes_left(until, c.now)) " min (until " (when(until)) ")." }
                        (post_button(c.mount, c.csrf, &format!("{base}/unlock"), "Unlock", None))
                    }
                    None => p.state.ok { "Not locked." },
                }
                @if let Some(until) = h.code_checks_blocked_until {
                    p.state.locked { "Security-code checks (recovery and caller checks) stopped until " (when(until)) "." }
                    @if c.actor.is_some_and(|a| a.role == Role::Admin) {
                        (post_button(c.mount, c.csrf, &format!("{base}/code-checks/lift"), "Allow security-code checks again", None))
                    }
                }
                h3 { "Verify a caller" }
                form.inline method="post" action=(url(c.mount, &format!("{base}/verify"))) autocomplete="off" {
                    input type="hidden" name="csrf" value=(c.csrf);
                    input name="security_code" type="password" inputmode="numeric" maxlength="9" required aria-label="Security code the caller reads out" placeholder="Security code";
                    button type="submit" { "Check" }
                }
                p.hint { "Each wrong check counts against the same limit as recovery (5 a day)." }
            }
        }
        section.card {
            h2 { "Trusted devices" }
            @if h.devices.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th { "Name" } th { "Platform" } th { "Key storage" } th { "Attestation" } th { "Last used" } th { "Trusted until" } th {} } }
                    tbody {
                        @for d in &h.devices {
                            tr {
                                td { (d.name) }
                                td { (d.platform) }
                                td { (d.key_storage) }
                                td { @match &d.attestation { Some(a) => { (a.format) " · " (a.security_level) }, None => "none" } }
                                td { (d.last_used_at.map(when).unwrap_or_else(|| "never".into())) }
                                td { (when(d.trusted_until)) }
                                td { (post_button(c.mount, c.csrf, &format!("{base}/devices/remove"), "Remove", Some(("device_id", &d.device_id)))) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Active sessions (" (h.sessions.len()) ")" }
            @if !h.sessions.is_empty() {
                table {
                    thead { tr { th { "Signed in" } th { "With" } th { "Device" } th { "Ends" } } }
                    tbody {
                        @for s in &h.sessions {
                            tr { td { (when(s.auth_time)) } td { (s.amr.join(" + ")) } td { (s.device_id.as_deref().unwrap_or("-")) } td { (when(s.expires_at)) } }
                        }
                    }
                }
                (post_button(c.mount, c.csrf, &format!("{base}/sign-out-everywhere"), "Sign out everywhere", None))
            }
        }
        section.card {
            h2 { "Correct name or e-mail" }
            form.stack method="post" action=(url(c.mount, &format!("{base}/profile"))) {
                input type="hidden" name="csrf" value=(c.csrf);
                input type="hidden" name="expected_name" value=(u.name);
                input type="hidden" name="expected_email" value=(u.email);
                label { "Name" input name="name" value=(u.name) required maxlength="128"; }
                label { "E-mail" input name="email" type="email" value=(u.email) required maxlength="254"; }
                button type="submit" { "Save" }
            }
            p.hint { "A new e-mail address is told to the old one too. Nothing secret is sent." }
        }
        section.grid {
            div.card {
                h2 { "Linked cards" }
                @if h.cards.is_empty() { p { "None." } } @else {
                    ul { @for card in &h.cards { li { "•••• " (card.last4) " · " (card.primary_market) @if card.activated_at.is_none() { " · not activated" } } } }
                }
            }
            div.card {
                h2 { "Last security events" }
                @if h.events.is_empty() { p { "None." } } @else {
                    table {
                        tbody {
                            @for e in &h.events {
                                tr {
                                    td { (when(e.at)) }
                                    td { (e.kind) }
                                    td { @if e.changed_by.is_some() { "by the service team" } @else { (e.device_name.as_deref().unwrap_or("")) } }
                                }
                            }
                        }
                    }
                }
                a href=(format!("{}?user_id={}", url(c.mount, "/audit"), enc(&u.user_id))) { "Full audit trail" }
            }
        }
    }
}

fn mask(m: &str) -> String {
    let n = m.chars().count();
    m.chars()
        .enumerate()
        .map(|(i, ch)| if i < 3 || i + 3 >= n { ch } else { '•' })
        .collect()
}

pub fn markets(c: &Chrome<'_>, list: &[MarketSummary]) -> Markup {
    let admin = c.actor.is_some_and(|a| a.role == Role::Admin);
    html! {
        p { "A market that was never configured requires the second factor." }
        table {
            thead { tr { th { "Market" } th { "Second factor" } th { "Card holders" } @if admin { th {} } } }
            tbody {
                @for m in list {
                    tr {
                        td { (m.market) }
                        td { @match m.configured { Some(true) => "required", Some(false) => "off", None => "required (not configured)" } }
                        td { (m.users) }
                        @if admin {
                            td {
                                @let required = m.configured.unwrap_or(true);
                                (post_button(c.mount, c.csrf, "/markets",
                                    &format!("{} for {} card holders", if required { "Turn off" } else { "Require" }, m.users),
                                    Some(("switch", &format!("{}:{}", m.market, if required { "off" } else { "required" })))))
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            h2 { "Configure a market" }
            form.inline method="post" action=(url(c.mount, "/markets")) {
                input type="hidden" name="csrf" value=(c.csrf);
                input name="market" maxlength="2" required placeholder="GB" aria-label="Market";
                select name="second_factor" aria-label="Second factor" { option value="required" { "required" } option value="off" { "off" } }
                button type="submit" { "Save" }
            }
        }
    }
}

pub fn audit(c: &Chrome<'_>, f: &AuditFilter, page: &AuditPage) -> Markup {
    html! {
        form.search method="get" action=(url(c.mount, "/audit")) {
            input name="user_id" value=(f.user_id.as_deref().unwrap_or("")) placeholder="User ID" aria-label="User ID";
            input name="event" value=(f.event.as_deref().unwrap_or("")) placeholder="Event" aria-label="Event";
            input name="operator" value=(f.actor.as_deref().unwrap_or("")) placeholder="Operator" aria-label="Operator";
            label.check { input type="checkbox" name="operators_only" value="1" checked[f.operators_only]; "Operators' actions only" }
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "When" } th { "Event" } th { "Card holder" } th { "Operator" } th { "Device" } th { "IP" } th { "Detail" } } }
            tbody {
                @for (_, e) in &page.lines {
                    tr {
                        td { (when(e.at)) }
                        td { (e.event) }
                        td { (e.user_id.as_deref().unwrap_or("")) }
                        td { (e.actor.as_deref().unwrap_or("")) }
                        td { (e.device_id.as_deref().unwrap_or("")) }
                        td { (e.ip.as_deref().unwrap_or("")) }
                        td { (e.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if let Some(next) = page.next {
            a.next href=(format!("{}?user_id={}&event={}&operator={}&operators_only={}&before={next}",
                url(c.mount, "/audit"),
                enc(f.user_id.as_deref().unwrap_or("")),
                enc(f.event.as_deref().unwrap_or("")),
                enc(f.actor.as_deref().unwrap_or("")),
                if f.operators_only { "1" } else { "" })) { "Older" }
        }
    }
}

pub fn operators(c: &Chrome<'_>, list: &[Operator]) -> Markup {
    html! {
        p { "Operators are added with " code { "devicetrust-server operator add" } " (the password from stdin)." }
        table {
            thead { tr { th { "Name" } th { "Role" } th { "Second factor" } th { "State" } th {} } }
            tbody {
                @for o in list {
                    tr {
                        td { (o.name) }
                        td { (o.role) }
                        td { (if o.totp_enrolled { "enrolled" } else { "enrols at next sign-in" }) }
                        td { (if o.disabled_at.is_some() { "disabled" } else { "active" }) }
                        td {
                            @if c.actor.is_some_and(|a| a.name != o.name) {
                                @if o.disabled_at.is_some() {
                                    (post_button(c.mount, c.csrf, "/operators/enable", "Enable", Some(("name", &o.name))))
                                } @else {
                                    (post_button(c.mount, c.csrf, "/operators/disable", "Disable", Some(("name", &o.name))))
                                }
                                (post_button(c.mount, c.csrf, "/operators/reset-totp", "Reset second factor", Some(("name", &o.name))))
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn message(text: &str) -> Markup {
    html! { p { (text) } }
}

/// The SVG of a QR code as a `data:` URI (the CSP allows `img-src data:`).
pub fn qr_data_uri(text: &str) -> Option<String> {
    use base64::Engine;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::when(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::when(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
