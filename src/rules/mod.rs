//! The diagnosis: rules read the analysis model (never bytes) and emit [`Finding`]s with
//! evidence. Each rule is a unit struct implementing [`Rule`] with static [`RuleMeta`];
//! [`registry`] lists them all, and `sipscope rules`, `sipscope explain` and
//! `docs/rules.md` are generated from it.

use crate::correlate::Analysis;
use crate::types::{FrameRef, Ts};
use serde::Serialize;

mod catalogue;
mod doc;
mod families;
pub mod profile;
pub use catalogue::registry;
pub use doc::markdown;
pub use profile::Profile;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    Capture,
    Call {
        call_id: String,
    },
    Registration {
        aor: String,
        contact: String,
    },
    Stream {
        ssrc: String,
        src: String,
        dst: String,
    },
    Host {
        address: String,
    },
}

/// One piece of proof: a frame, its time, and what it shows (the exact line or value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub frame: Option<FrameRef>,
    /// Seconds since the first frame of the capture.
    pub time: Option<f64>,
    pub what: String,
}

/// A diagnosed problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub subject: Subject,
    /// One line with the measured numbers.
    pub summary: String,
    pub explanation: &'static str,
    pub remediation: &'static str,
    pub evidence: Vec<Evidence>,
}

/// Static description of a rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleMeta {
    /// Stable id, `family.name`.
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub explanation: &'static str,
    pub remediation: &'static str,
    /// Thresholds and defaults, as text for `explain`.
    pub thresholds: &'static str,
    /// Reads one call and its streams only (or one orphan stream): see [`call_local`].
    pub call_local: bool,
}

impl RuleMeta {
    pub fn family(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }
}

/// Thresholds the rules use (a `--config` TOML file may set any of them).
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Packet loss (percent) above which `qos.loss` fires.
    pub loss_pct: f64,
    /// Max jitter (ms) above which `qos.jitter` fires.
    pub jitter_ms: f64,
    /// MOS below which `qos.mos` fires.
    pub mos: f64,
    /// Consecutive lost packets that make `qos.burst-loss`.
    pub burst_packets: u64,
    /// Fraction lost reported by RTCP (0..1) above which `qos.rtcp-reported` fires.
    pub rtcp_fraction_lost: f64,
    /// RTT (ms) computed from RTCP above which `qos.rtcp-reported` fires.
    pub rtt_ms: f64,
    /// Post-dial delay (ms) above which `sip.slow-setup` fires.
    pub post_dial_delay_ms: f64,
    /// Share of a peer's requests that were retransmitted before `sip.retransmissions` fires.
    pub retransmission_ratio: f64,
    /// And the least number of retransmissions for it.
    pub retransmission_min: u64,
    /// SIP over UDP above this size (bytes) is `sip.oversize-udp`.
    pub udp_sip_bytes: usize,
    /// A silence in RTP longer than this (s) mid-call is `media.stopped`.
    pub rtp_timeout_s: f64,
    /// How long a NAT keeps an idle UDP binding (s). Linux conntrack keeps an assured UDP
    /// flow 120 s; consumer routers range from 30 s to 300 s.
    pub nat_timeout_s: f64,
    /// Recommended keepalive interval range (s), from providers' advice.
    pub keepalive_min_s: f64,
    pub keepalive_max_s: f64,
    /// Shortest sensible registration interval (s).
    pub min_register_s: u32,
    /// Auth failures from one source that make `security.bruteforce`.
    pub auth_failures: u64,
    /// Distinct destinations from one source within a minute for `security.toll-fraud`.
    pub fraud_destinations: usize,
    /// SIP requests per second from one source for `security.flood`.
    pub flood_rps: f64,
    /// Distinct user parts probed from one source for `security.scanner`.
    pub scan_users: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            loss_pct: 1.0,
            jitter_ms: 30.0,
            mos: 3.6,
            burst_packets: 5,
            rtcp_fraction_lost: 0.05,
            rtt_ms: 400.0,
            post_dial_delay_ms: 5000.0,
            retransmission_ratio: 0.1,
            retransmission_min: 3,
            udp_sip_bytes: 1300,
            rtp_timeout_s: 5.0,
            nat_timeout_s: 120.0,
            keepalive_min_s: 20.0,
            keepalive_max_s: 170.0,
            min_register_s: 60,
            auth_failures: 10,
            fraud_destinations: 10,
            flood_rps: 50.0,
            scan_users: 10,
        }
    }
}

/// Inputs every check gets besides the model.
pub struct Ctx<'a> {
    pub analysis: &'a Analysis,
    pub thresholds: &'a Thresholds,
    /// The capture's first timestamp, for relative times.
    pub t0: Ts,
    /// The trunk's policy profile; the `policy.*` rules do nothing without one.
    pub profile: Option<&'a Profile>,
    /// The same traffic captured at a second vantage point (`--vantage`): the far side of
    /// a NAT/ALG router. `alg.two-capture-diff` compares the two.
    pub vantage: Option<&'a Analysis>,
}

impl Ctx<'_> {
    pub fn rel(&self, ts: Ts) -> f64 {
        (ts.secs_since(self.t0) * 1e6).round() / 1e6
    }
    pub fn ev(&self, frame: FrameRef, ts: Ts, what: impl Into<String>) -> Evidence {
        Evidence {
            frame: Some(frame),
            time: Some(self.rel(ts)),
            what: what.into(),
        }
    }
}

/// A diagnosis rule: metadata plus a pure check.
pub trait Rule: Sync {
    fn meta(&self) -> &'static RuleMeta;
    fn check(&self, cx: &Ctx<'_>, out: &mut Vec<Finding>);
}

/// Ids of the rules that read one call and its streams only (or one orphan stream),
/// marked `call_local` in their metadata, so they can run on a call when it is finalised
/// instead of on the whole capture at the end: the first slice of streaming finalisation
/// (docs/performance.md, "Memory"). `tests/call_local.rs` checks, on every fixture and
/// public capture, that each finds exactly the same per call as on the whole capture;
/// `tests/rules.rs` does on every rule scenario. The other rules read across calls
/// (per-peer clusters, per-source windows, registrations against calls, the capture's
/// end) and need running aggregates first.
pub fn call_local() -> Vec<&'static str> {
    registry()
        .iter()
        .map(|r| r.meta())
        .filter(|m| m.call_local)
        .map(|m| m.id)
        .collect()
}

/// How long after a call's last packet (SIP, RTP or RTCP) a call-local rule may judge it:
/// 64·T1, the longest an RFC 3261 transaction keeps retransmitting.
pub const CALL_SETTLE_S: f64 = 32.0;

/// Which rules to run: ids or families to enable (empty = all) and to disable.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub disable: Vec<String>,
}

impl Selection {
    fn matches(list: &[String], m: &RuleMeta) -> bool {
        list.iter().any(|s| s == m.id || s == m.family())
    }
    pub fn wants(&self, m: &RuleMeta) -> bool {
        (self.only.is_empty() || Self::matches(&self.only, m)) && !Self::matches(&self.disable, m)
    }
}

/// Run the selected rules; findings sorted by severity (worst first), then subject, then rule.
/// The `policy.*` rules need a profile and find nothing here: see [`run_with_profile`].
pub fn run(analysis: &Analysis, thresholds: &Thresholds, sel: &Selection) -> Vec<Finding> {
    run_with_profile(analysis, thresholds, sel, None)
}

/// [`run`] with a trunk policy profile (`--profile FILE.toml`, read with
/// [`Profile::load`]): the `policy.*` rules compare the capture against it, and its
/// `nat_binding_timeout_s` / `keepalive_interval_s` replace the thresholds `nat_timeout_s`
/// / `keepalive_max_s` for the other rules.
pub fn run_with_profile(
    analysis: &Analysis,
    thresholds: &Thresholds,
    sel: &Selection,
    profile: Option<&Profile>,
) -> Vec<Finding> {
    run_all(analysis, thresholds, sel, profile, None)
}

/// Run the selected rules with an optional policy profile and an optional second capture
/// of the same traffic taken at another vantage point.
pub fn run_all(
    analysis: &Analysis,
    thresholds: &Thresholds,
    sel: &Selection,
    profile: Option<&Profile>,
    vantage: Option<&Analysis>,
) -> Vec<Finding> {
    let mut th = thresholds.clone();
    if let Some(p) = profile {
        if let Some(n) = p
            .nat_binding_timeout_s
            .filter(|n| n.is_finite() && *n > 0.0)
        {
            th.nat_timeout_s = n;
        }
        if let Some(k) = p.keepalive_interval_s.filter(|k| k.is_finite() && *k > 0.0) {
            th.keepalive_max_s = k;
        }
    }
    let cx = Ctx {
        analysis,
        thresholds: &th,
        t0: analysis.capture.first_ts.unwrap_or_default(),
        profile,
        vantage,
    };
    // Rules are pure functions of the immutable model: they run side by side on the
    // current rayon pool (the CLI sizes it with `--threads`). Each rule's findings are
    // collected in catalogue order and the sort below is stable, so the result does not
    // depend on the number of threads.
    use rayon::prelude::*;
    let selected: Vec<&dyn Rule> = registry()
        .iter()
        .copied()
        .filter(|r| sel.wants(r.meta()))
        .collect();
    let per_rule: Vec<Vec<Finding>> = selected
        .par_iter()
        .map(|r| {
            let mut v = Vec::new();
            r.check(&cx, &mut v);
            v
        })
        .collect();
    let mut out: Vec<Finding> = per_rule.into_iter().flatten().collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.subject.cmp(&b.subject))
            .then_with(|| a.rule.cmp(b.rule))
    });
    out
}

/// Make a Finding from a rule's metadata.
pub fn finding(
    meta: &'static RuleMeta,
    subject: Subject,
    summary: String,
    evidence: Vec<Evidence>,
) -> Finding {
    Finding {
        rule: meta.id,
        severity: meta.severity,
        subject,
        summary,
        explanation: meta.explanation,
        remediation: meta.remediation,
        evidence,
    }
}
