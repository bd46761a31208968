//! The place where risk decides whether a sign-in needs more proof.
//!
//! Every password and device sign-in asks the configured `RiskPolicy` once,
//! with what the server knows about the attempt. `StepUp` turns a device
//! sign-in into `step_up_required` (finished with an OTP) and removes the
//! `device` method from a password sign-in. The policy also hears what
//! happened afterwards (a completed sign-in, a failure, a registration), so
//! an engine can learn habits from them.
//!
//! Policies: `habits` (the default, `habits.rs`: the card holder's own
//! networks, devices, hours and pace), `off` (`AllowAll`), and `http`
//! (`scorer.rs`: the bank's own fraud engine over HTTP).

pub mod habits;
pub mod scorer;

use std::net::IpAddr;

use async_trait::async_trait;

use crate::storage::{RiskWrite, StorageError};

pub use habits::{HabitsConfig, HabitsPolicy};
pub use scorer::{FailMode, HttpScorer, ScorerConfig};

/// Which flow is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Password,
    Device,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Password => "password",
            Flow::Device => "device",
        }
    }
}

/// What is known about one sign-in attempt.
#[derive(Debug, Clone)]
pub struct RiskContext<'a> {
    pub flow: Flow,
    pub user_id: &'a str,
    /// A device sign-in's device, or the trusted device a password sign-in
    /// names (the one whose `device` method a step-up withholds).
    pub device_id: Option<&'a str>,
    pub ip: IpAddr,
    pub user_agent: Option<&'a str>,
    pub now: i64,
    /// Whether the user's market has launched the second factor: where it
    /// has not, a password sign-in has no second step to add (seed 000).
    pub second_factor_market: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskDecision {
    Allow,
    StepUp,
}

/// A decision and what it was made of: the signals that were present (by
/// stable code, e.g. `new_network`) and their summed weight.
#[derive(Clone, PartialEq, Eq)]
pub struct Assessment {
    pub decision: RiskDecision,
    pub signals: Vec<String>,
    pub score: u32,
    /// The policy's stored state as it read it to judge (`Some(None)`: no
    /// state yet), so `sign_in_write` plans from it without reading again;
    /// the write is a compare-and-swap against it, so a stale read costs
    /// only the in-transaction learning, never correctness.
    pub basis: Option<Option<String>>,
}

/// `basis` is a holder's habits (networks, devices, hours): never printed,
/// so a `{:?}` in a log line cannot leak it.
impl std::fmt::Debug for Assessment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assessment")
            .field("decision", &self.decision)
            .field("signals", &self.signals)
            .field("score", &self.score)
            .field("basis", &self.basis.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Assessment {
    pub fn allow() -> Self {
        Assessment {
            decision: RiskDecision::Allow,
            signals: Vec::new(),
            score: 0,
            basis: None,
        }
    }

    pub fn step_up(&self) -> bool {
        self.decision == RiskDecision::StepUp
    }

    /// One line for the audit trail: `step_up new_network velocity score=3`.
    pub fn summary(&self) -> String {
        let mut line = String::from(match self.decision {
            RiskDecision::Allow => "allow",
            RiskDecision::StepUp => "step_up",
        });
        for s in &self.signals {
            line.push(' ');
            line.push_str(s);
        }
        line.push_str(&format!(" score={}", self.score));
        line
    }

    /// The signals a client is told (why it is asked for a code): stable
    /// lower-case codes only, at most five, so a scorer's free text never
    /// reaches a phone.
    pub fn reasons(&self) -> Vec<String> {
        self.signals
            .iter()
            .filter(|s| {
                (1..=32).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .take(5)
            .cloned()
            .collect()
    }
}

/// A sign-in that completed (a session was issued).
#[derive(Debug, Clone)]
pub struct SignedIn<'a> {
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
    pub ip: IpAddr,
    /// The session's `amr`: what the sign-in proved.
    pub amr: &'a [String],
    pub now: i64,
    /// Whether the proof came from `ip`'s network: an OTP verified from
    /// another network than its sign-in started on proves nothing about
    /// either, so neither is learnt.
    pub teaches_network: bool,
}

pub type RiskResult<T> = Result<T, StorageError>;

#[async_trait]
pub trait RiskPolicy: Send + Sync + 'static {
    async fn assess(&self, ctx: &RiskContext<'_>) -> RiskResult<Assessment>;

    /// A session was issued.
    async fn signed_in(&self, _event: &SignedIn<'_>) -> RiskResult<()> {
        Ok(())
    }

    /// `signed_in`'s change as a document to swap in inside the sign-in's
    /// own transaction, when the policy keeps its state in the store
    /// (`None`: nothing to write, or use `signed_in`).
    async fn sign_in_write(
        &self,
        _event: &SignedIn<'_>,
        _judged: &Assessment,
    ) -> RiskResult<Option<RiskWrite>> {
        Ok(None)
    }

    /// Whether `sign_in_write` stands for `signed_in` on a device sign-in
    /// (then its `None` means "nothing to learn"); otherwise `signed_in`
    /// is always called.
    fn learns_in_transaction(&self) -> bool {
        false
    }

    /// A wrong password or OTP for this (existing) user; answers the
    /// number of failures that locks the user now: `configured` unless the
    /// policy adapts it (see `HabitsConfig::adaptive_lockout`).
    async fn failed(
        &self,
        _user_id: &str,
        _ip: IpAddr,
        _now: i64,
        configured: i64,
    ) -> RiskResult<i64> {
        Ok(configured)
    }

    /// A device was registered from a session strong enough to add one.
    async fn device_added(
        &self,
        _user_id: &str,
        _device_id: &str,
        _ip: IpAddr,
        _now: i64,
    ) -> RiskResult<()> {
        Ok(())
    }
}

/// `--risk off`: no step-up, nothing learnt.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

#[async_trait]
impl RiskPolicy for AllowAll {
    async fn assess(&self, _ctx: &RiskContext<'_>) -> RiskResult<Assessment> {
        Ok(Assessment::allow())
    }
}

/// The network a client address belongs to for the habits: IPv4 /24 and
/// IPv6 /48 (one household or office line, one provider's site), so a
/// phone's changing address on the same line stays known. An IPv6 address
/// that carries an IPv4 one (NAT64 `64:ff9b::/96`, IPv4-compatible `::/96`,
/// 6to4 `2002::/16`, Teredo `2001::/32`) is judged by that IPv4 address's
/// /24: otherwise one translator's /48 would be the whole IPv4 internet.
/// The unspecified address (a client a trusted proxy could not name) has
/// no network: never known, never learnt.
pub fn network_of(ip: IpAddr) -> Option<String> {
    let v4 =
        |a: u16, b: u16| std::net::Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8);
    let ip = match ip.to_canonical() {
        IpAddr::V6(v6) if v6.is_unspecified() => return None,
        IpAddr::V4(v4) if v4.is_unspecified() => return None,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0, 0, 0, 0, 0, 0] {
                IpAddr::V4(v4(s[6], s[7]))
            } else if s[0] == 0x2002 {
                IpAddr::V4(v4(s[1], s[2]))
            } else if s[0] == 0x2001 && s[1] == 0 {
                // Teredo keeps the client's address inverted.
                IpAddr::V4(v4(!s[6], !s[7]))
            } else {
                IpAddr::V6(v6)
            }
        }
        v4 => v4,
    };
    Some(match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(ip: &str) -> Option<String> {
        network_of(ip.parse().unwrap())
    }

    #[test]
    fn networks_are_v4_24_and_v6_48() {
        assert_eq!(net("10.1.2.3").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(net("10.1.2.250").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(net("::ffff:10.1.2.3").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(
            net("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::/48")
        );
    }

    #[test]
    fn ipv6_carrying_ipv4_is_judged_by_the_ipv4_address() {
        // NAT64, IPv4-compatible, 6to4, Teredo (inverted client address).
        assert_eq!(
            net("64:ff9b::c633:6442").as_deref(),
            Some("198.51.100.0/24")
        );
        assert_eq!(net("64:ff9b::cb00:7107").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(net("::c633:6442").as_deref(), Some("198.51.100.0/24"));
        assert_eq!(net("2002:c633:6442::1").as_deref(), Some("198.51.100.0/24"));
        assert_eq!(
            net("2001:0:4136:e378:8000:63bf:39cc:9bbd").as_deref(),
            Some("198.51.100.0/24")
        );
    }

    #[test]
    fn an_unknown_client_has_no_network() {
        assert_eq!(net("::"), None);
        assert_eq!(net("0.0.0.0"), None);
    }

    #[test]
    fn reasons_keep_only_plain_codes() {
        let a = Assessment {
            decision: RiskDecision::StepUp,
            signals: vec![
                "new_network".into(),
                "Score 97 from vendor X".into(),
                "velocity".into(),
            ],
            score: 3,
            basis: None,
        };
        assert_eq!(a.reasons(), vec!["new_network", "velocity"]);
        assert_eq!(
            a.summary(),
            "step_up new_network Score 97 from vendor X velocity score=3"
        );
    }
}
