//! The support console over HTTP (docs/CONSOLE.md), attacker first:
//! cookie flags and session fixation, CSRF on every form, operator lockout
//! and TOTP replay, role rules, the caller check on the recovery limit,
//! audit lines with the operator's name and the card holder's own view,
//! two operators at once.

use std::collections::HashMap;

use devicetrust_e2e::{Options, TestServer, ADMIN_TOKEN, SECURITY_CODE};
use devicetrust_server::app::Settings;
use devicetrust_server::flows::operators::{code_at, enrolment_code_hash, new_operator, Role};
use devicetrust_server::password_policy::PasswordPolicy;
use devicetrust_server::secrets::Secret;
use serde_json::json;

const OP_PASSWORD: &str = "Operator pass 4 the console";
/// The one-time enrolment code of every operator `add_operator` makes.
const ENROL_CODE: &str = "TEST-ENRO-LCOD-E234";

async fn server() -> TestServer {
    TestServer::start_with(Options {
        settings: Settings {
            rp_id: devicetrust_e2e::RP_ID.into(),
            admin_token: Some(ADMIN_TOKEN.into()),
            ip_rate_limit_per_minute: 0,
            console_shared: true,
            ..Settings::default()
        },
        ..Options::default()
    })
    .await
}

async fn add_operator(s: &TestServer, name: &str, role: Role) {
    let (mut op, _shown_once) = new_operator(
        s.state().hasher(),
        &PasswordPolicy::default(),
        s.now(),
        name,
        role,
        &Secret::new(OP_PASSWORD),
    )
    .await
    .expect("operator");
    // A code the tests know (the real one is shown once, to the admin).
    op.enrolment_code_hash = Some(enrolment_code_hash(ENROL_CODE));
    s.store.create_operator(op).await.expect("stored");
}

struct Reply {
    status: u16,
    location: String,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

/// A browser of the console: its own cookie jar, no automatic redirects.
struct Browser<'a> {
    s: &'a TestServer,
    http: reqwest::Client,
    jar: HashMap<String, String>,
    secret: Option<String>,
    /// Sent as `X-Forwarded-For` (a server that trusts 127.0.0.1 as its proxy).
    forwarded_for: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(s: &'a TestServer) -> Self {
        Browser {
            s,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: HashMap::new(),
            secret: None,
            forwarded_for: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                if c.contains("Max-Age=0") {
                    self.jar.remove(k);
                } else {
                    self.jar.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let body = resp.text().await.expect("body");
        Reply {
            status,
            location,
            set_cookies,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        let resp = self
            .http
            .get(format!("{}{path}", self.s.base))
            .header("cookie", self.cookie_header())
            .header(
                "x-forwarded-for",
                self.forwarded_for.as_deref().unwrap_or("192.0.2.1"),
            )
            .send()
            .await
            .expect("get");
        self.take(resp).await
    }

    async fn post_with(&mut self, path: &str, form: &[(&str, &str)], site: Option<&str>) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = self
            .http
            .post(format!("{}{path}", self.s.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "x-forwarded-for",
                self.forwarded_for.as_deref().unwrap_or("192.0.2.1"),
            )
            .body(body);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let resp = req.send().await.expect("post");
        self.take(resp).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.post_with(path, form, Some("same-origin")).await
    }

    /// The CSRF token of the page at `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        field(&page.body, "csrf").unwrap_or_else(|| panic!("no csrf on {path}: {}", page.body))
    }

    async fn password(&mut self, name: &str, password: &str) -> Reply {
        let csrf = self.csrf("/console/sign-in").await;
        self.post(
            "/console/sign-in",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }

    /// Password, then TOTP (enrolling the first time); the clock moves on
    /// a step first so that each sign-in has a fresh code.
    async fn sign_in(&mut self, name: &str) {
        let r = self.password(name, OP_PASSWORD).await;
        assert_eq!(r.status, 303, "password: {}", r.body);
        self.s.clock.advance(30);
        let stage = if r.location.ends_with("/enrol") {
            let r = self.enrolment_code(ENROL_CODE).await;
            assert_eq!(r.status, 303, "enrolment code: {}", r.body);
            assert!(r.location.ends_with("/sign-in/enrol"), "{}", r.location);
            let page = self.get("/console/sign-in/enrol").await;
            let secret = between(&page.body, "id=\"totp-secret\">", "<").expect("secret");
            assert!(
                page.body.contains("data:image/svg+xml;base64,"),
                "a QR code"
            );
            self.secret = Some(secret);
            "/console/sign-in/enrol"
        } else {
            assert!(r.location.ends_with("/sign-in/code"), "{}", r.location);
            "/console/sign-in/code"
        };
        let csrf = self.csrf(stage).await;
        let code = self.code();
        let r = self.post(stage, &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(r.status, 303, "code: {}", r.body);
        assert_eq!(r.location, "/console/");
    }

    /// The enrolment-code step of a first sign-in.
    async fn enrolment_code(&mut self, code: &str) -> Reply {
        let page = self.get("/console/sign-in/enrol").await;
        assert!(
            !page.body.contains("totp-secret"),
            "no key before the enrolment code"
        );
        let csrf = field(&page.body, "csrf").expect("csrf");
        let r = self
            .post(
                "/console/sign-in/enrol-code",
                &[("csrf", &csrf), ("enrolment_code", code)],
            )
            .await;
        r
    }

    fn code(&self) -> String {
        code_at(
            self.secret.as_deref().expect("enrolled"),
            self.s.now() as u64,
        )
        .expect("code")
    }
}

fn enc(s: &str) -> String {
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

fn between(body: &str, start: &str, end: &str) -> Option<String> {
    let i = body.find(start)? + start.len();
    let j = body[i..].find(end)? + i;
    Some(body[i..j].to_owned())
}

fn field(body: &str, name: &str) -> Option<String> {
    between(body, &format!("name=\"{name}\" value=\""), "\"")
}

async fn locked_holder(s: &TestServer, user_id: &str) -> (String, devicetrust_e2e::DeviceKey) {
    let (_, device_id, key) = s.user_with_device(user_id).await;
    for _ in 0..5 {
        let a = s.password(user_id, "wrong password 1A", None).await;
        assert!(a.status == 401 || a.status == 423, "{:?}", a.body);
    }
    let a = s.password(user_id, devicetrust_e2e::PASSWORD, None).await;
    assert_eq!(a.status, 423, "locked: {:?}", a.body);
    (device_id, key)
}

#[tokio::test]
async fn cookies_are_locked_down_and_sign_in_rotates_the_session() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    let mut b = Browser::new(&s);
    let page = b.get("/console/sign-in").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline") && csp.contains("default-src 'none'"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(!page.body.contains("<script"), "no script anywhere");

    let r = b.password("alice", OP_PASSWORD).await;
    assert_eq!(r.status, 303);
    let pending = r
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Secure-dtc_session="))
        .expect("session cookie")
        .clone();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(pending.contains(flag), "{flag} missing: {pending}");
    }
    let pending_value = b.jar["__Secure-dtc_session"].clone();
    // The pending session is no signed-in one.
    assert_eq!(b.get("/console/").await.status, 303);

    s.clock.advance(30);
    b.enrolment_code(ENROL_CODE).await;
    let enrol = b.get("/console/sign-in/enrol").await;
    b.secret = between(&enrol.body, "id=\"totp-secret\">", "<");
    let csrf = field(&enrol.body, "csrf").unwrap();
    let code = b.code();
    let r = b
        .post(
            "/console/sign-in/enrol",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let full_value = b.jar["__Secure-dtc_session"].clone();
    assert_ne!(full_value, pending_value, "a new session id after sign-in");
    assert_eq!(b.get("/console/").await.status, 200);

    // The pending id (say, planted by an attacker) does not sign anyone in.
    let mut planted = Browser::new(&s);
    planted
        .jar
        .insert("__Secure-dtc_session".into(), pending_value);
    assert_eq!(planted.get("/console/").await.status, 303);

    // The TOTP secret is not in the database in the clear.
    let secret = b.secret.clone().unwrap();
    let op = s.store.operator("alice").await.unwrap().unwrap();
    assert!(op.totp_enrolled);
    let sealed = op.totp_sealed.unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));
    assert!(sealed.len() > 20);

    // Sign-out ends the session server-side, not just in the browser.
    let csrf = b.csrf("/console/").await;
    let kept = b.jar["__Secure-dtc_session"].clone();
    let r = b.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    let mut replay = Browser::new(&s);
    replay.jar.insert("__Secure-dtc_session".into(), kept);
    assert_eq!(replay.get("/console/").await.status, 303);
}

#[tokio::test]
async fn every_form_needs_its_csrf_token_and_cross_site_posts_are_refused() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    locked_holder(&s, "jane").await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let csrf = b.csrf("/console/holders/jane").await;

    let missing = b.post("/console/holders/jane/unlock", &[]).await;
    assert_eq!(missing.status, 400);
    let wrong = b
        .post("/console/holders/jane/unlock", &[("csrf", "forged")])
        .await;
    assert_eq!(wrong.status, 403);
    let cross = b
        .post_with(
            "/console/holders/jane/unlock",
            &[("csrf", &csrf)],
            Some("cross-site"),
        )
        .await;
    assert_eq!(cross.status, 403);
    // Still locked: none of them acted.
    let page = b.get("/console/holders/jane").await;
    assert!(page.body.contains("Locked for another"), "{}", page.body);
    assert!(!s
        .audit_events("jane")
        .await
        .contains(&"unlocked".to_owned()));

    // Another operator's token is not this session's.
    add_operator(&s, "bob", Role::Support).await;
    let mut other = Browser::new(&s);
    other.sign_in("bob").await;
    let bobs = other.csrf("/console/").await;
    assert_ne!(bobs, csrf);
    let r = b
        .post("/console/holders/jane/unlock", &[("csrf", &bobs)])
        .await;
    assert_eq!(r.status, 403);

    // The sign-in form too: without the pre-session cookie it is refused.
    let mut fresh = Browser::new(&s);
    let token = fresh.csrf("/console/sign-in").await;
    fresh.jar.clear();
    let r = fresh
        .post(
            "/console/sign-in",
            &[
                ("csrf", &token),
                ("name", "alice"),
                ("password", OP_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403);

    // With the token it works.
    let r = b
        .post("/console/holders/jane/unlock", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Unlocked"));
}

#[tokio::test]
async fn operators_lock_out_with_an_end_codes_do_not_replay_and_names_do_not_leak() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;

    // The same code again within its step: refused.
    let r = b.password("alice", OP_PASSWORD).await;
    assert!(r.location.ends_with("/sign-in/code"));
    let csrf = b.csrf("/console/sign-in/code").await;
    let code = b.code();
    let r = b
        .post("/console/sign-in/code", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(r.status, 401, "a replayed code is refused: {}", r.body);
    assert!(s
        .store
        .audit_page(
            &devicetrust_server::storage::AuditFilter {
                actor: Some("alice".into()),
                event: Some("operator_signin_failed".into()),
                ..Default::default()
            },
            10
        )
        .await
        .unwrap()
        .iter()
        .any(|(_, e)| e.reason.as_deref() == Some("operator_totp_replayed")));

    // A wrong password for a real operator and any password for a name
    // that does not exist answer alike.
    let mut x = Browser::new(&s);
    let real = x.password("alice", "not the password 1").await;
    let mut y = Browser::new(&s);
    let ghost = y.password("mallory", "not the password 1").await;
    assert_eq!(real.status, ghost.status);
    let text = |body: &str| between(body, "<p class=\"notice warn\" role=\"alert\">", "<");
    assert_eq!(text(&real.body), text(&ghost.body));
    assert_eq!(real.status, 401);

    // Five failures (the replay and the wrong password count) lock alice;
    // then even her right password is refused, until the lock ends.
    for _ in 0..3 {
        x.password("alice", "not the password 1").await;
    }
    let r = x.password("alice", OP_PASSWORD).await;
    assert_eq!(r.status, 423, "{}", r.body);
    assert!(r.body.contains("stopped for another 15 min"), "{}", r.body);
    // The same for a name that does not exist.
    for _ in 0..4 {
        y.password("mallory", "not the password 1").await;
    }
    assert_eq!(y.password("mallory", "x").await.status, 423);

    s.clock.advance(15 * 60 + 1);
    let mut z = Browser::new(&s);
    z.secret = b.secret.clone();
    z.sign_in("alice").await;
}

#[tokio::test]
async fn support_cannot_manage_markets_or_operators_admin_can() {
    let s = server().await;
    add_operator(&s, "sam", Role::Support).await;
    add_operator(&s, "ada", Role::Admin).await;
    s.add_user("jane", "SE", None).await;
    let mut sup = Browser::new(&s);
    sup.sign_in("sam").await;
    let csrf = sup.csrf("/console/markets").await;
    let r = sup
        .post(
            "/console/markets",
            &[("csrf", &csrf), ("market", "SE"), ("second_factor", "off")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(s.store.market_requires_second_factor("SE").await.unwrap());
    assert_eq!(sup.get("/console/operators").await.status, 403);
    let r = sup
        .post(
            "/console/operators/disable",
            &[("csrf", &csrf), ("name", "ada")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = sup
        .post(
            "/console/operators/reset-totp",
            &[("csrf", &csrf), ("name", "ada")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!sup
        .get("/console/")
        .await
        .body
        .contains("/console/operators"));

    let mut adm = Browser::new(&s);
    adm.sign_in("ada").await;
    let csrf = adm.csrf("/console/markets").await;
    let r = adm
        .post("/console/markets", &[("csrf", &csrf), ("switch", "SE:off")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("SE: second factor off for 1 card holders"),
        "{}",
        r.body
    );
    assert!(!s.store.market_requires_second_factor("SE").await.unwrap());
    // Disabling sam ends sam's session at once.
    let r = adm
        .post(
            "/console/operators/disable",
            &[("csrf", &csrf), ("name", "sam")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sup.get("/console/").await.status, 303);
    let lines = s
        .store
        .audit_page(
            &devicetrust_server::storage::AuditFilter {
                actor: Some("ada".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    let events: Vec<&str> = lines.iter().map(|(_, e)| e.event.as_str()).collect();
    assert!(events.contains(&"market_changed") && events.contains(&"operator_disabled"));
}

#[tokio::test]
async fn caller_checks_count_against_the_recovery_limit_and_are_audited() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    s.add_user("jane", "GB", None).await;
    s.sign_in_with_otp("jane", None).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let csrf = b.csrf("/console/holders/jane").await;
    let r = b
        .post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", SECURITY_CODE)],
        )
        .await;
    assert!(
        r.body.contains("Match: the security code is right."),
        "{}",
        r.body
    );
    for _ in 0..4 {
        let r = b
            .post(
                "/console/holders/jane/verify",
                &[("csrf", &csrf), ("security_code", "246813")],
            )
            .await;
        assert!(r.body.contains("No match."), "{}", r.body);
    }
    // The fifth wrong code through recovery uses up the same allowance ...
    let a = s
        .post(
            "/v1/recovery/password",
            json!({ "user_id": "jane", "security_code": "246813" }),
            None,
        )
        .await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    // ... so even the right code is no longer checked, in the console or by recovery.
    let r = b
        .post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", SECURITY_CODE)],
        )
        .await;
    assert!(r.body.contains("Too many failed attempts"), "{}", r.body);
    let a = s
        .post(
            "/v1/recovery/password",
            json!({ "user_id": "jane", "security_code": SECURITY_CODE }),
            None,
        )
        .await;
    assert_eq!(a.status, 423, "{:?}", a.body);

    let lines = s
        .store
        .audit_page(
            &devicetrust_server::storage::AuditFilter {
                user_id: Some("jane".into()),
                operators_only: true,
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    let count = |ev: &str| lines.iter().filter(|(_, e)| e.event == ev).count();
    assert_eq!(count("caller_verified"), 1);
    assert_eq!(count("caller_verify_failed"), 4);
    assert_eq!(count("caller_check_refused"), 1);
    assert!(lines
        .iter()
        .all(|(_, e)| e.actor.as_deref() == Some("alice")));
    // The code never reaches the audit trail.
    assert!(!lines
        .iter()
        .any(|(_, e)| format!("{e:?}").contains(SECURITY_CODE)));
}

#[tokio::test]
async fn unlock_remove_and_sign_out_are_audited_and_shown_to_the_holder() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    let (device_id, key) = locked_holder(&s, "jane").await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let search = b.get("/console/?by=user_id&q=JA").await;
    assert!(
        search.body.contains("/console/holders/jane"),
        "{}",
        search.body
    );
    let page = b.get("/console/holders/jane").await;
    assert!(page.body.contains("Jane&#39;s phone") || page.body.contains("Jane's phone"));
    assert!(page.body.contains("Active sessions (1)"), "{}", page.body);
    let csrf = field(&page.body, "csrf").unwrap();

    let r = b
        .post("/console/holders/jane/unlock", &[("csrf", &csrf)])
        .await;
    assert!(r.body.contains("Not locked."), "{}", r.body);
    let r = b
        .post(
            "/console/holders/jane/devices/remove",
            &[("csrf", &csrf), ("device_id", &device_id)],
        )
        .await;
    assert!(r.body.contains("Device removed"), "{}", r.body);
    // A second operator pressing Remove a moment later is told, not failed.
    let r = b
        .post(
            "/console/holders/jane/devices/remove",
            &[("csrf", &csrf), ("device_id", &device_id)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("already removed"), "{}", r.body);
    let a = s.challenge(&device_id).await;
    assert_eq!(
        a.code(),
        "device_not_recognized",
        "a removed device cannot sign in"
    );
    let _ = key;

    let session = s.sign_in_with_otp("jane", None).await;
    let r = b
        .post(
            "/console/holders/jane/sign-out-everywhere",
            &[("csrf", &csrf)],
        )
        .await;
    assert!(r.body.contains("Signed out everywhere"), "{}", r.body);
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(s.get("/v1/account/events", Some(token)).await.status, 401);

    // The card holder's own list says who: the service team (no name).
    let session = s.sign_in_with_otp("jane", None).await;
    let token = session["access_token"].as_str().unwrap();
    let events = s.get("/v1/account/events", Some(token)).await;
    let list = events.body["events"].as_array().unwrap();
    let by_team: Vec<&str> = list
        .iter()
        .filter(|e| e["changed_by"] == "service_team")
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in ["unlocked", "device_removed", "signed_out_everywhere"] {
        assert!(by_team.contains(&kind), "{kind} in {by_team:?}");
    }
    assert!(!events.body.to_string().contains("alice"));

    // The audit view, filtered by operator, lists them with alice's name.
    let audit = b
        .get("/console/audit?operator=alice&operators_only=1")
        .await;
    for ev in [
        "unlocked",
        "device_removed",
        "signed_out_everywhere",
        "holder_viewed",
    ] {
        assert!(audit.body.contains(ev), "{ev} in the audit view");
    }
    let bad = b.get("/console/audit?event=DROP%20TABLE").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn two_operators_correcting_the_same_e_mail_do_not_overwrite_each_other() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    add_operator(&s, "bob", Role::Support).await;
    s.add_user("jane", "GB", None).await;
    let mut a = Browser::new(&s);
    a.sign_in("alice").await;
    let mut b = Browser::new(&s);
    b.sign_in("bob").await;
    let pa = a.get("/console/holders/jane").await;
    let pb = b.get("/console/holders/jane").await;
    let form = |page: &Reply, email: &'static str| {
        vec![
            ("csrf".to_owned(), field(&page.body, "csrf").unwrap()),
            ("expected_name".to_owned(), "Jane Doe".to_owned()),
            ("expected_email".to_owned(), "jane@example.com".to_owned()),
            ("name".to_owned(), "Jane Doe".to_owned()),
            ("email".to_owned(), email.to_owned()),
        ]
    };
    let fa = form(&pa, "jane.doe@example.org");
    let fa: Vec<(&str, &str)> = fa.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = a.post("/console/holders/jane/profile", &fa).await;
    assert!(r.body.contains("Saved."), "{}", r.body);
    let fb = form(&pb, "jd@example.net");
    let fb: Vec<(&str, &str)> = fb.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post("/console/holders/jane/profile", &fb).await;
    assert!(r.body.contains("Not saved"), "{}", r.body);
    let user = s.store.user("jane").await.unwrap().unwrap();
    assert_eq!(user.email, "jane.doe@example.org");

    // The old address is told; nothing secret goes to either.
    s.settle().await;
    let msgs = s.outbox_messages();
    let to_old = msgs
        .iter()
        .filter(|m| m["to"] == "jane@example.com" && m["event"] == "contact_changed")
        .count();
    assert_eq!(to_old, 1, "{msgs:?}");
    assert!(msgs
        .iter()
        .filter(|m| m["event"] == "contact_changed")
        .all(|m| m["code"].is_null()));

    // Bad input is a clear 200 page with the reason, not a 500.
    let mut bad = fa.clone();
    bad.retain(|(k, _)| *k != "email");
    bad.push(("email", "not-an-address"));
    let r = a.post("/console/holders/jane/profile", &bad).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("email"), "{}", r.body);
    let garbage = a.post("/console/holders/jane/profile", &[("x", "y")]).await;
    assert_eq!(garbage.status, 400);
    assert_eq!(a.get("/console/holders/NO%20SUCH").await.status, 400);
    assert_eq!(a.get("/console/holders/nosuch").await.status, 404);
}

#[tokio::test]
async fn search_is_paged() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    for i in 0..27 {
        let user = format!("pg{i:02}");
        s.store
            .create_user(devicetrust_server::storage::User {
                user_id: user.clone(),
                name: "Page Test".into(),
                email: "shared@example.com".into(),
                mobile: None,
                primary_market: "GB".into(),
                password_hash: "x".into(),
                security_code_hash: None,
                enrolled_at: None,
                created_at: s.now(),
                mobile_verified: false,
            })
            .await
            .unwrap();
    }
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let p1 = b.get("/console/?by=email&q=SHARED%40example.com").await;
    assert_eq!(p1.body.matches("/console/holders/pg").count(), 25);
    let next = between(&p1.body, "class=\"next\" href=\"", "\"").expect("next link");
    let p2 = b.get(&next.replace("&amp;", "&")).await;
    assert_eq!(
        p2.body.matches("/console/holders/pg").count(),
        2,
        "{}",
        p2.body
    );
    assert!(p2.body.contains("pg26"));
    let bad = b.get("/console/?by=last4&q=12a4").await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("4 digits"));
}

// ---- outside penetration test findings ----------------------------------

/// The console on its own listener (`--console-listen`), as `serve` starts
/// it: `console::router` on `http_server::run_with_tls`, sharing the state.
async fn own_listener(
    s: &TestServer,
    limits: devicetrust_server::http_server::ConnectionLimits,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = devicetrust_server::console::router(
        s.state().clone(),
        devicetrust_server::console::Mount::OwnListener,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(devicetrust_server::http_server::run(
        router,
        listener,
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// Finding: the console's own listener has none of the API router's
/// request layers, among them the body timeout. A client that sends the
/// headers of a POST and never its body holds the connection (and a
/// `max_connections` slot) forever: 4096 such sockets and nobody can open
/// the console. The API's listener answers 408 after `body_timeout`.
#[tokio::test]
async fn own_listener_cuts_off_a_half_sent_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server().await;
    let (addr, _stop) = own_listener(
        &s,
        devicetrust_server::http_server::ConnectionLimits {
            body_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"POST /console/sign-in HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf=",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("the console's own listener kept a half-sent body open for 5 s (body_timeout 1 s)")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// Finding: requests on the console's own listener do not run to
/// completion (`app::run_to_completion` wraps only the API's router). A
/// caller check whose client goes away while the security code is being
/// hashed has been counted against the card holder's recovery limit (and
/// the operator's cap) but is never audited: `caller_verify_failed` lines
/// no longer add up to the checks spent, and five such drops stop a card
/// holder's recovery for a day without a single caller-check line. The
/// same drop between a commit and its audit/alert (unlock, device removal,
/// an e-mail correction) leaves a change nobody is told about.
#[tokio::test]
async fn own_listener_audits_a_caller_check_whose_client_went_away() {
    use tokio::io::AsyncWriteExt;
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    s.add_user("jane", "GB", None).await;
    s.sign_in_with_otp("jane", None).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let csrf = b.csrf("/console/holders/jane").await;
    let session = b.jar["__Secure-dtc_session"].clone();
    let (addr, _stop) = own_listener(&s, Default::default()).await;

    // The same session on the console's own listener (its cookie name).
    let body = format!("csrf={}&security_code=246813", enc(&csrf));
    let req = format!(
        "POST /console/holders/jane/verify HTTP/1.1\r\nHost: x\r\n\
         Cookie: __Host-dtc_session={session}\r\nSec-Fetch-Site: same-origin\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(req.as_bytes()).await.unwrap();
    // Counted (both reservations come before the hash); now hashing.
    let hasher = s.state().hasher();
    let start = std::time::Instant::now();
    while hasher.queued() == 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no hash seen"
        );
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
    drop(c); // the operator's browser goes away mid-hash
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    // One more wrong check, to completion: how many are left tells how
    // many were counted.
    let r = b
        .post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", "246813")],
        )
        .await;
    let left: i64 = between(&r.body, "No match. ", " more")
        .unwrap_or_else(|| panic!("{}", r.body))
        .parse()
        .unwrap();
    let counted = 5 - left;
    let lines = s
        .store
        .audit_page(
            &devicetrust_server::storage::AuditFilter {
                user_id: Some("jane".into()),
                event: Some("caller_verify_failed".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(
        lines.len() as i64,
        counted,
        "{counted} caller checks were counted against jane's recovery limit, \
         {} audited",
        lines.len()
    );
}

/// Finding: the console's sign-in form is not under the per-IP limit
/// (`--ip-rate-limit`) that every card holder's sign-in endpoint is. Each
/// POST costs an argon2id hash on the pool the card holders share (a dummy
/// one for unknown names), writes an `operator:NAME` attempts row that
/// lives for a day, and an audit line: one client can keep the hashing
/// pool full (card holders' password sign-ins are turned away), grow the
/// attempts and audit tables at hashing speed, and lock every guessable
/// operator name, all from one address.
#[tokio::test]
async fn console_sign_in_is_under_the_per_ip_limit() {
    let s = TestServer::start_with(Options {
        settings: Settings {
            rp_id: devicetrust_e2e::RP_ID.into(),
            admin_token: Some(ADMIN_TOKEN.into()),
            ip_rate_limit_per_minute: 3,
            console_shared: true,
            ..Settings::default()
        },
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let mut b = Browser::new(&s);
        let r = b.password(&format!("ghost{i}"), "not the password 1").await;
        statuses.push(r.status);
    }
    assert!(
        statuses.contains(&429),
        "8 console sign-ins from one address within a minute, limit 3: {statuses:?}"
    );
}

/// Finding: the lockout key of a malformed operator name is meant to be
/// cut at 64 bytes (`raw_name.get(..64)`), but `get` is `None` when byte
/// 64 falls inside a multi-byte character and then the whole name is the
/// key: a 16 KiB name is stored in full in `attempts` (and each distinct
/// one is a new row for a day).
#[tokio::test]
async fn operator_lockout_keys_are_bounded_for_any_name() {
    let s = server().await;
    let long = format!("{}é{}", "a".repeat(63), "b".repeat(10_000));
    for _ in 0..5 {
        let mut b = Browser::new(&s);
        let r = b.password(&long, "not the password 1").await;
        assert!(r.status == 401 || r.status == 423, "{}", r.status);
    }
    let full_key = format!("operator:{}", long.to_ascii_lowercase());
    assert!(
        s.store
            .locked_until(&full_key, s.now())
            .await
            .unwrap()
            .is_none(),
        "the whole 10 KB name is a lockout key"
    );
}

/// Finding: sessions stopped at the password (stage `totp`/`enrol`) count
/// towards the cap of 5 sessions per operator, and the cap ends the oldest,
/// signed-in ones first. Whoever knows only an operator's password (not
/// the second factor) signs the operator out at will, without a lockout (a
/// right password is refunded) and without an audit line.
#[tokio::test]
async fn password_only_sign_ins_do_not_end_an_operators_signed_in_session() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    assert_eq!(b.get("/console/").await.status, 200);
    for _ in 0..5 {
        s.clock.advance(1);
        let mut attacker = Browser::new(&s);
        let r = attacker.password("alice", OP_PASSWORD).await;
        assert_eq!(r.status, 303);
        assert!(r.location.ends_with("/sign-in/code"), "{}", r.location);
    }
    assert_eq!(
        b.get("/console/").await.status,
        200,
        "five password-only sign-ins ended alice's signed-in session"
    );
}

/// Finding (the documented residual, judged): "unlock ... also clears the
/// security-code counts (the operator has verified the caller)" — nothing
/// checks that the caller was verified. The card-holder page offers no
/// Unlock button when only security-code checks are stopped, but a crafted
/// POST to /unlock lifts that stop, so a rogue operator alternates wrong
/// checks and unlocks (bounded only by their own 20 a day), and a social
/// engineer gets a locked-out holder's recovery allowance back by phone.
#[tokio::test]
async fn unlock_without_a_verified_caller_keeps_the_security_code_stop() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    s.add_user("jane", "GB", None).await;
    s.sign_in_with_otp("jane", None).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let csrf = b.csrf("/console/holders/jane").await;
    for _ in 0..5 {
        b.post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", "246813")],
        )
        .await;
    }
    let page = b.get("/console/holders/jane").await;
    assert!(page.body.contains("checks) stopped until"), "{}", page.body);
    assert!(
        !page.body.contains("/unlock"),
        "no Unlock button is offered"
    );
    // The crafted POST the page does not offer.
    b.post("/console/holders/jane/unlock", &[("csrf", &csrf)])
        .await;
    let r = b
        .post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", "246813")],
        )
        .await;
    assert!(
        r.body.contains("Too many failed attempts"),
        "an unlock with no verified caller gave the code checks back: {}",
        r.body
    );
}

// ---- design weaknesses of the review, fixed -----------------------------

/// An admin's "reset second factor" ends the operator's sessions at once
/// (like disabling): whoever holds a session of a lost phone's owner is out.
/// A right password at the password step is audited (never the password).
#[tokio::test]
async fn resetting_the_second_factor_ends_the_operators_sessions() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    add_operator(&s, "ada", Role::Admin).await;
    let mut alice = Browser::new(&s);
    alice.sign_in("alice").await;
    assert_eq!(alice.get("/console/").await.status, 200);
    let mut ada = Browser::new(&s);
    ada.sign_in("ada").await;
    let csrf = ada.csrf("/console/operators").await;
    let r = ada
        .post(
            "/console/operators/reset-totp",
            &[("csrf", &csrf), ("name", "alice")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("their sessions ended"), "{}", r.body);
    assert_eq!(
        alice.get("/console/").await.status,
        303,
        "alice's session outlived the reset of her second factor"
    );
    let lines = s
        .store
        .audit_page(
            &devicetrust_server::storage::AuditFilter {
                actor: Some("alice".into()),
                event: Some("operator_password_accepted".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(lines.len(), 1, "alice's one password step is audited");
    assert!(!lines[0]
        .1
        .reason
        .clone()
        .unwrap_or_default()
        .contains(OP_PASSWORD));
}

/// A user-ID prefix is the range [prefix, successor): neighbours just
/// outside it (the successor itself, a longer id after it) are not found.
#[tokio::test]
async fn user_id_prefix_search_is_a_bounded_range() {
    assert_eq!(
        devicetrust_server::storage::prefix_end("zz-").as_deref(),
        Some("zz.")
    );
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    for id in ["zz,a", "zz-1", "zz-2", "zz.a", "zz.1", "zz0a"] {
        if devicetrust_server::validate::user_id(id).is_ok() {
            s.add_user(id, "GB", None).await;
        }
    }
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let page = b.get("/console/?by=user_id&q=zz-").await;
    assert_eq!(page.status, 200);
    for id in ["zz-1", "zz-2"] {
        assert!(
            page.body.contains(&format!("/holders/{id}\"")),
            "{id}: {}",
            page.body
        );
    }
    for id in ["zz.a", "zz.1", "zz0a"] {
        assert!(
            !page.body.contains(&format!("/holders/{id}\"")),
            "{id}: {}",
            page.body
        );
    }
}

/// Lockout is per (name, client network) at 5, per name across networks at
/// 20: failures from one network lock the name there, not for the operator
/// signing in from elsewhere.
#[tokio::test]
async fn one_network_cannot_lock_an_operator_out_from_elsewhere() {
    let s = TestServer::start_with(Options {
        settings: Settings {
            rp_id: devicetrust_e2e::RP_ID.into(),
            admin_token: Some(ADMIN_TOKEN.into()),
            ip_rate_limit_per_minute: 0,
            console_shared: true,
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()],
            ..Settings::default()
        },
        ..Options::default()
    })
    .await;
    add_operator(&s, "alice", Role::Support).await;
    for _ in 0..6 {
        let mut outsider = Browser::new(&s);
        outsider.forwarded_for = Some("203.0.113.7".into());
        let r = outsider.password("alice", "not the password 1").await;
        assert!(r.status == 401 || r.status == 423, "{}", r.status);
    }
    let mut outsider = Browser::new(&s);
    outsider.forwarded_for = Some("203.0.113.7".into());
    let r = outsider.password("alice", OP_PASSWORD).await;
    assert_eq!(r.status, 423, "the outsider's network is locked");
    let mut alice = Browser::new(&s);
    alice.forwarded_for = Some("198.51.100.20".into());
    alice.sign_in("alice").await;
    assert_eq!(alice.get("/console/").await.status, 200);
}

/// The security-code stop is lifted only by an admin's own action
/// (audited, the holder told); an unlock right after this operator's match
/// clears the count below the stop.
#[tokio::test]
async fn an_admin_lifts_a_security_code_stop() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    add_operator(&s, "ada", Role::Admin).await;
    s.add_user("jane", "GB", None).await;
    s.sign_in_with_otp("jane", None).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice").await;
    let csrf = b.csrf("/console/holders/jane").await;
    // Two wrong, one right, then an unlock: the count starts again.
    for code in ["246813", "246813", SECURITY_CODE] {
        b.post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", code)],
        )
        .await;
    }
    b.post("/console/holders/jane/unlock", &[("csrf", &csrf)])
        .await;
    let r = b
        .post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", "246813")],
        )
        .await;
    assert!(r.body.contains("No match. 4 more"), "{}", r.body);
    for _ in 0..4 {
        b.post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", "246813")],
        )
        .await;
    }
    // Support cannot lift the stop, even by a crafted POST.
    let r = b
        .post("/console/holders/jane/code-checks/lift", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let mut ada = Browser::new(&s);
    ada.sign_in("ada").await;
    let page = ada.get("/console/holders/jane").await;
    assert!(page.body.contains("/code-checks/lift"), "{}", page.body);
    let csrf_ada = field(&page.body, "csrf").unwrap();
    let r = ada
        .post(
            "/console/holders/jane/code-checks/lift",
            &[("csrf", &csrf_ada)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(s
        .audit_events("jane")
        .await
        .contains(&"code_checks_lifted".to_owned()));
    let r = b
        .post(
            "/console/holders/jane/verify",
            &[("csrf", &csrf), ("security_code", SECURITY_CODE)],
        )
        .await;
    assert!(r.body.contains("Match"), "{}", r.body);
}

/// A password alone does not enrol a second factor: the first sign-in (and
/// the one after a reset) needs the one-time enrolment code, which is
/// counted like a password, expires, is spent by the enrolment, and is
/// issued anew (shown once) by an admin's reset.
#[tokio::test]
async fn enrolling_a_second_factor_needs_the_one_time_enrolment_code() {
    let s = server().await;
    add_operator(&s, "alice", Role::Support).await;
    add_operator(&s, "ada", Role::Admin).await;
    // Password right, enrolment code wrong: no key shown, counted.
    let mut attacker = Browser::new(&s);
    let r = attacker.password("alice", OP_PASSWORD).await;
    assert!(r.location.ends_with("/sign-in/enrol"), "{}", r.location);
    let r = attacker.enrolment_code("AAAA-BBBB-CCCC-DDDD").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!r.body.contains("totp-secret"));
    assert!(
        !s.store
            .operator("alice")
            .await
            .unwrap()
            .unwrap()
            .totp_enrolled
    );
    // The right one (any case, spaces for dashes) leads to the key.
    let mut alice = Browser::new(&s);
    alice.sign_in("alice").await;
    let accepted = s
        .store
        .audit_page(
            &devicetrust_server::storage::AuditFilter {
                actor: Some("alice".into()),
                event: Some("operator_enrolment_code_accepted".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1);
    let op = s.store.operator("alice").await.unwrap().unwrap();
    assert!(
        op.totp_enrolled && op.enrolment_code_hash.is_none(),
        "spent"
    );

    // An admin's reset issues a new code, shown once; the old one is dead.
    let mut ada = Browser::new(&s);
    ada.sign_in("ada").await;
    let csrf = ada.csrf("/console/operators").await;
    let r = ada
        .post(
            "/console/operators/reset-totp",
            &[("csrf", &csrf), ("name", "alice")],
        )
        .await;
    let code = between(&r.body, "the enrolment code ", " (shown only now").expect("the code");
    let mut again = Browser::new(&s);
    again.password("alice", OP_PASSWORD).await;
    assert_eq!(again.enrolment_code(ENROL_CODE).await.status, 401);
    let r = again
        .enrolment_code(&code.to_lowercase().replace('-', " "))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // Expired after 24 hours.
    add_operator(&s, "bob", Role::Support).await;
    s.clock.advance(24 * 3600 + 1);
    let mut late = Browser::new(&s);
    late.password("bob", OP_PASSWORD).await;
    let r = late.enrolment_code(ENROL_CODE).await;
    assert_eq!(r.status, 401, "{}", r.body);
}
