//! Delivery against real servers on 127.0.0.1: an SMTP server (Python's
//! aiosmtpd: plain, STARTTLS and implicit TLS with a test CA, AUTH), SMS
//! webhook receivers (axum) that check the signature over the exact body,
//! carriers that are down or hang, and the alert queue.
//!
//! The SMTP tests need `python3 -m pip install aiosmtpd` (scripts/test
//! installs it): without it they are skipped, except with CI=true where
//! they fail.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use devicetrust_server::notify::{
    AlertQueue, Channel, Delivery, DeliveryConfig, Message, Notifier, NotifyError, Outbox, Purpose,
    Retry, SmsWebhook, Smtp, SIGNATURE_HEADER,
};
use devicetrust_server::secrets::new_id;
use serde_json::Value;

const SECRET: &str = "webhook-secret-0123456789";
const FROM: &str = "Example Bank <no-reply@bank.example>";

fn message(channel: Channel, to: &str, purpose: Purpose, code: Option<&str>) -> Message {
    let text = match code {
        Some(code) => format!("Your sign-in code is {code}. It expires in 5 minutes."),
        None => "A new device was added to your account.".to_owned(),
    };
    Message {
        channel,
        to: to.to_owned(),
        user_id: "jane.doe".to_owned(),
        purpose,
        code: code.map(str::to_owned),
        event: (purpose == Purpose::Alert).then(|| "device_added".to_owned()),
        subject: match purpose {
            Purpose::Otp => "Your sign-in code".to_owned(),
            _ => "Security alert".to_owned(),
        },
        text,
        sent_at: 1_700_000_000,
        message_id: new_id(),
    }
}

fn otp_email(code: &str) -> Message {
    message(Channel::Email, "jane@example.com", Purpose::Otp, Some(code))
}

fn otp_sms(code: &str) -> Message {
    message(Channel::Sms, "+447700900123", Purpose::Otp, Some(code))
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------- SMTP

const SMTP_SERVER_PY: &str = r#""""A real SMTP server for server/tests/delivery.rs, on aiosmtpd.

Listens on 127.0.0.1 (a free port, printed as the first line of stdout),
plain, with STARTTLS (--starttls CERT KEY) or implicit TLS (--smtps CERT
KEY), optionally requiring AUTH (--auth USER PASSWORD), and answering 451
to the first --fail-first messages. Each accepted message is appended to
--out as one JSON line.
"""

import argparse
import asyncio
import json
import logging
import ssl
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, out, fail_first):
        self.out = out
        self.fail_left = fail_first

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later"
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": server.transport.get_extra_info("sslcontext") is not None,
            "authenticated": bool(session.authenticated),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 OK"

    async def handle_exception(self, error):
        # A client that refuses our certificate (the untrusted-CA test).
        return "421 4.7.0 session failed"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return check


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    # AUTH without required TLS is what the implicit-TLS test needs.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    p.add_argument("--fail-first", type=int, default=0)
    a = p.parse_args()

    handler = Recorder(a.out, a.fail_first)
    starttls = context(*a.starttls) if a.starttls else None
    smtps = context(*a.smtps) if a.smtps else None
    kwargs = {"hostname": "localhost"}
    if starttls:
        kwargs.update(tls_context=starttls, require_starttls=True)
    if a.auth:
        kwargs.update(
            authenticator=authenticator(*a.auth),
            auth_required=True,
            auth_require_tls=False,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs), "127.0.0.1", 0, ssl=smtps
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"#;

/// Whether Python's aiosmtpd is there; with CI=true it must be.
fn aiosmtpd() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but Python's aiosmtpd is missing (scripts/test installs it)");
    }
    eprintln!("skipping: Python's aiosmtpd is not installed (python3 -m pip install aiosmtpd)");
    false
}

/// A test CA and a certificate for 127.0.0.1 and localhost signed by it.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "devicetrust delivery test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", leaf_cert.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
        _dir: dir,
    }
}

/// aiosmtpd in a child process; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start(args: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER_PY).unwrap();
        let out = dir.path().join("received.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the SMTP server did not start (printed {line:?})")
        });
        SmtpServer {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    fn tls(flag: &str, pki: &Pki, more: &[&str]) -> SmtpServer {
        let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
        let mut args = vec![flag, cert, key];
        args.extend_from_slice(more);
        SmtpServer::start(&args)
    }

    fn url(&self, scheme: &str, credentials: &str) -> String {
        format!("{scheme}://{credentials}127.0.0.1:{}", self.port)
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of header `name` in a raw e-mail.
fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    let head = data.split("\r\n\r\n").next().unwrap_or(data);
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(data: &str) -> &str {
    data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// Runs of exactly six digits in `text`.
fn six_digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if current.len() == 6 {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}

/// The received e-mail is the message: envelope, From, To, Subject,
/// Message-ID, and the code as six digits in the body.
fn assert_email(got: &Value, sent: &Message, code: &str) {
    assert_eq!(got["mail_from"], "no-reply@bank.example");
    assert_eq!(got["rcpt_tos"], serde_json::json!([sent.to]));
    let data = got["data"].as_str().unwrap();
    let from = header(data, "From").unwrap();
    assert!(
        from.contains("<no-reply@bank.example>") && from.contains("Example Bank"),
        "{from}"
    );
    assert_eq!(header(data, "To"), Some("jane@example.com"));
    assert_eq!(header(data, "Subject"), Some(sent.subject.as_str()));
    assert_eq!(
        header(data, "Message-ID"),
        Some(format!("<{}@bank.example>", sent.message_id).as_str())
    );
    assert!(header(data, "Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(six_digit_runs(body(data)), vec![code.to_owned()]);
}

#[tokio::test]
async fn smtp_plain_delivers_the_code_and_the_outbox_records_it() {
    if !aiosmtpd() {
        return;
    }
    let server = SmtpServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.jsonl");
    let delivery = DeliveryConfig {
        smtp_url: Some(server.url("smtp", "")),
        smtp_from: Some(FROM.into()),
        outbox: Some(outbox.clone()),
        ..DeliveryConfig::default()
    }
    .build()
    .unwrap();
    assert!(delivery.supports(Channel::Email));
    assert!(delivery.supports(Channel::Sms), "the outbox takes SMS");
    let sent = otp_email("204918");
    delivery.send(sent.clone()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], false);
    assert_email(&got[0], &sent, "204918");
    // The outbox line is the contract's, beside the carrier.
    let lines = std::fs::read_to_string(&outbox).unwrap();
    let line: Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"channel": "email", "to": "jane@example.com", "user_id": "jane.doe",
            "purpose": "otp", "code": "204918", "text": sent.text, "sent_at": 1_700_000_000})
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outbox).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn smtp_starttls_with_the_test_ca() {
    if !aiosmtpd() {
        return;
    }
    let pki = pki();
    let server = SmtpServer::tls("--starttls", &pki, &[]);
    let ca = std::fs::read(&pki.ca).unwrap();
    let smtp = Smtp::new(&server.url("smtp+starttls", ""), FROM, Some(&ca)).unwrap();
    let sent = otp_email("550312");
    smtp.send(sent.clone()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true);
    assert_email(&got[0], &sent, "550312");

    // Without the test CA the relay's certificate is not trusted: nothing sent.
    let untrusted = Smtp::new(&server.url("smtp+starttls", ""), FROM, None).unwrap();
    let err = untrusted.send(otp_email("111111")).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(server.received().len(), 1);

    // A plain connection to a relay that requires STARTTLS is refused.
    let plain = Smtp::new(&server.url("smtp", ""), FROM, None).unwrap();
    assert!(plain.send(otp_email("222222")).await.is_err());
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn smtp_implicit_tls_with_the_test_ca() {
    if !aiosmtpd() {
        return;
    }
    let pki = pki();
    let server = SmtpServer::tls("--smtps", &pki, &[]);
    let dir = tempfile::tempdir().unwrap();
    let delivery = DeliveryConfig {
        smtp_url: Some(server.url("smtps", "")),
        smtp_from: Some(FROM.into()),
        smtp_ca_file: Some(pki.ca.clone()),
        outbox: Some(dir.path().join("o.jsonl")),
        ..DeliveryConfig::default()
    }
    .build()
    .unwrap();
    let sent = otp_email("731046");
    delivery.send(sent.clone()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true);
    assert_email(&got[0], &sent, "731046");
}

#[tokio::test]
async fn smtp_auth_right_and_wrong_password() {
    if !aiosmtpd() {
        return;
    }
    let pki = pki();
    let ca = std::fs::read(&pki.ca).unwrap();
    let server = SmtpServer::tls(
        "--starttls",
        &pki,
        &["--auth", "mailer@bank.example", "p@ss:w/rd%"],
    );
    // user:password@ is percent-decoded.
    let good = Smtp::new(
        &server.url("smtp+starttls", "mailer%40bank.example:p%40ss%3Aw%2Frd%25@"),
        FROM,
        Some(&ca),
    )
    .unwrap();
    let sent = otp_email("864209");
    good.send(sent.clone()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["authenticated"], true);
    assert_email(&got[0], &sent, "864209");

    // A wrong password is a final refusal (535): not retried, nothing sent,
    // and the password is not in the error.
    let bad = Smtp::new(
        &server.url("smtp+starttls", "mailer%40bank.example:wrong-secret@"),
        FROM,
        Some(&ca),
    )
    .unwrap();
    let started = Instant::now();
    let err = bad.send(otp_email("111111")).await.unwrap_err();
    assert!(matches!(err, NotifyError::Refused { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-secret"));
    assert!(started.elapsed() < Duration::from_secs(3));
    // No credentials at all: the relay requires AUTH (530).
    let anonymous = Smtp::new(&server.url("smtp+starttls", ""), FROM, Some(&ca)).unwrap();
    assert!(anonymous.send(otp_email("222222")).await.is_err());
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn smtp_temporary_refusal_is_retried() {
    if !aiosmtpd() {
        return;
    }
    let server = SmtpServer::start(&["--fail-first", "1"]);
    let smtp = Smtp::new(&server.url("smtp", ""), FROM, None).unwrap();
    let sent = otp_email("390127");
    smtp.send(sent.clone()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1, "delivered once, on the second attempt");
    assert_email(&got[0], &sent, "390127");

    // Temporary refusals on every attempt: an error after the bounded retries.
    let server = SmtpServer::start(&["--fail-first", "100"]);
    let smtp = Smtp::new(&server.url("smtp", ""), FROM, None).unwrap();
    let err = smtp.send(otp_email("390128")).await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("451"), "{err}");
}

#[tokio::test]
async fn smtp_relay_down_fails_within_a_bounded_time_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.jsonl");
    let delivery = DeliveryConfig {
        smtp_url: Some(format!("smtp://127.0.0.1:{}", free_port())),
        smtp_from: Some(FROM.into()),
        outbox: Some(outbox.clone()),
        ..DeliveryConfig::default()
    }
    .build()
    .unwrap();
    let started = Instant::now();
    let err = delivery.send(otp_email("123456")).await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!outbox.exists() || std::fs::read_to_string(&outbox).unwrap().is_empty());
}

// ---------------------------------------------------------------- SMS webhook

/// What a receiver saw: the exact body, and whether its signature verified.
#[derive(Clone)]
struct Seen {
    body: Vec<u8>,
    signature_ok: bool,
    content_type: String,
}

/// A webhook receiver: answers the statuses of `plan` first, then `then`;
/// `hang` never answers.
#[derive(Clone)]
struct Hook {
    seen: Arc<Mutex<Vec<Seen>>>,
    plan: Arc<Mutex<VecDeque<u16>>>,
    then: u16,
    hang: bool,
}

impl Hook {
    fn new(plan: &[u16], then: u16) -> Hook {
        Hook {
            seen: Arc::default(),
            plan: Arc::new(Mutex::new(plan.iter().copied().collect())),
            then,
            hang: false,
        }
    }

    fn hanging() -> Hook {
        Hook {
            hang: true,
            ..Hook::new(&[], 200)
        }
    }

    async fn serve(self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.serve_on(listener)
    }

    fn serve_on(self, listener: tokio::net::TcpListener) -> SocketAddr {
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/sms", axum::routing::post(receive))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // The receiver's own check, with ring, over the bytes received.
    let signature_ok = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .is_some_and(|tag| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
            ring::hmac::verify(&key, &body, &tag).is_ok()
        });
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    hook.seen.lock().unwrap().push(Seen {
        body: body.to_vec(),
        signature_ok,
        content_type,
    });
    if hook.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let status = hook.plan.lock().unwrap().pop_front().unwrap_or(hook.then);
    StatusCode::from_u16(status).unwrap()
}

fn webhook(addr: SocketAddr) -> SmsWebhook {
    SmsWebhook::new(&format!("http://{addr}/sms"), SECRET).unwrap()
}

#[tokio::test]
async fn webhook_posts_signed_json() {
    let hook = Hook::new(&[], 200);
    let addr = hook.clone().serve().await;
    let sent = otp_sms("602214");
    webhook(addr).send(sent.clone()).await.unwrap();
    let seen = hook.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].signature_ok,
        "X-Devicetrust-Signature verifies over the exact body"
    );
    assert_eq!(seen[0].content_type, "application/json");
    let json: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"to": "+447700900123", "text": sent.text, "user_id": "jane.doe",
            "purpose": "otp", "message_id": sent.message_id})
    );
    assert_eq!(
        six_digit_runs(json["text"].as_str().unwrap()),
        vec!["602214"]
    );
    // Any 2xx is success.
    let accepted = Hook::new(&[], 202);
    let addr = accepted.clone().serve().await;
    webhook(addr).send(otp_sms("602215")).await.unwrap();
    assert_eq!(accepted.seen().len(), 1);
}

#[tokio::test]
async fn webhook_signature_depends_on_the_secret() {
    // A receiver keyed with another secret computes another signature.
    let body = br#"{"to":"+447700900123"}"#;
    let ours = devicetrust_server::notify::signature(SECRET.as_bytes(), body);
    let theirs = devicetrust_server::notify::signature(b"another-secret-0123456", body);
    assert_ne!(ours, theirs);
    assert_eq!(ours.len(), "sha256=".len() + 64);
}

#[tokio::test]
async fn webhook_answering_500_fails_after_bounded_retries() {
    let hook = Hook::new(&[], 500);
    let addr = hook.clone().serve().await;
    let started = Instant::now();
    let err = webhook(addr).send(otp_sms("118999")).await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(hook.seen().len(), Retry::REQUEST.attempts as usize);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn webhook_failing_once_then_accepting_delivers_once_with_the_same_message_id() {
    let hook = Hook::new(&[503], 200);
    let addr = hook.clone().serve().await;
    let sent = otp_sms("845530");
    webhook(addr).send(sent.clone()).await.unwrap();
    let seen = hook.seen();
    assert_eq!(seen.len(), 2, "one refusal, one delivery");
    // The retry is the same request: same bytes, same message_id, so a
    // gateway that did act on the first can drop the second.
    assert_eq!(seen[0].body, seen[1].body);
    assert!(seen.iter().all(|s| s.signature_ok));
    let json: Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(json["message_id"], sent.message_id.as_str());
}

#[tokio::test]
async fn webhook_client_error_is_final() {
    let hook = Hook::new(&[], 400);
    let addr = hook.clone().serve().await;
    let err = webhook(addr).send(otp_sms("118999")).await.unwrap_err();
    assert!(matches!(err, NotifyError::Refused { .. }), "{err}");
    assert_eq!(hook.seen().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn webhook_down_or_hanging_fails_within_a_bounded_time() {
    let down = SmsWebhook::new(&format!("http://127.0.0.1:{}/sms", free_port()), SECRET).unwrap();
    let started = Instant::now();
    let err = down.send(otp_sms("555001")).await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let hook = Hook::hanging();
    let addr = hook.clone().serve().await;
    let quick = Retry {
        attempts: 2,
        attempt_timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(50),
        budget: Duration::from_secs(2),
    };
    let started = Instant::now();
    let err = webhook(addr)
        .with_retry(quick)
        .send(otp_sms("555002"))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hook.seen().len(), 2);
}

// ---------------------------------------------------------------- composite

#[tokio::test]
async fn delivery_routes_by_channel_and_records_only_what_was_handed_over() {
    let hook = Hook::new(&[], 200);
    let addr = hook.clone().serve().await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.jsonl");
    let delivery = Delivery::new()
        .with_sms(webhook(addr))
        .with_outbox(Outbox::new(&outbox));
    // SMS: the webhook, and the outbox beside it.
    delivery.send(otp_sms("271828")).await.unwrap();
    assert_eq!(hook.seen().len(), 1);
    // E-mail: no carrier, so the outbox alone.
    let alert = message(Channel::Email, "jane@example.com", Purpose::Alert, None);
    delivery.send(alert).await.unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&outbox)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["channel"], "sms");
    assert_eq!(lines[0]["code"], "271828");
    assert_eq!(lines[1]["purpose"], "alert");
    assert_eq!(lines[1]["event"], "device_added");

    // A carrier failure is an error, and the outbox does not record it.
    let failing = Hook::new(&[], 500);
    let addr = failing.clone().serve().await;
    let delivery = Delivery::new()
        .with_sms(webhook(addr))
        .with_outbox(Outbox::new(&outbox));
    assert!(delivery.send(otp_sms("314159")).await.is_err());
    assert_eq!(std::fs::read_to_string(&outbox).unwrap().lines().count(), 2);

    // Without the outbox, a channel without a carrier is not supported.
    let sms_only = Delivery::new().with_sms(webhook(addr));
    assert!(sms_only.supports(Channel::Sms));
    assert!(!sms_only.supports(Channel::Email));
    let err = sms_only
        .send(message(
            Channel::Email,
            "jane@example.com",
            Purpose::Otp,
            Some("123456"),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::NoCarrier(Channel::Email)));
}

#[test]
fn configuration_is_refused_when_it_cannot_work() {
    let err = |c: DeliveryConfig| c.build().err().expect("refused").to_string();
    // No e-mail delivery at all: e-mail is everyone's second factor.
    let e = err(DeliveryConfig::default());
    assert!(e.contains("--outbox") && e.contains("--smtp-url"), "{e}");
    let e = err(DeliveryConfig {
        sms_webhook: Some("http://127.0.0.1:9/sms".into()),
        sms_webhook_secret: Some(SECRET.into()),
        ..DeliveryConfig::default()
    });
    assert!(e.contains("no e-mail delivery"), "{e}");
    assert!(err(DeliveryConfig {
        smtp_url: Some("smtp://127.0.0.1:25".into()),
        ..DeliveryConfig::default()
    })
    .contains("--smtp-from"));
    assert!(err(DeliveryConfig {
        outbox: Some("o.jsonl".into()),
        sms_webhook: Some("http://127.0.0.1:9/sms".into()),
        ..DeliveryConfig::default()
    })
    .contains("--sms-webhook-secret"));
    let e = err(DeliveryConfig {
        smtp_url: Some("smtp://mailer:hunter2-password@relay.example:25/x".into()),
        smtp_from: Some(FROM.into()),
        ..DeliveryConfig::default()
    });
    assert!(!e.contains("hunter2"), "{e}");
    assert!(err(DeliveryConfig {
        smtp_url: Some("smtps://relay.example".into()),
        smtp_from: Some(FROM.into()),
        smtp_ca_file: Some(Path::new("/nonexistent/ca.pem").into()),
        ..DeliveryConfig::default()
    })
    .contains("--smtp-ca-file"));
    // SMTP alone, or the outbox alone, is enough.
    let smtp_only = DeliveryConfig {
        smtp_url: Some("smtp+starttls://relay.example".into()),
        smtp_from: Some(FROM.into()),
        ..DeliveryConfig::default()
    }
    .build()
    .unwrap();
    assert!(smtp_only.supports(Channel::Email));
    assert!(!smtp_only.supports(Channel::Sms));
}

// ---------------------------------------------------------------- alert queue

#[tokio::test]
async fn enqueue_returns_at_once_even_when_the_carrier_hangs() {
    let hook = Hook::hanging();
    let addr = hook.clone().serve().await;
    let (queue, worker) = AlertQueue::new(Arc::new(webhook(addr)));
    let task = worker.spawn();
    let started = Instant::now();
    for _ in 0..500 {
        queue.enqueue(message(Channel::Sms, "+447700900123", Purpose::Alert, None));
    }
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "enqueue waited: {:?}",
        started.elapsed()
    );
    assert_eq!(queue.pending(), 500);
    // The worker is busy with them (at most CONCURRENCY at once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = hook.seen().len();
    assert!((1..=AlertQueue::CONCURRENCY).contains(&busy), "{busy}");
    // Shutdown is bounded even with a hanging carrier.
    drop(queue);
    let started = Instant::now();
    task.finish(Duration::from_millis(200)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_queued_message_is_retried_until_the_carrier_comes_back() {
    let port = free_port();
    let carrier = SmsWebhook::new(&format!("http://127.0.0.1:{port}/sms"), SECRET).unwrap();
    let retry = Retry {
        attempts: 100,
        attempt_timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(200),
        budget: Duration::from_secs(30),
    };
    let (queue, worker) = AlertQueue::with_options(Arc::new(carrier), 100, 4, retry);
    let task = worker.spawn();
    let sent = message(Channel::Sms, "+447700900123", Purpose::Alert, None);
    queue.enqueue(sent.clone());
    // The carrier is down for a while…
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(queue.pending(), 1, "still being retried");
    // …then comes back on the same address.
    let hook = Hook::new(&[], 200);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    hook.clone().serve_on(listener);
    let deadline = Instant::now() + Duration::from_secs(15);
    while queue.pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "not delivered after the carrier came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "delivered once");
    let json: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(json["message_id"], sent.message_id.as_str());
    assert_eq!(json["purpose"], "alert");
    drop(queue);
    task.finish(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_full_queue_drops_and_a_refusal_is_not_retried() {
    // No worker running: the second message does not fit and is dropped.
    let hook = Hook::new(&[], 400);
    let addr = hook.clone().serve().await;
    let (queue, worker) =
        AlertQueue::with_options(Arc::new(webhook(addr)), 1, 1, AlertQueue::RETRY);
    queue.enqueue(message(Channel::Sms, "+447700900123", Purpose::Alert, None));
    queue.enqueue(message(Channel::Sms, "+447700900123", Purpose::Alert, None));
    assert_eq!(queue.pending(), 1);
    // A final refusal (400) is given up at once, not retried for a minute.
    let task = worker.spawn();
    drop(queue);
    let started = Instant::now();
    task.finish(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(hook.seen().len(), 1);
}

#[tokio::test]
async fn finish_drains_what_is_queued_then_refuses_new_messages() {
    let hook = Hook::new(&[], 200);
    let addr = hook.clone().serve().await;
    let (queue, worker) = AlertQueue::new(Arc::new(webhook(addr)));
    let task = worker.spawn();
    for _ in 0..3 {
        queue.enqueue(message(Channel::Sms, "+447700900123", Purpose::Alert, None));
    }
    // The application state (and its queue) may still be alive at shutdown.
    task.finish(Duration::from_secs(5)).await;
    assert_eq!(hook.seen().len(), 3, "what was queued is delivered");
    assert_eq!(queue.pending(), 0);
    queue.enqueue(message(Channel::Sms, "+447700900123", Purpose::Alert, None));
    assert_eq!(queue.pending(), 0, "a stopped queue drops new messages");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.seen().len(), 3);
}
