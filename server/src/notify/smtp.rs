//! E-mail over SMTP with lettre: plain (a local relay), STARTTLS, or
//! implicit TLS, rustls on ring, with optional AUTH.

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::{Channel, ConfigError, Message, Notifier, NotifyError, Retry};

const CARRIER: &str = "SMTP";

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no TLS (a relay on the same host or network).
    Plain,
    /// `smtp+starttls://`: STARTTLS required before anything is sent.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// Sends e-mail through one relay. Each message opens its own connection
/// (no pool): OTP volume is low and a broken pooled connection would cost a
/// retry.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of Message-IDs: the sender's domain.
    id_domain: String,
    retry: Retry,
    /// The relay without credentials, for logs.
    endpoint: String,
    security: SmtpSecurity,
    authenticated: bool,
}

// Hand-written: the transport holds the relay's password.
impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("endpoint", &self.endpoint)
            .field("from", &self.from.email.to_string())
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// A carrier for `url` (`smtp://`, `smtp+starttls://` or `smtps://`,
    /// `HOST[:PORT]`, optional percent-encoded `user:password@`) sending as
    /// `from`. `extra_roots_pem` adds trusted roots (PEM, one or more
    /// certificates) to Mozilla's, e.g. an internal relay's private CA.
    pub fn new(url: &str, from: &str, extra_roots_pem: Option<&[u8]>) -> Result<Smtp, ConfigError> {
        let bad = |why: &str| ConfigError(format!("--smtp-url: {why}"));
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let (security, default_port) = match parsed.scheme() {
            "smtp" => (SmtpSecurity::Plain, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::Tls, 465),
            _ => return Err(bad("the scheme must be smtp, smtp+starttls or smtps")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(bad("only scheme, credentials, host and port are allowed"));
        }
        let port = parsed.port().unwrap_or(default_port);
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, Some(password)) if !user.is_empty() => Some(Credentials::new(
                percent_decode(user)
                    .ok_or_else(|| bad("the user name is not valid percent-encoded UTF-8"))?,
                percent_decode(password)
                    .ok_or_else(|| bad("the password is not valid percent-encoded UTF-8"))?,
            )),
            _ => return Err(bad("credentials must be user:password")),
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e| ConfigError(format!("--smtp-from: not an e-mail address: {e}")))?;
        let id_domain = from.email.domain().to_owned();

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(Retry::REQUEST.attempt_timeout));
        if security != SmtpSecurity::Plain {
            let mut tls = TlsParameters::builder(host.clone());
            if let Some(pem) = extra_roots_pem {
                let roots = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ConfigError(format!("--smtp-ca-file: {e}")))?;
                if roots.is_empty() {
                    return Err(ConfigError(
                        "--smtp-ca-file: no certificate in the file".into(),
                    ));
                }
                for root in roots {
                    let cert = Certificate::from_der(root.to_vec())
                        .map_err(|e| ConfigError(format!("--smtp-ca-file: {e}")))?;
                    tls = tls.add_root_certificate(cert);
                }
            }
            let tls = tls
                .build_rustls()
                .map_err(|e| ConfigError(format!("SMTP TLS: {e}")))?;
            builder = builder.tls(match security {
                SmtpSecurity::StartTls => Tls::Required(tls),
                _ => Tls::Wrapper(tls),
            });
        } else if extra_roots_pem.is_some() {
            return Err(ConfigError(
                "--smtp-ca-file needs a TLS --smtp-url (smtp+starttls:// or smtps://)".into(),
            ));
        }
        let authenticated = credentials.is_some();
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let scheme = parsed.scheme();
        let endpoint = if host.contains(':') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        };
        Ok(Smtp {
            transport: builder.build(),
            from,
            id_domain,
            retry: Retry::REQUEST,
            endpoint,
            security,
            authenticated,
        })
    }

    /// Replaces the request-path retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The relay, without credentials (`smtps://host:465`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn security(&self) -> SmtpSecurity {
        self.security
    }

    /// Whether the password would cross the network in the clear: AUTH on a
    /// plain connection to anything but the loopback interface.
    pub fn credentials_in_clear(&self) -> bool {
        let host = self
            .endpoint
            .split("://")
            .nth(1)
            .and_then(|rest| rest.rsplit_once(':'))
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or("");
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.authenticated && self.security == SmtpSecurity::Plain && !loopback
    }

    /// The e-mail: plain text, the message's subject and a Message-ID made
    /// from its `message_id` (the same on every retry).
    fn email(&self, message: &Message) -> Result<lettre::Message, NotifyError> {
        let refused = |detail: String| NotifyError::Refused {
            carrier: CARRIER,
            detail,
        };
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|_| refused("the recipient is not an e-mail address".into()))?;
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}@{}>", message.message_id, self.id_domain)))
            .date_now()
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|e| refused(format!("the e-mail could not be built: {e}")))
    }
}

#[async_trait]
impl Notifier for Smtp {
    async fn send(&self, message: Message) -> Result<(), NotifyError> {
        if message.channel != Channel::Email {
            return Err(NotifyError::NoCarrier(message.channel));
        }
        let email = self.email(&message)?;
        let envelope = email.envelope().clone();
        let raw = email.formatted();
        self.retry
            .run(CARRIER, || async {
                self.transport
                    .send_raw(&envelope, &raw)
                    .await
                    .map(drop)
                    .map_err(classify)
            })
            .await
    }

    fn supports(&self, channel: Channel) -> bool {
        channel == Channel::Email
    }
}

/// A lettre error as a `NotifyError`: a 5xx answer, a message lettre
/// cannot send and a failed TLS handshake (an untrusted or mismatched
/// certificate) are final; a 4xx answer, a connection failure or a timeout
/// may pass. Only the reply code of an SMTP answer is kept: its text may
/// repeat the recipient's address.
fn classify(e: lettre::transport::smtp::Error) -> NotifyError {
    let detail = match e.status() {
        Some(code) => format!("the relay answered {code}"),
        None => e.to_string(),
    };
    if e.is_permanent() || e.is_client() || e.is_tls() {
        NotifyError::Refused {
            carrier: CARRIER,
            detail,
        }
    } else {
        NotifyError::Unavailable {
            carrier: CARRIER,
            detail,
        }
    }
}

/// `%XX` sequences decoded; `None` when one is malformed or the result is
/// not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = Smtp::new(
            "smtp://127.0.0.1:2525",
            "Bank <no-reply@bank.example>",
            None,
        )
        .unwrap();
        assert_eq!(s.endpoint(), "smtp://127.0.0.1:2525");
        assert_eq!(s.security(), SmtpSecurity::Plain);
        let s = Smtp::new(
            "smtp+starttls://u%40x:p%3Ass@relay.example",
            "a@b.example",
            None,
        )
        .unwrap();
        assert_eq!(s.endpoint(), "smtp+starttls://relay.example:587");
        assert!(!format!("{s:?}").contains("p:ss"));
        assert!(!s.credentials_in_clear());
        let s = Smtp::new("smtps://relay.example", "a@b.example", None).unwrap();
        assert_eq!(s.endpoint(), "smtps://relay.example:465");
        assert!(Smtp::new("smtp://u:p@relay.example", "a@b.example", None)
            .unwrap()
            .credentials_in_clear());
        assert!(!Smtp::new("smtp://u:p@127.0.0.1:25", "a@b.example", None)
            .unwrap()
            .credentials_in_clear());
        for bad in [
            "http://relay.example",
            "smtp://",
            "smtp://relay.example/path",
            "smtp://relay.example?tls=required",
            "smtp://user@relay.example",
            "smtp://u:%zz@relay.example",
        ] {
            assert!(Smtp::new(bad, "a@b.example", None).is_err(), "{bad}");
        }
        assert!(Smtp::new("smtp://relay.example", "not an address", None).is_err());
        assert!(Smtp::new("smtp://relay.example", "a@b.example", Some(b"x")).is_err());
        assert!(Smtp::new("smtps://relay.example", "a@b.example", Some(b"no pem")).is_err());
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%C3%A9").as_deref(), Some("a bé"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
