//! The report model (the JSON schema).

use crate::capture::FileInfo;
use crate::correlate::{Accounting, Analysis, RtcpSummary};
use crate::decode::ReassemblyStats;
use crate::rtp::events::DtmfEvent;
use crate::rtp::mos::MosEstimate;
use crate::rules::Finding;
use crate::sip::state::{RegState, SipStats};
use crate::types::{Anomaly, FrameRef, Ts};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

fn rel(t0: Ts, t: Ts) -> f64 {
    (t.secs_since(t0) * 1e6).round() / 1e6
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub capture: CaptureOut,
    pub calls: Vec<CallOut>,
    pub registrations: Vec<RegOut>,
    pub out_of_dialog: Vec<OodOut>,
    pub streams: Vec<StreamOut>,
    pub sip_stats: SipStats,
    pub findings: Vec<Finding>,
}

/// Where a report's rows come from, for [`write_report`]: the whole model, or a streaming
/// run's spill file (`report::StreamedRun`). Each method writes its rows, one at a time,
/// into the array `rows` stands for.
pub(crate) trait RowSource {
    fn calls(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()>;
    fn streams(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()>;
    /// The findings, the report's last field (a source may still be producing them
    /// until it is asked).
    fn findings(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()>;
}

/// serde_json's pretty formatter (`PrettyFormatter` with two-space indents, the same
/// bytes method for method) starting `depth` levels deep: a value rendered alone comes
/// out as its text nested that deep in a pretty document. serde_json's own formatter
/// always starts at the left margin; re-indenting its output line by line (the previous
/// way) cost a scan and two writes per piece, 2 % of a run's instructions.
struct Nested {
    depth: usize,
    has_value: bool,
}

impl Nested {
    fn new(depth: usize) -> Self {
        Nested {
            depth,
            has_value: false,
        }
    }
    fn indent<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        const PAD: &[u8; 64] = b"                                                                ";
        let mut n = self.depth.saturating_mul(2);
        while n > 0 {
            let k = n.min(PAD.len());
            w.write_all(&PAD[..k])?;
            n -= k;
        }
        Ok(())
    }
    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, c: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(c)
    }
    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, c: &[u8]) -> std::io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(c)
    }
    fn item<W: ?Sized + std::io::Write>(&self, w: &mut W, first: bool) -> std::io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `v` as pretty JSON `depth` levels deep in a pretty document.
fn to_writer_nested<W: std::io::Write, T: Serialize + ?Sized>(
    w: W,
    depth: usize,
    v: &T,
) -> serde_json::Result<()> {
    v.serialize(&mut serde_json::Serializer::with_formatter(
        w,
        Nested::new(depth),
    ))
}

/// Depth of a row: the rows are the elements of an array that is a field of the report.
const ROW_DEPTH: usize = 2;

/// `v` as pretty JSON, as it appears as a row of one of the report's arrays: the bytes
/// serde_json's pretty printer writes for it there, from its opening bracket to its
/// closing one. A spill stores rows in this form, so writing the report copies them.
pub(crate) fn render_row<W: std::io::Write, T: Serialize + ?Sized>(
    w: &mut W,
    v: &T,
) -> serde_json::Result<()> {
    to_writer_nested(w, ROW_DEPTH, v)
}

/// One of the report's row arrays as it is written: what serde_json's pretty printer
/// writes for a sequence two levels deep, element by element.
pub(crate) struct Rows<'a> {
    w: &'a mut dyn std::io::Write,
    n: usize,
}

impl Rows<'_> {
    fn sep(&mut self) -> serde_json::Result<()> {
        let sep: &[u8] = if self.n == 0 { b"\n    " } else { b",\n    " };
        self.n += 1;
        self.w.write_all(sep).map_err(serde_json::Error::io)
    }
    /// Append a row.
    pub(crate) fn row<T: Serialize + ?Sized>(&mut self, v: &T) -> serde_json::Result<()> {
        self.sep()?;
        render_row(&mut self.w, v)
    }
    /// Append a row already rendered by [`render_row`].
    pub(crate) fn rendered(&mut self, bytes: &[u8]) -> serde_json::Result<()> {
        self.sep()?;
        self.w.write_all(bytes).map_err(serde_json::Error::io)
    }
}

/// The report as pretty JSON, field by field in the model's order, with the rows and the
/// findings from `rows`: the one place that spells out the report's fields outside
/// [`Report`] itself. The bytes are those of `serde_json::to_writer_pretty` on the whole
/// [`Report`] (`tests/determinism.rs`); the top level is written here so that rows can be
/// copied in already rendered.
pub(crate) fn write_report<W: std::io::Write>(
    mut w: W,
    lean: &Report,
    rows: &mut impl RowSource,
) -> serde_json::Result<()> {
    fn key<W: std::io::Write>(w: &mut W, first: bool, k: &str) -> serde_json::Result<()> {
        let sep = if first { "{\n  " } else { ",\n  " };
        write!(w, "{sep}\"{k}\": ").map_err(serde_json::Error::io)
    }
    fn field<W: std::io::Write, T: Serialize>(
        w: &mut W,
        first: bool,
        k: &str,
        v: &T,
    ) -> serde_json::Result<()> {
        key(w, first, k)?;
        to_writer_nested(w, 1, v)
    }
    fn array<W: std::io::Write>(
        w: &mut W,
        fill: impl FnOnce(&mut Rows<'_>) -> serde_json::Result<()>,
    ) -> serde_json::Result<()> {
        w.write_all(b"[").map_err(serde_json::Error::io)?;
        let n = {
            let mut r = Rows { w, n: 0 };
            fill(&mut r)?;
            r.n
        };
        let end: &[u8] = if n == 0 { b"]" } else { b"\n  ]" };
        w.write_all(end).map_err(serde_json::Error::io)
    }
    field(&mut w, true, "schema_version", &lean.schema_version)?;
    field(&mut w, false, "capture", &lean.capture)?;
    key(&mut w, false, "calls")?;
    array(&mut w, |r| rows.calls(r))?;
    field(&mut w, false, "registrations", &lean.registrations)?;
    field(&mut w, false, "out_of_dialog", &lean.out_of_dialog)?;
    key(&mut w, false, "streams")?;
    array(&mut w, |r| rows.streams(r))?;
    field(&mut w, false, "sip_stats", &lean.sip_stats)?;
    key(&mut w, false, "findings")?;
    array(&mut w, |r| rows.findings(r))?;
    w.write_all(b"\n}").map_err(serde_json::Error::io)
}

/// Write the report of `a` as pretty JSON, byte for byte what serialising
/// [`build`]'s model with `serde_json::to_writer_pretty` gives, but without building it:
/// calls and streams, the parts that grow with the capture, are turned into rows one at a
/// time as they are written, and the findings come from `findings`, called when the
/// writer reaches them (they are the last field). The CLI runs the rules on another
/// thread meanwhile. Returns the findings written.
pub fn write_json_deferred<W: std::io::Write>(
    w: W,
    a: &Analysis,
    redact_users: bool,
    findings: impl FnOnce() -> Vec<Finding>,
) -> serde_json::Result<Vec<Finding>> {
    /// The model's rows, and the findings from a closure called when the writer reaches
    /// them (kept: they are returned).
    struct Model<'a, F>(&'a Analysis, Ts, Option<F>, Vec<Finding>);
    impl<F: FnOnce() -> Vec<Finding>> RowSource for Model<'_, F> {
        fn findings(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()> {
            self.3 = self.2.take().map(|f| f()).unwrap_or_default();
            self.3.iter().try_for_each(|f| rows.row(f))
        }
        fn calls(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()> {
            let (a, t0) = (self.0, self.1);
            a.calls.iter().try_for_each(|c| rows.row(&call_out(t0, c)))
        }
        fn streams(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()> {
            let (a, t0) = (self.0, self.1);
            a.streams
                .iter()
                .try_for_each(|s| rows.row(&stream_out(a, t0, s)))
        }
    }
    let t0 = a.capture.first_ts.unwrap_or_default();
    let mut m = Model(a, t0, Some(findings), Vec::new());
    write_report(w, &build_lean(a, redact_users), &mut m)?;
    Ok(m.3)
}

#[derive(Debug, Serialize)]
pub struct CaptureOut {
    pub files: Vec<FileInfo>,
    pub frames: u64,
    /// Absolute time of the first frame, seconds since the epoch.
    pub start_epoch: Option<f64>,
    pub duration_s: f64,
    pub accounting: Accounting,
    pub reassembly: ReassemblyStats,
    pub limits_hit: Vec<(String, u64)>,
    pub anomaly_counts: BTreeMap<String, u64>,
    /// The first anomalies of each kind.
    pub anomalies: Vec<Anomaly>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SdpOut {
    pub frame: FrameRef,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub time: f64,
    pub from_caller: bool,
    pub carried_in: String,
    /// `c=` address of the first audio section, as written.
    pub connection: Option<String>,
    /// One line per m= section: "audio 10.0.0.1:4000 RTP/AVP PCMU/8000,telephone-event/8000 sendrecv".
    pub media: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallOut {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub caller: String,
    pub callee: String,
    pub transport: String,
    pub state: Cow<'static, str>,
    pub final_code: Option<u16>,
    pub final_reason: Option<String>,
    /// What the final code usually means (from the response-code table).
    pub final_meaning: Option<Cow<'static, str>>,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub start: f64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub end: f64,
    pub ringing: Option<f64>,
    pub answered: Option<f64>,
    pub duration_s: Option<f64>,
    pub post_dial_delay_ms: Option<f64>,
    /// "caller" or "callee" when a BYE ended the call.
    pub hangup_by: Option<Cow<'static, str>>,
    pub user_agent: Option<String>,
    pub server: Option<String>,
    pub forked_dialogs: usize,
    pub reinvites: u32,
    pub frames: Vec<FrameRef>,
    pub packets: usize,
    pub retransmissions: usize,
    pub streams: Vec<usize>,
    pub sdp: Vec<SdpOut>,
}

#[derive(Debug, Serialize)]
pub struct RegAttemptOut {
    pub frame: FrameRef,
    pub time: f64,
    pub src: String,
    pub dst: String,
    pub requested_expires: Option<u32>,
    pub username: Option<String>,
    pub retransmissions: u32,
    pub response_code: Option<u16>,
    pub response_reason: Option<String>,
    pub response_frame: Option<FrameRef>,
    pub granted_expires: Option<u32>,
    pub unregister: bool,
}

#[derive(Debug, Serialize)]
pub struct RegOut {
    pub aor: String,
    pub contact: String,
    pub state: RegState,
    pub user_agent: Option<String>,
    pub attempts: Vec<RegAttemptOut>,
    /// Median time between successive accepted registrations (the refresh interval), s.
    pub refresh_interval_s: Option<f64>,
    /// What the UA's signalling address did between requests: its keepalive inventory and
    /// its longest silence (the NAT binding must outlive it).
    pub activity: Option<ActivityOut>,
}

/// Signalling activity of one UA source address.
#[derive(Debug, Serialize)]
pub struct ActivityOut {
    pub endpoint: String,
    pub packets: u64,
    pub longest_silence_s: f64,
    pub longest_silence_from_frame: Option<FrameRef>,
    pub crlf_keepalives: u64,
    pub options: u64,
    pub stun: u64,
    pub notify: u64,
    pub keepalive_interval_min_s: Option<f64>,
    pub keepalive_interval_max_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct OodOut {
    pub method: String,
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub src: String,
    pub dst: String,
    pub transport: String,
    pub frame: FrameRef,
    pub time: f64,
    pub retransmissions: u32,
    pub response_code: Option<u16>,
    pub response_reason: Option<String>,
    pub response_frame: Option<FrameRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfOut {
    pub digit: String,
    pub frame: FrameRef,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub time: f64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub duration_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOut {
    pub ssrc: String,
    pub src: String,
    pub dst: String,
    pub payload_types: Vec<u8>,
    pub codec: Option<String>,
    pub clock_rate: u32,
    pub packets: u64,
    pub expected: u64,
    pub lost: i64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub lost_pct: f64,
    pub sequence_errors: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Null when no packet qualified (tshark prints -1).
    pub min_delta_ms: Option<f64>,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub mean_delta_ms: f64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub max_delta_ms: f64,
    /// Null when no packet qualified (tshark prints -1).
    pub min_jitter_ms: Option<f64>,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub mean_jitter_ms: f64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub max_jitter_ms: f64,
    pub jitter_valid: bool,
    pub problems: bool,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub max_gap_ms: f64,
    pub max_burst: u64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub start: f64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub end: f64,
    pub first_frame: FrameRef,
    pub last_frame: FrameRef,
    pub call_id: Option<String>,
    pub association: Option<crate::correlate::Association>,
    pub announced: bool,
    pub srtp: bool,
    pub dtmf: Vec<DtmfOut>,
    pub rtcp: Option<RtcpSummary>,
    pub mos: Option<MosEstimate>,
}

fn dtmf(t0: Ts, d: &DtmfEvent) -> DtmfOut {
    DtmfOut {
        digit: d.digit.clone(),
        frame: d.frame,
        time: rel(t0, d.ts),
        duration_ms: r3(d.duration_ms),
    }
}

/// Build the report model. `redact` hides credentials' usernames and SDP crypto lines
/// (they are never stored in the first place; this removes usernames too).
pub fn build(a: &Analysis, findings: Vec<Finding>, redact_users: bool) -> Report {
    let t0 = a.capture.first_ts.unwrap_or_default();
    let mut r = build_lean(a, redact_users);
    r.calls = a.calls.iter().map(|c| call_out(t0, c)).collect();
    r.streams = a.streams.iter().map(|s| stream_out(a, t0, s)).collect();
    r.findings = findings;
    r
}

/// The report without its calls, streams and findings (the parts that grow with the
/// capture): [`write_json_deferred`] writes those row by row.
pub(crate) fn build_lean(a: &Analysis, redact_users: bool) -> Report {
    let t0 = a.capture.first_ts.unwrap_or_default();
    let registrations = a
        .registrations
        .iter()
        .map(|r| RegOut {
            aor: r.aor.clone(),
            contact: r.contact.clone(),
            state: r.state,
            user_agent: r.user_agent.clone(),
            attempts: r
                .attempts
                .iter()
                .map(|at| RegAttemptOut {
                    frame: at.frame,
                    time: rel(t0, at.ts),
                    src: at.src.to_string(),
                    dst: at.dst.to_string(),
                    requested_expires: at.requested_expires,
                    username: if redact_users {
                        at.credentials.as_ref().map(|_| "<redacted>".to_string())
                    } else {
                        at.credentials.as_ref().and_then(|c| c.username.clone())
                    },
                    retransmissions: at.retransmissions,
                    response_code: at.response.as_ref().map(|x| x.code),
                    response_reason: at.response.as_ref().map(|x| x.reason.clone()),
                    response_frame: at.response.as_ref().map(|x| x.frame),
                    granted_expires: at.response.as_ref().and_then(|x| x.granted_expires),
                    unregister: at.unregister,
                })
                .collect(),
            refresh_interval_s: {
                let ok: Vec<Ts> = r
                    .attempts
                    .iter()
                    .filter(|x| {
                        !x.unregister && x.response.as_ref().is_some_and(|p| p.code / 100 == 2)
                    })
                    .map(|x| x.ts)
                    .collect();
                let mut gaps: Vec<f64> = ok.windows(2).map(|w| w[1].secs_since(w[0])).collect();
                gaps.sort_by(|a, b| a.total_cmp(b));
                gaps.get(gaps.len() / 2).map(|g| r3(*g))
            },
            activity: r.attempts.last().and_then(|at| {
                let h = a
                    .hosts
                    .binary_search_by(|h| h.endpoint.cmp(&at.src))
                    .ok()
                    .and_then(|i| a.hosts.get(i))?;
                Some(ActivityOut {
                    endpoint: h.endpoint.to_string(),
                    packets: h.packets,
                    longest_silence_s: (h.max_gap_ms / 1000.0 * 1000.0).round() / 1000.0,
                    longest_silence_from_frame: h.max_gap_from,
                    crlf_keepalives: h.crlf_keepalives,
                    options: h.options,
                    stun: h.stun,
                    notify: h.notify,
                    keepalive_interval_min_s: h.keepalive_min_interval_s.map(r3),
                    keepalive_interval_max_s: h.keepalive_max_interval_s.map(r3),
                })
            }),
        })
        .collect();
    let out_of_dialog = a
        .out_of_dialog
        .iter()
        .map(|o| OodOut {
            method: o.method.as_str().to_string(),
            call_id: o.call_id.clone(),
            from: o.from.clone(),
            to: o.to.clone(),
            src: o.src.to_string(),
            dst: o.dst.to_string(),
            transport: o.transport.as_str().to_string(),
            frame: o.frame,
            time: rel(t0, o.ts),
            retransmissions: o.retransmissions,
            response_code: o.response.as_ref().map(|r| r.0),
            response_reason: o.response.as_ref().map(|r| r.1.clone()),
            response_frame: o.response.as_ref().map(|r| r.2),
        })
        .collect();
    let duration = match (a.capture.first_ts, a.capture.last_ts) {
        (Some(f), Some(l)) => (l.secs_since(f) * 1e6).round() / 1e6,
        _ => 0.0,
    };
    Report {
        schema_version: SCHEMA_VERSION,
        capture: CaptureOut {
            files: a.capture.files.clone(),
            frames: a.capture.accounting.frames,
            start_epoch: a.capture.first_ts.map(|t| t.as_secs_f64()),
            duration_s: duration,
            accounting: a.capture.accounting.clone(),
            reassembly: a.capture.reassembly.clone(),
            limits_hit: a.capture.limits_hit.clone(),
            anomaly_counts: a.capture.anomaly_counts.clone(),
            anomalies: a.anomalies.clone(),
        },
        calls: Vec::new(),
        registrations,
        out_of_dialog,
        streams: Vec::new(),
        sip_stats: a.sip_stats.clone(),
        findings: Vec::new(),
    }
}

/// One call's row.
pub fn call_out(t0: Ts, c: &crate::correlate::Call) -> CallOut {
    let s = &c.sip;
    let sdp = s
        .sdp
        .iter()
        .flat_map(|ex| std::iter::once(&ex.offer).chain(ex.answer.iter()))
        .map(|r| SdpOut {
            frame: r.frame,
            time: rel(t0, r.ts),
            from_caller: r.from_caller,
            carried_in: r.carried_in.clone(),
            connection: r
                .sdp
                .audio()
                .and_then(|m| r.sdp.media_connection(m))
                .map(|c| c.addr.clone()),
            media: r
                .sdp
                .media
                .iter()
                .map(|m| {
                    let addr = r
                        .sdp
                        .media_connection(m)
                        .map(|c| c.addr.clone())
                        .unwrap_or_else(|| "?".into());
                    let codecs: Vec<String> = m
                        .payload_types()
                        .iter()
                        .map(|pt| match m.codec(*pt) {
                            Some((n, rate)) => format!("{n}/{rate}"),
                            None => pt.to_string(),
                        })
                        .collect();
                    let dir = match r.sdp.media_direction(m) {
                        crate::sdp::Direction::SendRecv => "sendrecv",
                        crate::sdp::Direction::SendOnly => "sendonly",
                        crate::sdp::Direction::RecvOnly => "recvonly",
                        crate::sdp::Direction::Inactive => "inactive",
                    };
                    format!(
                        "{} {}:{} {} {} {}",
                        m.kind,
                        addr,
                        m.port,
                        m.proto,
                        codecs.join(","),
                        dir
                    )
                })
                .collect(),
        })
        .collect();
    CallOut {
        call_id: s.call_id.clone(),
        from: s.from.uri.clone(),
        to: s.to.uri.clone(),
        caller: s.caller.to_string(),
        callee: s.callee.to_string(),
        transport: s.transport.as_str().to_string(),
        state: Cow::Borrowed(s.state.label()),
        final_code: s.final_code,
        final_reason: s.final_reason.clone(),
        final_meaning: s
            .final_code
            .and_then(crate::sip::codes::lookup)
            .map(|c| Cow::Borrowed(c.meaning)),
        start: rel(t0, s.start),
        end: rel(t0, s.end),
        ringing: s.ringing_ts.map(|t| rel(t0, t)),
        answered: s.answer_ts.map(|t| rel(t0, t)),
        duration_s: s.duration_s().map(|d| (d * 1e6).round() / 1e6),
        post_dial_delay_ms: s.post_dial_delay_ms().map(r3),
        hangup_by: s
            .bye
            .as_ref()
            .map(|b| Cow::Borrowed(if b.by_caller { "caller" } else { "callee" })),
        user_agent: s.user_agent.clone(),
        server: s.server.clone(),
        forked_dialogs: s.to_tags.len(),
        reinvites: s.reinvites,
        frames: s.frames(),
        packets: s.messages.len(),
        retransmissions: s.messages.iter().filter(|m| m.retransmission).count(),
        streams: c.streams.clone(),
        sdp,
    }
}

/// One stream's row.
pub fn stream_out(a: &Analysis, t0: Ts, s: &crate::correlate::Stream) -> StreamOut {
    let st = &s.stats;
    StreamOut {
        ssrc: format!("0x{:08X}", s.ssrc),
        src: s.src.to_string(),
        dst: s.dst.to_string(),
        payload_types: st.payload_types.clone(),
        codec: s.codec.clone(),
        clock_rate: s.clock_rate,
        packets: st.packets,
        expected: st.expected,
        lost: st.lost,
        lost_pct: (st.lost_pct * 10.0).round() / 10.0,
        sequence_errors: st.sequence_errors,
        duplicates: st.duplicates,
        out_of_order: st.out_of_order,
        min_delta_ms: (st.ws_min_delta_ms >= 0.0).then(|| r3(st.ws_min_delta_ms)),
        mean_delta_ms: r3(st.mean_delta_ms),
        max_delta_ms: r3(st.max_delta_ms),
        min_jitter_ms: (st.ws_min_jitter_ms >= 0.0).then(|| r3(st.ws_min_jitter_ms)),
        mean_jitter_ms: r3(st.mean_jitter_ms),
        max_jitter_ms: r3(st.max_jitter_ms),
        jitter_valid: st.jitter_valid,
        problems: st.problems,
        max_gap_ms: r3(st.max_gap_ms),
        max_burst: st.max_burst,
        start: rel(t0, s.first_ts),
        end: rel(t0, s.last_ts),
        first_frame: s.first_frame,
        last_frame: s.last_frame,
        call_id: s
            .call
            .and_then(|i| a.calls.get(i))
            .map(|c| c.sip.call_id.clone()),
        association: s.association,
        announced: s.announced,
        srtp: s.srtp,
        dtmf: s.dtmf.iter().map(|d| dtmf(t0, d)).collect(),
        rtcp: s.rtcp.clone(),
        mos: s.mos.clone(),
    }
}
