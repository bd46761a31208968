//! `--risk http`: the bank's own fraud engine decides, over HTTP.
//!
//! Each sign-in is one `POST` of
//! `{"flow", "user_id", "device_id", "ip", "network", "user_agent", "at"}`
//! (signed like the SMS webhook when a secret is set:
//! `X-Devicetrust-Signature: sha256=HEX`, HMAC-SHA256 of the body); the answer
//! is `{"decision": "allow"|"step_up", "reasons": ["code", …]}`. An answer
//! that does not come within the timeout, is not 2xx or cannot be read is
//! the scorer being unavailable: `--risk-scorer-fail open` allows the sign-in,
//! `closed` (the default) steps it up, and the audit line says which.
//! A step-up is not a refusal: the holder still signs in with a code, so
//! failing closed costs friction, never access.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{network_of, Assessment, RiskContext, RiskDecision, RiskPolicy, RiskResult};
use crate::notify::sms_webhook::signature;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailMode {
    /// Allow the sign-in when the scorer cannot answer.
    Open,
    /// Step the sign-in up when the scorer cannot answer.
    Closed,
}

#[derive(Debug, Clone)]
pub struct ScorerConfig {
    pub url: String,
    pub timeout: Duration,
    pub fail: FailMode,
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("--risk-scorer-url: {0}")]
pub struct ScorerConfigError(String);

/// The largest answer read from a scorer.
const MAX_ANSWER: usize = 16 * 1024;

pub struct HttpScorer {
    client: reqwest::Client,
    url: reqwest::Url,
    fail: FailMode,
    secret: Option<Vec<u8>>,
}

#[derive(Deserialize)]
struct Answer {
    decision: AnswerDecision,
    #[serde(default)]
    reasons: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum AnswerDecision {
    Allow,
    StepUp,
}

impl HttpScorer {
    pub fn new(cfg: ScorerConfig) -> Result<Self, ScorerConfigError> {
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| ScorerConfigError(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ScorerConfigError("must be http:// or https://".into()));
        }
        // reqwest is built without a rustls provider: the workspace uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| ScorerConfigError(e.to_string()))?;
        Ok(HttpScorer {
            client,
            url,
            fail: cfg.fail,
            secret: cfg.secret.map(String::into_bytes),
        })
    }

    async fn ask(&self, ctx: &RiskContext<'_>) -> Result<Assessment, String> {
        let body = json!({
            "flow": ctx.flow.as_str(),
            "user_id": ctx.user_id,
            "device_id": ctx.device_id,
            "ip": ctx.ip.to_canonical().to_string(),
            "network": network_of(ctx.ip),
            "user_agent": ctx.user_agent,
            "at": ctx.now,
        })
        .to_string();
        let mut trace = reqwest::header::HeaderMap::new();
        crate::ops::trace::inject(&mut trace);
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(trace)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            request = request.header(
                "X-Devicetrust-Signature",
                signature(secret, body.as_bytes()),
            );
        }
        let response = request.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_owned()
            } else {
                "unreachable".to_owned()
            }
        })?;
        if !response.status().is_success() {
            return Err(format!("status_{}", response.status().as_u16()));
        }
        // A scorer's answer is small; a larger one is not a scorer's, and
        // is not read further than the limit.
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| "unreadable".to_owned())?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err("oversized".into());
            }
            bytes.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|_| "unreadable".to_owned())?;
        let signals: Vec<String> = answer
            .reasons
            .into_iter()
            .filter(|r| {
                (1..=32).contains(&r.len())
                    && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .take(8)
            .collect();
        Ok(Assessment {
            decision: match answer.decision {
                AnswerDecision::Allow => RiskDecision::Allow,
                AnswerDecision::StepUp => RiskDecision::StepUp,
            },
            score: 0,
            signals,
            basis: None,
        })
    }
}

#[async_trait]
impl RiskPolicy for HttpScorer {
    async fn assess(&self, ctx: &RiskContext<'_>) -> RiskResult<Assessment> {
        match self.ask(ctx).await {
            Ok(a) => Ok(a),
            Err(why) => {
                tracing::warn!(why, "risk scorer unavailable");
                Ok(Assessment {
                    decision: match self.fail {
                        FailMode::Open => RiskDecision::Allow,
                        FailMode::Closed => RiskDecision::StepUp,
                    },
                    // The detail (`scorer:timeout`) is for the audit
                    // trail only: it is not a plain code, so no phone sees it.
                    signals: vec!["scorer_unavailable".to_owned(), format!("scorer:{why}")],
                    score: 0,
                    basis: None,
                })
            }
        }
    }
}
