//! The habits engine (`--risk habits`, the default): each sign-in is judged
//! against the card holder's own history (seed 001: "which devices you use,
//! where you typically log in from, what time of day").
//!
//! Per user it keeps, in the database (so every instance shares it), one
//! bounded document: the networks and devices of completed sign-ins with
//! when they were last seen (to the hour), an hour-of-day profile (each
//! clock hour counted once), the sign-in count (capped) and recent
//! failures; the pace of sign-ins (velocity) is counted from the sessions
//! table. Entries unseen for `memory_s` (90 days) age out.
//!
//! The rule (docs/RISK.md explains each signal and why):
//! - while fewer than `learning_sign_ins` (3) sign-ins have completed, the
//!   engine only learns: there is no habit to compare with yet;
//! - then a sign-in from a network not seen lately steps up (a device
//!   sign-in answers `step_up_required`; a password sign-in naming a trusted
//!   device loses its `device` method);
//! - on a known network, an unseen device adds `new_device`, and only then do
//!   the other signals (an hour far from the profile, many sign-ins in a
//!   short time, failures since the last success) add their weights: a sum
//!   reaching `step_up_score` steps up. A known device on a known network is
//!   never stepped up, whatever the hour.
//!
//! Only sign-ins that proved possession (`amr` with `otp`, `hwk` or `swk`)
//! teach the engine: a password alone never makes a network known.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::SignedIn;
use super::{network_of, Assessment, Flow, RiskContext, RiskDecision, RiskPolicy, RiskResult};
use crate::storage::{RiskWrite, Store};

const DAY: i64 = 86_400;
/// Size bounds of one user's document (a few kilobytes at most).
const MAX_NETWORKS: usize = 32;
const MAX_DEVICES: usize = 16;
/// Last-seen times are refreshed at most this often (not per sign-in).
const LAST_SEEN_STEP_S: i64 = 3_600;
const MAX_FAILURES: usize = 32;
/// Failures older than this are forgotten.
const FAILURE_MEMORY_S: i64 = DAY;
/// The hour profile halves its counts past this total, so old habits fade
/// and the counters stay small.
const HOUR_DECAY_AT: u32 = 400;
/// Hours either side of the current one that count as "near" it.
const HOUR_SPREAD: usize = 2;
/// A burst of failures for the adaptive lockout: within this time...
const BURST_WINDOW_S: i64 = 3_600;
/// ...from at least this many networks.
const BURST_NETWORKS: usize = 3;
/// An account with fewer completed sign-ins than this is "fresh".
const SEASONED_SIGN_INS: u32 = 10;

/// Weights and thresholds (`serve --risk-*` flags; defaults documented in
/// docs/RISK.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HabitsConfig {
    /// How long a network or device stays known without being seen.
    pub memory_s: i64,
    /// Completed sign-ins before any step-up (3: the 4th is the first judged).
    pub learning_sign_ins: u32,
    pub weight_new_device: u32,
    pub weight_unusual_hour: u32,
    pub weight_velocity: u32,
    pub weight_recent_failures: u32,
    /// The summed weight that steps up a sign-in on a known network.
    pub step_up_score: u32,
    /// `velocity_count` sign-ins within `velocity_window_s` is "many".
    pub velocity_count: u32,
    pub velocity_window_s: i64,
    /// Failures since the last success that count as a signal.
    pub failures: u32,
    /// The hour profile is trusted from this many sign-ins on.
    pub hour_min_sign_ins: u32,
    /// Less than this share (percent) of sign-ins within two hours of now
    /// makes the hour unusual.
    pub hour_min_percent: u32,
    /// Lower the lockout threshold for a fresh account under a burst of
    /// failures from many networks (off by default).
    pub adaptive_lockout: bool,
}

impl Default for HabitsConfig {
    fn default() -> Self {
        HabitsConfig {
            memory_s: 90 * DAY,
            learning_sign_ins: 3,
            weight_new_device: 1,
            weight_unusual_hour: 1,
            weight_velocity: 2,
            weight_recent_failures: 2,
            step_up_score: 3,
            velocity_count: 5,
            velocity_window_s: 600,
            failures: 3,
            hour_min_sign_ins: 10,
            hour_min_percent: 5,
            adaptive_lockout: false,
        }
    }
}

/// Something the user was seen with: a network or a device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    key: String,
    first: i64,
    last: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Failure {
    at: i64,
    network: String,
}

/// One user's habits, as stored (JSON). Every list is bounded. Fields a
/// later version adds read as empty from older documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Sign-ins that taught the engine.
    completed: u32,
    /// Learning-phase passes handed out to unseen networks (claimed
    /// atomically, so racing sign-ins cannot share one pass).
    claimed: u32,
    last_success: Option<i64>,
    networks: Vec<Seen>,
    devices: Vec<Seen>,
    /// Hours (UTC) with a sign-in: each hour of the clock counts once, so
    /// a busy hour does not outweigh the habit and a sign-in in an hour
    /// already counted changes nothing.
    hours: [u32; 24],
    /// The last hour counted (Unix time / 3600).
    last_hour: Option<i64>,
    failures: Vec<Failure>,
    /// The learning phase ended, for good: `completed` stops counting, so
    /// without this mark raising `--risk-learning-sign-ins` later would send
    /// a long history back into learning (outside review of issue 10).
    learnt: bool,
}

impl Profile {
    /// A stored document. One that cannot be read (a bug, a manual edit, a
    /// bad restore) fails closed: past learning with nothing known, so every
    /// sign-in is stepped up until an OTP teaches a network again; never a
    /// fresh start, which would hand out learning passes.
    pub fn parse(doc: Option<&str>) -> Profile {
        match doc.map(serde_json::from_str::<Profile>) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::error!(error = %e, "unreadable risk profile: judging as unknown");
                Profile::distrusted()
            }
            None => Profile::default(),
        }
    }

    fn distrusted() -> Profile {
        Profile {
            completed: u32::MAX,
            claimed: u32::MAX,
            ..Profile::default()
        }
    }

    fn learning(&self, cfg: &HabitsConfig) -> bool {
        !self.learnt && self.completed.max(self.claimed) < cfg.learning_sign_ins
    }

    fn to_json(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    fn knows(list: &[Seen], key: &str, now: i64, memory_s: i64) -> bool {
        list.iter().any(|s| s.key == key && s.last > now - memory_s)
    }

    fn see(list: &mut Vec<Seen>, key: &str, now: i64, max: usize) {
        match list.iter_mut().find(|s| s.key == key) {
            Some(s) => s.last = s.last.max(now),
            None => list.push(Seen {
                key: key.to_owned(),
                first: now,
                last: now,
            }),
        }
        if list.len() > max {
            // The least recently seen goes first.
            list.sort_by_key(|s| std::cmp::Reverse(s.last));
            list.truncate(max);
        }
    }

    /// Drops what is older than the memory.
    fn age(&mut self, now: i64, cfg: &HabitsConfig) {
        self.networks.retain(|s| s.last > now - cfg.memory_s);
        self.devices.retain(|s| s.last > now - cfg.memory_s);
        self.failures.retain(|f| f.at > now - FAILURE_MEMORY_S);
    }

    /// A completed sign-in. Its network is learnt when it proved something
    /// from there: a code (`with_otp`), or a device proof while learning.
    /// Past learning, a device proof from an unseen network can only have
    /// come through without a step-up by a race or another policy: it
    /// teaches nothing, so a flood of them cannot push the holder's own
    /// networks out of the bounded list.
    ///
    /// Answers whether anything the engine keeps changed: a sign-in on a
    /// known device from a known network, both seen within the hour, in an
    /// hour already counted, with no failure pending, changes nothing, and
    /// its document is not rewritten (the steady state costs no write).
    fn learn_sign_in(
        &mut self,
        network: Option<&str>,
        device: Option<&str>,
        with_otp: bool,
        now: i64,
        cfg: &HabitsConfig,
    ) -> bool {
        self.age(now, cfg);
        // Counted by completed sign-ins: a pass claimed for this very one
        // must not keep it from teaching its network.
        let learning = !self.learnt && self.completed < cfg.learning_sign_ins;
        let mut changed = self.last_success.is_none() || self.failures_since_success(now) > 0;
        // Counted as far as any rule reads it.
        if self.completed < SEASONED_SIGN_INS.max(cfg.learning_sign_ins) {
            self.completed += 1;
            changed = true;
        }
        if !self.learnt && self.completed >= cfg.learning_sign_ins {
            self.learnt = true;
            changed = true;
        }
        if let Some(network) = network {
            let learnable =
                with_otp || learning || Self::knows(&self.networks, network, now, cfg.memory_s);
            if learnable && !Self::seen_within(&self.networks, network, now, LAST_SEEN_STEP_S) {
                Self::see(&mut self.networks, network, now, MAX_NETWORKS);
                changed = true;
            }
        }
        if let Some(d) = device {
            if !Self::seen_within(&self.devices, d, now, LAST_SEEN_STEP_S) {
                Self::see(&mut self.devices, d, now, MAX_DEVICES);
                changed = true;
            }
        }
        let hour_index = now.div_euclid(3600);
        if self.last_hour != Some(hour_index) {
            let hour = hour_of(now);
            self.hours[hour] = self.hours[hour].saturating_add(1);
            if self.hours.iter().map(|h| u64::from(*h)).sum::<u64>() > u64::from(HOUR_DECAY_AT) {
                for h in &mut self.hours {
                    *h /= 2;
                }
            }
            self.last_hour = Some(hour_index);
            changed = true;
        }
        if changed {
            self.last_success = Some(now);
        }
        changed
    }

    /// Whether `key` was seen within `step_s` (last-seen times are kept to
    /// the hour: the memory is 90 days).
    fn seen_within(list: &[Seen], key: &str, now: i64, step_s: i64) -> bool {
        list.iter().any(|s| s.key == key && s.last > now - step_s)
    }

    fn learn_failure(&mut self, network: Option<&str>, now: i64, cfg: &HabitsConfig) {
        self.age(now, cfg);
        self.failures.push(Failure {
            at: now,
            network: network.unwrap_or("unknown").to_owned(),
        });
        if self.failures.len() > MAX_FAILURES {
            let extra = self.failures.len() - MAX_FAILURES;
            self.failures.drain(..extra);
        }
    }

    /// A registered device. Its network is not learnt: a session's token
    /// can be used from anywhere, so the registration proves the session,
    /// not where its holder is.
    fn learn_device(&mut self, device: &str, now: i64, cfg: &HabitsConfig) {
        self.age(now, cfg);
        Self::see(&mut self.devices, device, now, MAX_DEVICES);
    }

    /// Takes one learning pass for an unseen network, if any is left.
    fn claim_learning_pass(&mut self, cfg: &HabitsConfig) -> bool {
        if !self.learning(cfg) {
            return false;
        }
        self.claimed = self.completed.max(self.claimed) + 1;
        true
    }

    /// Failures since the last completed sign-in (within a day).
    fn failures_since_success(&self, now: i64) -> usize {
        let since = self.last_success.unwrap_or(i64::MIN);
        self.failures
            .iter()
            .filter(|f| f.at > since && f.at > now - FAILURE_MEMORY_S)
            .count()
    }

    fn unusual_hour(&self, now: i64, cfg: &HabitsConfig) -> bool {
        // u64: a stored document's counters are not trusted to be small.
        let total: u64 = self.hours.iter().map(|h| u64::from(*h)).sum();
        if total < u64::from(cfg.hour_min_sign_ins) {
            return false;
        }
        let hour = hour_of(now);
        let near: u64 = (0..=2 * HOUR_SPREAD)
            .map(|i| u64::from(self.hours[(hour + 24 + i - HOUR_SPREAD) % 24]))
            .sum();
        near * 100 < total * u64::from(cfg.hour_min_percent)
    }

    /// The decision for one attempt, without the velocity signal.
    pub fn assess(&self, ctx: &RiskContext<'_>, cfg: &HabitsConfig) -> Assessment {
        self.assess_with(ctx, cfg, None)
    }

    /// The decision for one attempt (pure: the engine's whole rule), with
    /// the number of sign-ins in the velocity window when it was counted.
    pub fn assess_with(
        &self,
        ctx: &RiskContext<'_>,
        cfg: &HabitsConfig,
        recent_sign_ins: Option<i64>,
    ) -> Assessment {
        let now = ctx.now;
        let network = network_of(ctx.ip);
        let known_network = network
            .as_deref()
            .is_some_and(|n| Self::knows(&self.networks, n, now, cfg.memory_s));
        let known_device = ctx
            .device_id
            .map(|d| Self::knows(&self.devices, d, now, cfg.memory_s));

        let mut signals = Vec::new();
        let mut score = 0;
        if !known_network {
            signals.push("new_network".to_owned());
        }
        if known_device == Some(false) {
            signals.push("new_device".to_owned());
            score += cfg.weight_new_device;
        }
        let mut extra = |on: bool, name: &str, weight: u32| {
            if on {
                signals.push(name.to_owned());
                score += weight;
            }
        };
        extra(
            self.unusual_hour(now, cfg),
            "unusual_hour",
            cfg.weight_unusual_hour,
        );
        extra(
            recent_sign_ins.is_some_and(|n| n >= i64::from(cfg.velocity_count)),
            "velocity",
            cfg.weight_velocity,
        );
        extra(
            self.failures_since_success(now) >= cfg.failures as usize,
            "recent_failures",
            cfg.weight_recent_failures,
        );

        let learning = self.learning(cfg);
        let step_up = !learning
            && matters(ctx)
            && (!known_network || (known_device == Some(false) && score >= cfg.step_up_score));
        if learning {
            signals.push("learning".to_owned());
        }
        Assessment {
            decision: if step_up {
                RiskDecision::StepUp
            } else {
                RiskDecision::Allow
            },
            signals,
            score,
            basis: None,
        }
    }

    /// The adaptive lockout threshold (see `HabitsConfig::adaptive_lockout`).
    pub fn lockout_threshold(&self, configured: i64, now: i64) -> i64 {
        let fresh = self.completed < SEASONED_SIGN_INS;
        let burst: BTreeSet<&str> = self
            .failures
            .iter()
            .filter(|f| f.at > now - BURST_WINDOW_S)
            .map(|f| f.network.as_str())
            .collect();
        if fresh && burst.len() >= BURST_NETWORKS {
            ((configured + 1) / 2).max(2).min(configured)
        } else {
            configured
        }
    }
}

fn hour_of(now: i64) -> usize {
    now.rem_euclid(DAY) as usize / 3600
}

/// Whether a session's `amr` proved possession of something: only such
/// sign-ins teach the engine a network.
fn proves_possession(amr: &[String]) -> bool {
    amr.iter().any(|m| m == "otp" || m == "hwk" || m == "swk")
}

/// `--risk habits`.
pub struct HabitsPolicy {
    store: Arc<dyn Store>,
    config: HabitsConfig,
}

/// Reads, changes and writes one user's document in one transaction.
async fn update_profile(
    store: &dyn Store,
    config: &HabitsConfig,
    user_id: &str,
    now: i64,
    change: impl FnOnce(&mut Profile, &HabitsConfig) + Send + 'static,
) -> RiskResult<()> {
    let cfg = config.clone();
    store
        .update_risk_profile(
            user_id,
            now,
            Box::new(move |doc| {
                let mut p = Profile::parse(doc);
                change(&mut p, &cfg);
                p.to_json()
            }),
        )
        .await
}

impl HabitsPolicy {
    pub fn new(store: Arc<dyn Store>, config: HabitsConfig) -> Self {
        HabitsPolicy { store, config }
    }

    async fn profile(&self, user_id: &str) -> RiskResult<Profile> {
        Ok(Profile::parse(
            self.store.risk_profile(user_id).await?.as_deref(),
        ))
    }

    async fn update(
        &self,
        user_id: &str,
        now: i64,
        change: impl FnOnce(&mut Profile, &HabitsConfig) + Send + 'static,
    ) -> RiskResult<()> {
        update_profile(&*self.store, &self.config, user_id, now, change).await
    }
}

#[async_trait]
impl RiskPolicy for HabitsPolicy {
    async fn assess(&self, ctx: &RiskContext<'_>) -> RiskResult<Assessment> {
        let doc = self.store.risk_profile(ctx.user_id).await?;
        let profile = Profile::parse(doc.as_deref());
        let mut a = profile.assess(ctx, &self.config);
        let has = |a: &Assessment, s: &str| a.signals.iter().any(|x| x == s);
        // Velocity only counts on a known network with an unseen device
        // (the one case its weight can decide), so only then is it counted:
        // from the sessions the sign-ins made, not from the document.
        if has(&a, "new_device") && !has(&a, "new_network") && !has(&a, "learning") && matters(ctx)
        {
            let since = ctx.now - self.config.velocity_window_s;
            let n = self.store.sign_ins_since(ctx.user_id, since).await?;
            a = profile.assess_with(ctx, &self.config, Some(n));
        }
        a.basis = Some(doc);
        if has(&a, "learning") && has(&a, "new_network") && matters(ctx) {
            // The read above is stale by the time the sign-in completes:
            // the pass an unseen network gets while learning is claimed in
            // one transaction, so racing sign-ins cannot all take it.
            let granted = Arc::new(AtomicBool::new(false));
            let flag = granted.clone();
            self.update(ctx.user_id, ctx.now, move |p, cfg| {
                flag.store(p.claim_learning_pass(cfg), Ordering::SeqCst)
            })
            .await?;
            if !granted.load(Ordering::SeqCst) {
                a.signals.retain(|s| s != "learning");
                a.decision = RiskDecision::StepUp;
            }
        }
        Ok(a)
    }

    async fn signed_in(&self, e: &SignedIn<'_>) -> RiskResult<()> {
        let Some(change) = sign_in_change(e) else {
            return Ok(());
        };
        self.update(e.user_id, e.now, move |p, cfg| {
            change(p, cfg);
        })
        .await
    }

    fn learns_in_transaction(&self) -> bool {
        true
    }

    async fn sign_in_write(
        &self,
        e: &SignedIn<'_>,
        judged: &Assessment,
    ) -> RiskResult<Option<RiskWrite>> {
        let Some(change) = sign_in_change(e) else {
            return Ok(None);
        };
        // The document `assess` judged on: one read per sign-in, not two.
        let expected = match &judged.basis {
            Some(doc) => doc.clone(),
            None => self.store.risk_profile(e.user_id).await?,
        };
        let mut p = Profile::parse(expected.as_deref());
        if !change(&mut p, &self.config) {
            return Ok(None);
        }
        Ok(Some(RiskWrite {
            user_id: e.user_id.to_owned(),
            expected,
            new: p.to_json(),
        }))
    }

    async fn failed(
        &self,
        user_id: &str,
        ip: IpAddr,
        now: i64,
        configured: i64,
    ) -> RiskResult<i64> {
        let network = network_of(ip);
        let change = move |p: &mut Profile, cfg: &HabitsConfig| {
            p.learn_failure(network.as_deref(), now, cfg)
        };
        if !self.config.adaptive_lockout {
            // Off the response path: a wrong password for an existing user
            // must not take longer to answer than one for an unknown id.
            let store = self.store.clone();
            let config = self.config.clone();
            let user_id = user_id.to_owned();
            tokio::spawn(async move {
                if let Err(e) = update_profile(&*store, &config, &user_id, now, change).await {
                    tracing::warn!(error = %e, "risk policy could not learn a failure");
                }
            });
            return Ok(configured);
        }
        self.update(user_id, now, change).await?;
        Ok(self
            .profile(user_id)
            .await?
            .lockout_threshold(configured, now))
    }

    async fn device_added(
        &self,
        user_id: &str,
        device_id: &str,
        _ip: IpAddr,
        now: i64,
    ) -> RiskResult<()> {
        let device = device_id.to_owned();
        self.update(user_id, now, move |p, cfg| {
            p.learn_device(&device, now, cfg)
        })
        .await
    }
}

/// What a completed sign-in changes in the document, if it teaches anything.
fn sign_in_change(
    e: &SignedIn<'_>,
) -> Option<impl FnOnce(&mut Profile, &HabitsConfig) -> bool + Send + 'static> {
    if !proves_possession(e.amr) {
        return None;
    }
    let network = if e.teaches_network {
        network_of(e.ip)
    } else {
        None
    };
    let with_otp = e.amr.iter().any(|m| m == "otp");
    let device = e.device_id.map(str::to_owned);
    let now = e.now;
    Some(move |p: &mut Profile, cfg: &HabitsConfig| {
        p.learn_sign_in(network.as_deref(), device.as_deref(), with_otp, now, cfg)
    })
}

/// Whether a step-up would change anything for this attempt: a device
/// sign-in always; a password sign-in only with a trusted device named (its
/// `device` method to withhold) in a market that has a second step at all.
fn matters(ctx: &RiskContext<'_>) -> bool {
    match ctx.flow {
        Flow::Device => true,
        Flow::Password => ctx.device_id.is_some() && ctx.second_factor_market,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const HOME: &str = "10.1.2.3";
    const AWAY: &str = "192.0.2.7";
    const PHONE: &str = "phone";

    fn ctx<'a>(flow: Flow, ip: &str, device: Option<&'a str>, now: i64) -> RiskContext<'a> {
        RiskContext {
            flow,
            user_id: "u",
            device_id: device,
            ip: ip.parse().expect("ip"),
            user_agent: None,
            now,
            second_factor_market: true,
        }
    }

    fn signed_in(p: &mut Profile, ip: &str, device: Option<&str>, now: i64) {
        let cfg = HabitsConfig::default();
        let network = network_of(ip.parse().expect("ip"));
        p.learn_sign_in(network.as_deref(), device, true, now, &cfg);
    }

    /// A clock at 09:00 UTC on some day, moved by the test.
    fn morning() -> ManualClock {
        let clock = ManualClock::new();
        let now = clock.now();
        clock.advance(DAY - now.rem_euclid(DAY) + 9 * 3600);
        clock
    }

    /// Three sign-ins, an hour apart, from home on the phone.
    fn seasoned(clock: &ManualClock) -> Profile {
        let mut p = Profile::default();
        for _ in 0..3 {
            signed_in(&mut p, HOME, Some(PHONE), clock.now());
            clock.advance(3600);
        }
        p
    }

    #[test]
    fn the_first_three_sign_ins_only_learn() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = Profile::default();
        for i in 0..3 {
            let a = p.assess(&ctx(Flow::Device, AWAY, Some(PHONE), clock.now()), &cfg);
            assert_eq!(a.decision, RiskDecision::Allow, "sign-in {}", i + 1);
            assert!(a.signals.contains(&"learning".to_owned()));
            signed_in(&mut p, HOME, Some(PHONE), clock.now());
            clock.advance(3600);
        }
        let a = p.assess(&ctx(Flow::Device, AWAY, Some(PHONE), clock.now()), &cfg);
        assert_eq!(a.decision, RiskDecision::StepUp);
        assert_eq!(a.signals, vec!["new_network"]);
    }

    #[test]
    fn a_known_device_on_a_known_network_is_never_stepped_up() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = seasoned(&clock); // 09:00, 10:00, 11:00; now 12:00
                                      // Ten days of noons: the hour profile is trusted.
        for _ in 0..7 {
            signed_in(&mut p, HOME, Some(PHONE), clock.now());
            clock.advance(DAY);
        }
        clock.advance(15 * 3600); // 03:00: far from every sign-in so far
        for _ in 0..5 {
            p.learn_failure(
                network_of(AWAY.parse().unwrap()).as_deref(),
                clock.now(),
                &cfg,
            );
        }
        let a = p.assess_with(
            &ctx(Flow::Device, HOME, Some(PHONE), clock.now()),
            &cfg,
            Some(50),
        );
        assert_eq!(a.decision, RiskDecision::Allow, "{a:?}");
        assert_eq!(
            a.signals,
            vec!["unusual_hour", "velocity", "recent_failures"]
        );
        assert_eq!(a.score, 5);
    }

    #[test]
    fn a_new_device_on_a_known_network_steps_up_only_with_other_signals() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let p = seasoned(&clock);
        let quiet = p.assess(&ctx(Flow::Device, HOME, Some("tablet"), clock.now()), &cfg);
        assert_eq!(quiet.decision, RiskDecision::Allow);
        assert_eq!(quiet.signals, vec!["new_device"]);
        assert_eq!(quiet.score, 1);

        let mut failing = p.clone();
        for _ in 0..3 {
            failing.learn_failure(Some("x"), clock.now(), &cfg);
        }
        let a = failing.assess(&ctx(Flow::Device, HOME, Some("tablet"), clock.now()), &cfg);
        assert_eq!(a.decision, RiskDecision::StepUp, "{a:?}");
        assert_eq!(a.signals, vec!["new_device", "recent_failures"]);
        assert_eq!(a.score, 3);
    }

    #[test]
    fn velocity_counts_sign_ins_inside_the_window() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let p = seasoned(&clock);
        let at = |n| {
            p.assess_with(
                &ctx(Flow::Device, HOME, Some("tablet"), clock.now()),
                &cfg,
                Some(n),
            )
        };
        // 4 inside the window: not yet; 5: many.
        assert_eq!(at(4).signals, vec!["new_device"]);
        let a = at(5);
        assert_eq!(a.signals, vec!["new_device", "velocity"]);
        assert_eq!(a.decision, RiskDecision::StepUp);
    }

    /// Review: the count capped at `max(10, learning_sign_ins)` is read by
    /// `learning()` against the *current* configuration: an operator who
    /// later raises `--risk-learning-sign-ins` puts every capped holder back
    /// in the learning phase (passes for unseen networks, and a device proof
    /// from one teaches it), however long their history.
    #[test]
    fn raising_the_learning_phase_does_not_reopen_it_for_long_histories() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = seasoned(&clock);
        for _ in 0..50 {
            clock.advance(DAY);
            signed_in(&mut p, HOME, Some(PHONE), clock.now());
        }
        let raised = HabitsConfig {
            learning_sign_ins: 20,
            ..cfg.clone()
        };
        let a = p.assess(&ctx(Flow::Device, AWAY, Some(PHONE), clock.now()), &raised);
        assert_eq!(
            a.decision,
            RiskDecision::StepUp,
            "53 sign-ins, still learning: {a:?}"
        );
        // And a device proof from that network (which came through on a
        // learning pass) would teach it.
        let away = network_of(AWAY.parse().unwrap());
        p.learn_sign_in(away.as_deref(), Some(PHONE), false, clock.now(), &raised);
        let a = p.assess(&ctx(Flow::Device, AWAY, Some(PHONE), clock.now()), &cfg);
        assert!(
            a.signals.contains(&"new_network".to_owned()),
            "taught by a device proof: {a:?}"
        );
    }

    #[test]
    fn a_steady_sign_in_changes_nothing_and_writes_nothing() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = seasoned(&clock);
        for _ in 0..SEASONED_SIGN_INS {
            clock.advance(DAY);
            signed_in(&mut p, HOME, Some(PHONE), clock.now());
        }
        let home = network_of(HOME.parse().unwrap());
        clock.advance(60);
        let before = p.clone();
        // Same hour, same device and network seen minutes ago, nothing
        // pending: nothing to keep.
        assert!(!p.learn_sign_in(home.as_deref(), Some(PHONE), false, clock.now(), &cfg));
        assert_eq!(p, before);
        // A failure pending, a new hour, or a new device each change it.
        p.learn_failure(home.as_deref(), clock.now(), &cfg);
        assert!(p.learn_sign_in(home.as_deref(), Some(PHONE), false, clock.now() + 1, &cfg));
        assert!(p.learn_sign_in(
            home.as_deref(),
            Some(PHONE),
            false,
            clock.now() + 3_600,
            &cfg
        ));
        assert!(p.learn_sign_in(
            home.as_deref(),
            Some("tablet"),
            false,
            clock.now() + 3_601,
            &cfg
        ));
    }

    #[test]
    fn the_hour_profile_needs_history_and_marks_far_hours() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = Profile::default();
        // Nine mornings: not enough history to call any hour unusual.
        for _ in 0..9 {
            signed_in(&mut p, HOME, Some(PHONE), clock.now());
            clock.advance(DAY);
        }
        let night = clock.now() + 15 * 3600; // 00:00
        assert!(!p.unusual_hour(night, &cfg));
        signed_in(&mut p, HOME, Some(PHONE), clock.now());
        assert!(p.unusual_hour(night, &cfg));
        // 11:00 is within two hours of 09:00; 12:00 is not.
        assert!(!p.unusual_hour(clock.now() + 2 * 3600, &cfg));
        assert!(p.unusual_hour(clock.now() + 3 * 3600, &cfg));
        // Across midnight: habits at 23:00 make 01:00 usual.
        let mut owl = Profile::default();
        let late = clock.now() + 14 * 3600; // 23:00
        for d in 0..10 {
            signed_in(&mut owl, HOME, Some(PHONE), late + d * DAY);
        }
        assert!(!owl.unusual_hour(late + 2 * 3600 + 10 * DAY, &cfg));
    }

    #[test]
    fn networks_and_devices_age_out_after_the_memory() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = seasoned(&clock);
        clock.advance(cfg.memory_s - 3 * 3600);
        let a = p.assess(&ctx(Flow::Device, HOME, Some(PHONE), clock.now()), &cfg);
        assert_eq!(a.decision, RiskDecision::Allow, "day 89: {a:?}");
        clock.advance(3 * 3600);
        let a = p.assess(&ctx(Flow::Device, HOME, Some(PHONE), clock.now()), &cfg);
        assert_eq!(a.decision, RiskDecision::StepUp, "day 90");
        assert_eq!(a.signals, vec!["new_network", "new_device"]);
        // Learning anything drops the aged entries from the document.
        signed_in(&mut p, AWAY, Some("tablet"), clock.now());
        assert_eq!(p.networks.len(), 1);
        assert_eq!(p.devices.len(), 1);
    }

    #[test]
    fn the_document_stays_bounded() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = Profile::default();
        for i in 0..1000u32 {
            let ip = format!("10.{}.{}.1", i / 256, i % 256);
            signed_in(&mut p, &ip, Some(&format!("d{i}")), clock.now());
            p.learn_failure(Some(&ip), clock.now(), &cfg);
            clock.advance(7);
        }
        assert_eq!(p.networks.len(), MAX_NETWORKS);
        assert_eq!(p.devices.len(), MAX_DEVICES);
        assert_eq!(p.failures.len(), MAX_FAILURES);
        assert!(p.hours.iter().sum::<u32>() <= HOUR_DECAY_AT);
        // The most recent are the ones kept.
        assert!(p.devices.iter().any(|d| d.key == "d999"));
        assert!(p.to_json().len() < 8_000, "{}", p.to_json().len());
    }

    #[test]
    fn a_password_sign_in_steps_up_only_where_a_device_method_is_withheld() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let p = seasoned(&clock);
        let now = clock.now();
        let named = p.assess(&ctx(Flow::Password, AWAY, Some(PHONE), now), &cfg);
        assert_eq!(named.decision, RiskDecision::StepUp);
        let none = p.assess(&ctx(Flow::Password, AWAY, None, now), &cfg);
        assert_eq!(none.decision, RiskDecision::Allow);
        assert_eq!(none.signals, vec!["new_network"]);
        let mut no_2fa = ctx(Flow::Password, AWAY, Some(PHONE), now);
        no_2fa.second_factor_market = false;
        assert_eq!(p.assess(&no_2fa, &cfg).decision, RiskDecision::Allow);
    }

    #[test]
    fn adaptive_lockout_is_sooner_only_for_a_fresh_account_under_a_spread_burst() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut fresh = seasoned(&clock);
        for net in ["1.1.1.0/24", "2.2.2.0/24"] {
            fresh.learn_failure(Some(net), clock.now(), &cfg);
        }
        assert_eq!(fresh.lockout_threshold(5, clock.now()), 5);
        fresh.learn_failure(Some("3.3.3.0/24"), clock.now(), &cfg);
        assert_eq!(fresh.lockout_threshold(5, clock.now()), 3);
        // An hour on, the burst is over.
        clock.advance(BURST_WINDOW_S);
        assert_eq!(fresh.lockout_threshold(5, clock.now()), 5);

        // A long clean history keeps the configured limit.
        let mut seasoned_user = seasoned(&clock);
        for _ in 0..SEASONED_SIGN_INS {
            signed_in(&mut seasoned_user, HOME, Some(PHONE), clock.now());
        }
        for net in ["1.1.1.0/24", "2.2.2.0/24", "3.3.3.0/24", "4.4.4.0/24"] {
            seasoned_user.learn_failure(Some(net), clock.now(), &cfg);
        }
        assert_eq!(seasoned_user.lockout_threshold(5, clock.now()), 5);
        // Never above the configured limit, never below 2.
        assert_eq!(fresh.lockout_threshold(1, clock.now() - BURST_WINDOW_S), 1);
    }

    #[test]
    fn an_unreadable_document_fails_closed() {
        let cfg = HabitsConfig::default();
        let now = morning().now();
        for doc in ["{not json", "{\"completed\": \"three\"}", "42"] {
            let p = Profile::parse(Some(doc));
            let a = p.assess(&ctx(Flow::Device, HOME, Some(PHONE), now), &cfg);
            assert_eq!(a.decision, RiskDecision::StepUp, "{doc}: {a:?}");
            assert!(!a.signals.contains(&"learning".to_owned()), "{doc}");
        }
        // Huge counters neither panic nor wrap.
        let p = Profile::parse(Some(&format!(
            "{{\"hours\": [{}]}}",
            vec![u32::MAX.to_string(); 24].join(",")
        )));
        assert!(!p.unusual_hour(now, &cfg));
        let mut p = p;
        signed_in(&mut p, HOME, Some(PHONE), now);
        // An older document without a later field still reads.
        let p = Profile::parse(Some("{\"completed\":4}"));
        assert_eq!(p.completed, 4);
    }

    #[test]
    fn past_learning_a_device_proof_from_an_unseen_network_teaches_nothing() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = seasoned(&clock);
        let away = network_of(AWAY.parse().unwrap());
        // However many slip through (a race, another policy)...
        for _ in 0..100 {
            p.learn_sign_in(away.as_deref(), Some(PHONE), false, clock.now(), &cfg);
        }
        assert!(!Profile::knows(
            &p.networks,
            away.as_deref().unwrap(),
            clock.now(),
            cfg.memory_s
        ));
        // ...while a code from there does.
        p.learn_sign_in(away.as_deref(), Some(PHONE), true, clock.now(), &cfg);
        assert!(Profile::knows(
            &p.networks,
            away.as_deref().unwrap(),
            clock.now(),
            cfg.memory_s
        ));
    }

    #[test]
    fn learning_passes_are_claimed_once_each() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = Profile::default();
        signed_in(&mut p, HOME, Some(PHONE), clock.now());
        // One sign-in done: two passes left, however many ask at once.
        let granted = (0..150).filter(|_| p.claim_learning_pass(&cfg)).count();
        assert_eq!(granted, 2);
        assert!(!p.learning(&cfg));
    }

    #[test]
    fn a_registration_teaches_the_device_not_the_network() {
        let cfg = HabitsConfig::default();
        let clock = morning();
        let mut p = seasoned(&clock);
        p.learn_device("tablet", clock.now(), &cfg);
        let a = p.assess(&ctx(Flow::Device, AWAY, Some("tablet"), clock.now()), &cfg);
        assert_eq!(a.decision, RiskDecision::StepUp);
        assert_eq!(a.signals, vec!["new_network"]);
    }

    /// A device sign-in reads the habits once: `sign_in_write` plans from
    /// the document `assess` judged on, even when the store has moved on
    /// (the sign-in's transaction then finds it changed and skips the
    /// write; the caller learns afterwards, as for any lost swap).
    #[tokio::test]
    async fn the_write_is_planned_from_the_judged_document() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("risk.db");
        let store: Arc<dyn Store> = Arc::new(
            crate::storage::sqlite::SqliteStore::open(path.to_str().expect("path"))
                .await
                .expect("store"),
        );
        let policy = HabitsPolicy::new(store.clone(), HabitsConfig::default());
        let clock = morning();
        let judged = policy
            .assess(&ctx(Flow::Device, HOME, Some(PHONE), clock.now()))
            .await
            .expect("assess");
        assert_eq!(judged.basis, Some(None), "no document yet");
        // Another sign-in completes in between.
        policy
            .update("u", clock.now(), |p, cfg| {
                let home = network_of(HOME.parse().expect("ip"));
                p.learn_sign_in(home.as_deref(), Some("tablet"), true, 1, cfg);
            })
            .await
            .expect("update");
        let amr = vec!["hwk".to_owned()];
        let event = SignedIn {
            user_id: "u",
            device_id: Some(PHONE),
            ip: HOME.parse().expect("ip"),
            amr: &amr,
            now: clock.now(),
            teaches_network: true,
        };
        let write = policy
            .sign_in_write(&event, &judged)
            .await
            .expect("plan")
            .expect("a first sign-in is learnt");
        assert_eq!(write.expected, None, "planned from the judged read");
        // Without a basis (a policy that judged elsewhere) it reads.
        let write = policy
            .sign_in_write(&event, &Assessment::allow())
            .await
            .expect("plan")
            .expect("learnt");
        assert!(write.expected.is_some());
    }
}
