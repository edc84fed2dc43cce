//! The diagnosis: rules read the analysis model (never bytes) and emit [`Finding`]s with
//! evidence. Each rule is a unit struct implementing [`Rule`] with static [`RuleMeta`];
//! [`registry`] lists them all, and `sipscope rules`, `sipscope explain` and
//! `docs/rules.md` are generated from it.

use crate::correlate::{Analysis, Call, Stream};
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
    /// A rule that reads across calls gives its check as a running aggregate (see
    /// [`Aggregate`]); its `check` is then [`fold`] over the model's units.
    fn aggregate(&self) -> Option<Box<dyn Aggregate>> {
        None
    }
}

/// One unit of streaming finalisation: a call with its streams, or one stream that no
/// call claimed. The engine can hand a unit to the rules once the capture clock has
/// passed it, then release it.
pub struct Unit<'a> {
    pub call: Option<&'a Call>,
    /// The call's streams in `call.streams` order, or the one orphan stream. A stream's
    /// `call` index is meaningless here (the unit has no place in the whole model): use
    /// `call`.
    pub streams: Vec<&'a Stream>,
}

impl Unit<'_> {
    /// Where the unit's call sorts in the report (calls are ordered by first frame, then
    /// Call-ID): an aggregate that keeps calls in capture order sorts by this at the end.
    /// Streams sort by [`Stream::order`] (discovery order, which is not frame order when
    /// several files are merged by time).
    pub fn sort_key(&self) -> (FrameRef, &str) {
        match self.call {
            Some(c) => (c.sip.first_frame, c.sip.call_id.as_str()),
            None => (FrameRef::default(), ""),
        }
    }
}

/// The units of a whole model, in report order: each call with its streams, then each
/// orphan stream.
pub fn units(a: &Analysis) -> impl Iterator<Item = Unit<'_>> {
    let calls = a.calls.iter().map(|c| Unit {
        call: Some(c),
        streams: c.streams.iter().filter_map(|i| a.streams.get(*i)).collect(),
    });
    let orphans = a.streams.iter().filter(|s| s.call.is_none()).map(|s| Unit {
        call: None,
        streams: vec![s],
    });
    calls.chain(orphans)
}

/// A rule that reads across calls, written as a running aggregate so that calls can be
/// released as they are finalised: it sees each unit once, **in any order**, keeps only
/// what it needs (a count, a window, the evidence of the few calls it may cite), and
/// decides at the end.
/// - `observe` reads the unit, the thresholds, the profile and `cx.t0` only: when the
///   engine finalises a unit mid-capture nothing else of the model exists yet (its
///   `cx.analysis` is empty but for `capture.first_ts`).
/// - `finish` reads what it kept and the model without calls or streams (they are gone
///   by then): registrations, out-of-dialog transactions, signalling activity, capture
///   facts, all complete.
///
/// `tests/call_local.rs` and `tests/rules.rs` check both on every capture and rule
/// scenario ([`run_released`]): the units come in reverse order, to an empty model, and
/// the end to a model stripped of its calls and streams.
pub trait Aggregate: Send {
    fn observe(&mut self, cx: &Ctx<'_>, unit: &Unit<'_>);
    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>);
}

/// Run an aggregate over every unit of `cx.analysis`, in report order.
pub fn fold(
    cx: &Ctx<'_>,
    meta: &'static RuleMeta,
    mut agg: Box<dyn Aggregate>,
    out: &mut Vec<Finding>,
) {
    for u in units(cx.analysis) {
        agg.observe(cx, &u);
    }
    agg.finish(cx, meta, out);
}

/// Ids of the rules given as running aggregates ([`Aggregate`]).
pub fn aggregates() -> Vec<&'static str> {
    registry()
        .iter()
        .filter(|r| r.aggregate().is_some())
        .map(|r| r.meta().id)
        .collect()
}

/// Ids of the rules that read one call and its streams only (or one orphan stream),
/// marked `call_local` in their metadata, so they can run on a call when it is finalised
/// instead of on the whole capture at the end: the first slice of streaming finalisation
/// (docs/performance.md, "Memory"). `tests/call_local.rs` checks, on every fixture and
/// public capture, that each finds exactly the same per call as on the whole capture;
/// `tests/rules.rs` does on every rule scenario. The other rules read across calls
/// (per-peer clusters, registrations against calls, the capture's
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
/// 64·T1, the longest an RFC 3261 transaction keeps retransmitting; the streaming
/// engine's settling time (`correlate::SETTLE_NS`), in seconds.
pub const CALL_SETTLE_S: f64 = crate::correlate::SETTLE_NS as f64 / 1e9;

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
    let th = effective_thresholds(thresholds, profile);
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
    sort_findings(&mut out);
    out
}

/// The thresholds with a profile's `nat_binding_timeout_s` / `keepalive_interval_s` in.
fn effective_thresholds(thresholds: &Thresholds, profile: Option<&Profile>) -> Thresholds {
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
    th
}

fn sort_findings(out: &mut [Finding]) {
    out.sort_by(finding_order);
}

/// The report's order of findings: worst first, then by subject, then by rule (a stable
/// sort keeps equal ones in the order the rules gave them).
pub fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    sort_key(a.severity, &a.subject, a.rule).cmp(&sort_key(b.severity, &b.subject, b.rule))
}

/// What [`finding_order`] compares: worst first, then subject, then rule.
pub fn sort_key<'a>(
    severity: Severity,
    subject: &'a Subject,
    rule: &'a str,
) -> (std::cmp::Reverse<Severity>, &'a Subject, &'a str) {
    (std::cmp::Reverse(severity), subject, rule)
}

/// The metadata of the rule with this id.
pub fn meta_of(id: &str) -> Option<&'static RuleMeta> {
    registry().iter().map(|r| r.meta()).find(|m| m.id == id)
}

/// The selected rules that are not call-local, run as a streaming engine runs them:
/// each [`Aggregate`] sees `units` (in the order given, with an empty model beside them)
/// and decides at the end; every other rule reads only `model`, which holds no calls or
/// streams (they were released as finalised). `alg.two-capture-diff` (it needs `--vantage`, which keeps the whole model)
/// is left out. Findings sorted as [`run_all`] sorts them.
pub fn run_released<'a>(
    model: &Analysis,
    units: impl Iterator<Item = Unit<'a>>,
    thresholds: &Thresholds,
    sel: &Selection,
    profile: Option<&Profile>,
) -> Vec<Finding> {
    let mut s = Streamed::new(thresholds, sel, profile);
    s.local.clear();
    s.early.capture.first_ts = model.capture.first_ts;
    for u in units {
        s.observe(&u);
    }
    s.finish(model)
}

/// The rules as a streaming engine runs them (`engine::analyze_paths_streamed`): the
/// call-local ones on each unit as it is released, the aggregates observing it, and the
/// rest at the end on the model without calls or streams. The same findings as
/// [`run_with_profile`] on the whole model (`tests/call_local.rs` proves each part;
/// `tests/streaming.rs` the whole).
pub struct Streamed<'a> {
    th: Thresholds,
    profile: Option<&'a Profile>,
    local: Vec<&'static dyn Rule>,
    aggs: Vec<(&'static RuleMeta, Box<dyn Aggregate>)>,
    rest: Vec<&'static dyn Rule>,
    /// What `observe` may see: the capture's first timestamp, nothing else.
    early: Analysis,
    findings: Vec<Finding>,
}

impl<'a> Streamed<'a> {
    pub fn new(thresholds: &Thresholds, sel: &Selection, profile: Option<&'a Profile>) -> Self {
        let chosen = || {
            registry()
                .iter()
                .copied()
                .filter(|r| sel.wants(r.meta()) && r.meta().id != VANTAGE_RULE)
        };
        Streamed {
            th: effective_thresholds(thresholds, profile),
            profile,
            local: chosen().filter(|r| r.meta().call_local).collect(),
            aggs: chosen()
                .filter(|r| !r.meta().call_local)
                .filter_map(|r| r.aggregate().map(|a| (r.meta(), a)))
                .collect(),
            rest: chosen()
                .filter(|r| !r.meta().call_local && r.aggregate().is_none())
                .collect(),
            early: Analysis::default(),
            findings: Vec::new(),
        }
    }

    /// One released unit: a model of one call and its streams, or of one stream.
    pub fn unit(&mut self, u: &Analysis) {
        if self.early.capture.first_ts.is_none() {
            self.early.capture.first_ts = u.capture.first_ts;
        }
        let t0 = u.capture.first_ts.unwrap_or_default();
        let cx = Ctx {
            analysis: u,
            thresholds: &self.th,
            t0,
            profile: self.profile,
            vantage: None,
        };
        // One unit is small: the rules run in turn (a thread pool per unit would cost
        // more than the rules).
        for r in &self.local {
            r.check(&cx, &mut self.findings);
        }
        self.observe(&Unit {
            call: u.calls.first(),
            streams: u.streams.iter().collect(),
        });
    }

    /// The call-local findings of the units seen since the last call, in the order the
    /// rules gave them (a streaming run spills them; [`Streamed::finish`] sorts in the
    /// ones not taken).
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    /// The aggregates see a unit, beside a model that holds only the first timestamp.
    fn observe(&mut self, u: &Unit<'_>) {
        let early = Ctx {
            analysis: &self.early,
            thresholds: &self.th,
            t0: self.early.capture.first_ts.unwrap_or_default(),
            profile: self.profile,
            vantage: None,
        };
        for (_, a) in &mut self.aggs {
            a.observe(&early, u);
        }
    }

    /// The end: `model` is everything but the calls and streams. All the findings,
    /// sorted as [`run_all`] sorts them.
    pub fn finish(mut self, model: &Analysis) -> Vec<Finding> {
        let cx = Ctx {
            analysis: model,
            thresholds: &self.th,
            t0: model.capture.first_ts.unwrap_or_default(),
            profile: self.profile,
            vantage: None,
        };
        let mut out = std::mem::take(&mut self.findings);
        for (meta, a) in self.aggs {
            a.finish(&cx, meta, &mut out);
        }
        for r in &self.rest {
            r.check(&cx, &mut out);
        }
        sort_findings(&mut out);
        out
    }
}

/// The one rule that compares two captures: it needs the whole of both models.
pub const VANTAGE_RULE: &str = "alg.two-capture-diff";

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
