//! Every diagnosis rule against generated captures: for each registry id one capture that
//! must fire it (checking the subject and that the evidence cites the right frames or
//! values) and one near-miss that must not (the trap beside the fault: a challenge answered
//! and accepted, NATed media with latching, a LAN-side capture, a caller hanging up at
//! 32 s, ...). A meta-test fails when a rule has no case in either list. Captures are
//! built here with the synth packet writer from literal SIP text, so each one shows what
//! is on the wire; everything is deterministic and small (the whole file runs in seconds).
//!
//! Also: `docs/rules.md` must equal what the registry generates (regenerate with
//! `SIPSCOPE_BLESS=1 cargo test --test rules docs_rules_md_is_up_to_date`).
mod common;

use sipscope::engine::{Config, analyze_paths};
use sipscope::rules::{Finding, Profile, Selection, Severity, Subject, Thresholds};
use sipscope::synth::media::{ReportBlock, rtcp_rr, rtp_packet};
use sipscope::synth::scenario::{LinkKind, Wire};
use sipscope::synth::{FileFormat, Packet, PcapOptions, PcapngInterface, write_capture};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200 * 1_000_000_000;

fn ns(ms: f64) -> i64 {
    T0 + (ms * 1e6).round() as i64
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A capture under construction: SIP/RTP/other UDP at given times; named marks remember
/// the time of a message so its frame number can be asserted after analysis.
struct Cap {
    w: Wire,
    marks: Vec<(String, i64)>,
    pcapng_drops: Option<u64>,
    snaplen: Option<u32>,
    cut_tail: usize,
    cfg: Config,
    profile: Option<Profile>,
    thresholds: Thresholds,
    /// The same traffic captured on the far side of a router (`--vantage`).
    vantage: Option<Box<Cap>>,
}

struct Out {
    findings: Vec<Finding>,
    frames: HashMap<String, u64>,
}

impl Out {
    fn frame(&self, mark: &str) -> u64 {
        *self
            .frames
            .get(mark)
            .unwrap_or_else(|| panic!("no mark {mark}"))
    }
    fn of(&self, id: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.rule == id).collect()
    }
    fn one(&self, id: &str) -> &Finding {
        let v = self.of(id);
        assert!(
            !v.is_empty(),
            "{id} did not fire; findings: {:?}",
            self.findings
                .iter()
                .map(|f| format!("{}: {}", f.rule, f.summary))
                .collect::<Vec<_>>()
        );
        v[0]
    }
}

/// Does the finding's evidence cite frame `n` (of the only file)?
fn cites(f: &Finding, n: u64) -> bool {
    f.evidence
        .iter()
        .any(|e| e.frame.is_some_and(|x| x.num == n))
}

fn says(f: &Finding, text: &str) -> bool {
    f.summary.contains(text) || f.evidence.iter().any(|e| e.what.contains(text))
}

fn call_of(f: &Finding) -> &str {
    match &f.subject {
        Subject::Call { call_id } => call_id,
        s => panic!("{}: subject is not a call: {s:?}", f.rule),
    }
}

fn host_of(f: &Finding) -> &str {
    match &f.subject {
        Subject::Host { address } => address,
        s => panic!("{}: subject is not a host: {s:?}", f.rule),
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Cap {
    fn new() -> Cap {
        Cap {
            w: Wire::new(LinkKind::Ethernet { vlans: Vec::new() }),
            marks: Vec::new(),
            pcapng_drops: None,
            snaplen: None,
            cut_tail: 0,
            cfg: Config {
                threads: 1,
                ..Config::default()
            },
            profile: None,
            thresholds: Thresholds::default(),
            vantage: None,
        }
    }

    fn udp(&mut self, ms: f64, src: &str, dst: &str, payload: &[u8]) {
        self.w.udp(0, ns(ms), sa(src), sa(dst), payload);
    }

    /// One SIP message over UDP; `\n` line ends become CRLF and Content-Length is filled in
    /// unless the text already has one.
    fn sip(&mut self, mark: &str, ms: f64, src: &str, dst: &str, text: &str) {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut s = head.trim_start().replace('\n', "\r\n");
        let body = body.replace('\n', "\r\n");
        if !head.contains("Content-Length") {
            s.push_str(&format!("\r\nContent-Length: {}", body.len()));
        }
        s.push_str("\r\n\r\n");
        s.push_str(&body);
        if !mark.is_empty() {
            self.marks.push((mark.to_string(), ns(ms)));
        }
        self.udp(ms, src, dst, s.as_bytes());
    }

    /// `n` RTP packets every 20 ms from `ms` on (0.25 ms after the slot so they never share
    /// a timestamp with SIP); `lost(i)` drops packet i, `late(i)` delays it (ms).
    #[allow(clippy::too_many_arguments)]
    fn rtp_with(
        &mut self,
        ms: f64,
        src: &str,
        dst: &str,
        ssrc: u32,
        pt: u8,
        n: u32,
        lost: impl Fn(u32) -> bool,
        late: impl Fn(u32) -> f64,
    ) {
        for i in 0..n {
            if lost(i) {
                continue;
            }
            let p = rtp_packet(i == 0, pt, (1000 + i) as u16, i * 160, ssrc, &[0xFFu8; 160]);
            self.udp(ms + 0.25 + f64::from(i) * 20.0 + late(i), src, dst, &p);
        }
    }

    fn rtp(&mut self, ms: f64, src: &str, dst: &str, ssrc: u32, n: u32) {
        self.rtp_with(ms, src, dst, ssrc, 0, n, |_| false, |_| 0.0);
    }

    fn run(self) -> Out {
        let mut packets: Vec<Packet> = self.w.finish();
        let frames = self
            .marks
            .iter()
            .filter_map(|(m, t)| {
                packets
                    .iter()
                    .position(|p| p.ts_ns / 1000 == t / 1000)
                    .map(|i| (m.clone(), i as u64 + 1))
            })
            .collect();
        let fmt = match self.pcapng_drops {
            Some(d) => FileFormat::Pcapng {
                endian: sipscope::synth::Endian::Little,
                interfaces: vec![PcapngInterface::new(1, 6)],
                drops: vec![(0, d)],
            },
            None => FileFormat::Pcap(PcapOptions {
                snaplen: self.snaplen.unwrap_or(262_144),
                truncate: self.snaplen.is_some(),
                ..PcapOptions::default()
            }),
        };
        for p in &mut packets {
            p.iface = 0;
        }
        let other = self.vantage.map(|v| v.analyze_only());
        let mut bytes = write_capture(&fmt, &packets).expect("write capture");
        bytes.truncate(bytes.len().saturating_sub(self.cut_tail));
        let dir = std::env::temp_dir().join(format!("sipscope-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("c{}.pcap", SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &bytes).expect("write temp capture");
        let a = analyze_paths(&[path.to_string_lossy().into_owned()], &self.cfg, None)
            .expect("analyze");
        let _ = std::fs::remove_file(&path);
        let findings = sipscope::rules::run_all(
            &a,
            &self.thresholds,
            &Selection::default(),
            self.profile.as_ref(),
            other.as_ref(),
        );
        // Streaming finalisation's precondition, on every rule's scenario: the call-local
        // rules find the same one call at a time.
        let diff = common::per_call_diff(&a, &self.thresholds, self.profile.as_ref());
        assert!(
            diff.is_empty(),
            "per call vs whole capture:\n{}",
            diff.join("\n")
        );
        // And the other rules find the same as running aggregates over the units (in
        // reverse order) and on a model whose calls and streams were released.
        let diff = common::released_diff(&a, &self.thresholds, self.profile.as_ref());
        assert!(
            diff.is_empty(),
            "released vs whole model:\n{}",
            diff.join("\n")
        );
        Out { findings, frames }
    }

    /// Write and analyse this capture on its own (the second vantage point).
    fn analyze_only(self) -> sipscope::correlate::Analysis {
        let packets: Vec<Packet> = self.w.finish();
        let bytes = write_capture(&FileFormat::Pcap(PcapOptions::default()), &packets)
            .expect("write capture");
        let dir = std::env::temp_dir().join(format!("sipscope-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("v{}.pcap", SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &bytes).expect("write temp capture");
        let a = analyze_paths(&[path.to_string_lossy().into_owned()], &self.cfg, None)
            .expect("analyze");
        let _ = std::fs::remove_file(&path);
        a
    }
}

// ---------------------------------------------------------------------------------------
// SIP text helpers

const A: &str = "203.0.113.10:5060"; // caller (public)
const B: &str = "198.51.100.5:5060"; // callee (public)

fn host(ep: &str) -> &str {
    ep.rsplit_once(':').map(|x| x.0).unwrap_or(ep)
}

fn sdp(ip: &str, port: u16, fmts: &str, extra: &str) -> String {
    let mut s = format!(
        "v=0\no=- 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {port} RTP/AVP {fmts}\n"
    );
    for f in fmts.split_whitespace() {
        match f {
            "101" => s.push_str("a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\n"),
            "0" => s.push_str("a=rtpmap:0 PCMU/8000\n"),
            "8" => s.push_str("a=rtpmap:8 PCMA/8000\n"),
            "18" => s.push_str("a=rtpmap:18 G729/8000\n"),
            _ => {}
        }
    }
    s.push_str(extra);
    s
}

/// A request. `hdrs` are extra header lines (each ending in `\n`).
#[allow(clippy::too_many_arguments)]
fn req(
    method: &str,
    ruri: &str,
    via: &str,
    branch: &str,
    cid: &str,
    cseq: u32,
    cmethod: &str,
    hdrs: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "{method} {ruri} SIP/2.0\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch};rport\nMax-Forwards: 70\n\
         From: <sip:alice@example.com>;tag=a{cid}\nTo: <sip:bob@example.com>\nCall-ID: {cid}\n\
         CSeq: {cseq} {cmethod}\n{hdrs}{ct}\n{body}"
    )
}

#[allow(clippy::too_many_arguments)]
fn resp(
    code: u16,
    reason: &str,
    via: &str,
    branch: &str,
    cid: &str,
    cseq: u32,
    cmethod: &str,
    hdrs: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch};rport\n\
         From: <sip:alice@example.com>;tag=a{cid}\nTo: <sip:bob@example.com>;tag=b{cid}\nCall-ID: {cid}\n\
         CSeq: {cseq} {cmethod}\n{hdrs}{ct}\n{body}"
    )
}

/// How a generated call goes.
#[derive(Clone)]
struct Call {
    id: String,
    t: f64,
    a: String,
    b: String,
    ruri: String,
    a_sdp: String,
    b_sdp: String,
    inv_hdrs: String,
    ok_hdrs: String,
    /// Final code; 200 = answered.
    code: u16,
    reason: String,
    /// ms from INVITE to the final response; 180 at 50 ms unless `ring_at` says otherwise.
    answer_ms: f64,
    ring_at: Option<f64>,
    /// Copies of the 200 (1 = no retransmission), 500 ms apart doubling.
    ok_copies: u32,
    ack: bool,
    /// ms from answer to BYE; None = no BYE.
    bye_after: Option<f64>,
    bye_by_callee: bool,
    /// Where the caller sends ACK/BYE (default: the callee).
    in_dialog_to: Option<String>,
}

impl Call {
    fn new(id: &str) -> Call {
        Call {
            id: id.into(),
            t: 0.0,
            a: A.into(),
            b: B.into(),
            ruri: format!("sip:bob@{}", host(B)),
            a_sdp: sdp(host(A), 4000, "0 101", ""),
            b_sdp: sdp(host(B), 5000, "0 101", ""),
            inv_hdrs: format!("Contact: <sip:alice@{A}>\n"),
            ok_hdrs: format!("Contact: <sip:bob@{B}>\n"),
            code: 200,
            reason: "OK".into(),
            answer_ms: 1000.0,
            ring_at: Some(50.0),
            ok_copies: 1,
            ack: true,
            bye_after: Some(5000.0),
            bye_by_callee: false,
            in_dialog_to: None,
        }
    }

    /// Time of the answer (final response), ms.
    fn answer_t(&self) -> f64 {
        self.t + self.answer_ms
    }

    fn emit(&self, c: &mut Cap) {
        let (id, a, b) = (self.id.as_str(), self.a.as_str(), self.b.as_str());
        let br = format!("{id}i");
        let t = self.t;
        c.sip(
            &format!("{id}:invite"),
            t,
            a,
            b,
            &req(
                "INVITE",
                &self.ruri,
                a,
                &br,
                id,
                1,
                "INVITE",
                &self.inv_hdrs,
                &self.a_sdp,
            ),
        );
        c.sip(
            "",
            t + 5.0,
            b,
            a,
            &resp(100, "Trying", a, &br, id, 1, "INVITE", "", ""),
        );
        if let Some(r) = self.ring_at {
            c.sip(
                &format!("{id}:ring"),
                t + r,
                b,
                a,
                &resp(180, "Ringing", a, &br, id, 1, "INVITE", "", ""),
            );
        }
        let at = self.answer_t();
        if self.code != 200 {
            c.sip(
                &format!("{id}:final"),
                at,
                b,
                a,
                &resp(
                    self.code,
                    &self.reason,
                    a,
                    &br,
                    id,
                    1,
                    "INVITE",
                    &self.ok_hdrs,
                    "",
                ),
            );
            c.sip(
                "",
                at + 10.0,
                a,
                b,
                &req("ACK", &self.ruri, a, &br, id, 1, "ACK", "", ""),
            );
            return;
        }
        let ok = resp(
            200,
            "OK",
            a,
            &br,
            id,
            1,
            "INVITE",
            &self.ok_hdrs,
            &self.b_sdp,
        );
        let mut off = 0.0;
        let mut iv = 500.0;
        for k in 0..self.ok_copies {
            c.sip(&format!("{id}:ok{k}"), at + off, b, a, &ok);
            off += iv;
            iv = f64::min(iv * 2.0, 4000.0);
        }
        let to = self.in_dialog_to.clone().unwrap_or_else(|| b.to_string());
        if self.ack {
            c.sip(
                &format!("{id}:ack"),
                at + 15.0,
                a,
                &to,
                &req(
                    "ACK",
                    &format!("sip:bob@{to}"),
                    a,
                    &format!("{id}a"),
                    id,
                    1,
                    "ACK",
                    "",
                    "",
                ),
            );
        }
        if let Some(d) = self.bye_after {
            let bt = at + d;
            if self.bye_by_callee {
                // The callee's BYE: its own From (bob, with its tag) and To (alice).
                let swap = |m: String| {
                    m.replace(
                        &format!("From: <sip:alice@example.com>;tag=a{id}"),
                        "@@FROM@@",
                    )
                    .replace(&format!("To: <sip:bob@example.com>;tag=b{id}"), "@@TO@@")
                    .replace("To: <sip:bob@example.com>", "@@TO@@")
                    .replace(
                        "@@FROM@@",
                        &format!("From: <sip:bob@example.com>;tag=b{id}"),
                    )
                    .replace("@@TO@@", &format!("To: <sip:alice@example.com>;tag=a{id}"))
                };
                let (from_line, to_line) = (
                    format!("From: <sip:bob@example.com>;tag=b{id}"),
                    format!("To: <sip:alice@example.com>;tag=a{id}"),
                );
                let fix = |m: String| {
                    let m = swap(m);
                    // swap() maps alice's From to bob's; make sure both lines are present.
                    debug_assert!(m.contains(&from_line) && m.contains(&to_line));
                    m
                };
                c.sip(
                    &format!("{id}:bye"),
                    bt,
                    b,
                    a,
                    &fix(req(
                        "BYE",
                        &format!("sip:alice@{a}"),
                        b,
                        &format!("{id}b"),
                        id,
                        1,
                        "BYE",
                        "",
                        "",
                    )),
                );
                c.sip(
                    "",
                    bt + 10.0,
                    a,
                    b,
                    &fix(resp(200, "OK", b, &format!("{id}b"), id, 1, "BYE", "", "")),
                );
            } else {
                c.sip(
                    &format!("{id}:bye"),
                    bt,
                    a,
                    &to,
                    &req(
                        "BYE",
                        &format!("sip:bob@{to}"),
                        a,
                        &format!("{id}b"),
                        id,
                        2,
                        "BYE",
                        "",
                        "",
                    ),
                );
                c.sip(
                    "",
                    bt + 10.0,
                    &to,
                    a,
                    &resp(200, "OK", a, &format!("{id}b"), id, 2, "BYE", "", ""),
                );
            }
        }
    }
}

/// An answered call with RTP both ways for its whole length (5 s, 250 packets each way).
fn talk(c: &mut Cap, call: &Call, a_rtp: &str, b_rtp: &str) {
    call.emit(c);
    let st = call.answer_t() + 30.0;
    let n = (call.bye_after.unwrap_or(5000.0) / 20.0) as u32 - 3;
    c.rtp(st, a_rtp, b_rtp, 0xA1A1_0001, n);
    c.rtp(st + 3.0, b_rtp, a_rtp, 0xB2B2_0002, n);
}

fn cap_call(call: Call) -> Cap {
    let mut c = Cap::new();
    call.emit(&mut c);
    c
}

fn normal_call() -> Cap {
    let mut c = Cap::new();
    talk(
        &mut c,
        &Call::new("n1"),
        "203.0.113.10:4000",
        "198.51.100.5:5000",
    );
    c
}

#[allow(clippy::too_many_arguments)]
fn register(
    c: &mut Cap,
    mark: &str,
    ms: f64,
    src: &str,
    registrar: &str,
    cseq: u32,
    contact: &str,
    expires: u32,
    creds: bool,
    code: u16,
    granted: u32,
) {
    let auth = if creds {
        "Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n1\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\"\n"
    } else {
        ""
    };
    let br = format!("r{cseq}{mark}");
    let hdrs = format!("Contact: <sip:alice@{contact}>\nExpires: {expires}\n{auth}");
    let text = format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {contact};branch=z9hG4bK{br};rport\nMax-Forwards: 70\n\
         From: <sip:alice@example.com>;tag=reg1\nTo: <sip:alice@example.com>\nCall-ID: reg-{contact}\n\
         CSeq: {cseq} REGISTER\n{hdrs}\n"
    );
    c.sip(mark, ms, src, registrar, &text);
    let (reason, extra) = match code {
        200 => (
            "OK",
            format!("Contact: <sip:alice@{contact}>;expires={granted}\n"),
        ),
        401 => (
            "Unauthorized",
            "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\"\n".to_string(),
        ),
        403 => ("Forbidden", String::new()),
        _ => ("Interval Too Brief", "Min-Expires: 60\n".to_string()),
    };
    let r = format!(
        "SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP {contact};branch=z9hG4bK{br};rport\n\
         From: <sip:alice@example.com>;tag=reg1\nTo: <sip:alice@example.com>;tag=srv\nCall-ID: reg-{contact}\n\
         CSeq: {cseq} REGISTER\n{extra}\n"
    );
    c.sip(&format!("{mark}:r"), ms + 20.0, registrar, src, &r);
}

#[allow(clippy::too_many_arguments)]
fn options(
    c: &mut Cap,
    mark: &str,
    ms: f64,
    src: &str,
    dst: &str,
    ua: &str,
    answer: bool,
    user: &str,
) {
    let text = format!(
        "OPTIONS sip:{user}@{} SIP/2.0\nVia: SIP/2.0/UDP {src};branch=z9hG4bKo{mark}\nMax-Forwards: 70\n\
         From: <sip:probe@{}>;tag=o1\nTo: <sip:{user}@{}>\nCall-ID: o-{mark}\nCSeq: 1 OPTIONS\nUser-Agent: {ua}\n",
        host(dst),
        host(src),
        host(dst)
    );
    c.sip(mark, ms, src, dst, &text);
    if answer {
        let r = format!(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP {src};branch=z9hG4bKo{mark}\n\
             From: <sip:probe@{}>;tag=o1\nTo: <sip:{user}@{}>;tag=x\nCall-ID: o-{mark}\nCSeq: 1 OPTIONS\n",
            host(src),
            host(dst)
        );
        c.sip("", ms + 10.0, dst, src, &r);
    }
}

/// A filler packet at `ms` so the capture lasts until then (a DNS-looking UDP datagram).
fn filler(c: &mut Cap, ms: f64) {
    c.udp(
        ms,
        "192.0.2.200:33333",
        "192.0.2.201:53",
        b"\x12\x34\x01\x00\x00\x01",
    );
}

// ---------------------------------------------------------------------------------------
// The cases

type Build = fn() -> Cap;
type Check = fn(&Out);

struct Case {
    id: &'static str,
    build: Build,
    check: Check,
}

macro_rules! cases {
    ($($id:literal => $build:expr, $check:expr;)*) => {
        vec![$(Case { id: $id, build: $build, check: $check }),*]
    };
}

fn no_check(_: &Out) {}

fn firing() -> Vec<Case> {
    cases! {
        "capture.truncated" => || { let mut c = normal_call(); c.cut_tail = 30; c }, |o| {
            let f = o.one("capture.truncated");
            assert_eq!(f.subject, Subject::Capture);
            assert!(says(f, "cut short"));
        };
        "capture.snaplen-cut" => || { let mut c = normal_call(); c.snaplen = Some(200); c }, |o| {
            let f = o.one("capture.snaplen-cut");
            assert!(says(f, "snaplen 200"), "{f:?}");
        };
        "capture.drops" => || { let mut c = normal_call(); c.pcapng_drops = Some(7); c }, |o| {
            assert!(says(o.one("capture.drops"), "7 dropped"));
        };
        "capture.one-sided" => || { let mut c = Cap::new(); let mut k = Call::new("os"); k.code = 0; emit_invite_only(&mut c, &k, 3); c }, |o| {
            let f = o.one("capture.one-sided");
            assert_eq!(call_of(f), "os");
            assert!(cites(f, o.frame("os:invite")));
        };
        "capture.limits-hit" => || {
            let mut c = Cap::new();
            c.cfg.sip.max_calls = 1;
            for i in 0..3 { let mut k = Call::new(&format!("lim{i}")); k.t = f64::from(i) * 10.0; k.emit(&mut c); }
            c
        }, |o| { let f = o.one("capture.limits-hit"); assert_eq!(f.subject, Subject::Capture); assert!(says(f, "evicted")); };
        "capture.encrypted-signalling" => || {
            let mut c = normal_call();
            for i in 0..4 { c.udp(100.0 + f64::from(i), "203.0.113.10:40000", "198.51.100.5:5061", b"\x17\x03\x03\x00\x10abcdefghijklmnop"); }
            c
        }, |o| assert!(says(o.one("capture.encrypted-signalling"), "4 frames"));
        "capture.duplicates" => || {
            let mut c = Cap::new();
            let k = Call::new("dup"); k.emit(&mut c);
            for i in 0..100u32 {
                let p = rtp_packet(false, 0, (1 + i) as u16, i * 160, 0xD0D0_0001, &[0xFF; 160]);
                let t = 1100.25 + f64::from(i) * 20.0;
                c.udp(t, "203.0.113.10:4000", "198.51.100.5:5000", &p);
                if i % 2 == 0 { c.udp(t + 0.05, "203.0.113.10:4000", "198.51.100.5:5000", &p); }
            }
            c
        }, |o| assert!(says(o.one("capture.duplicates"), "0xD0D00001"));
        "sip.call-failed" => || { let mut k = Call::new("cf"); k.code = 404; k.reason = "Not Found".into(); cap_call(k) }, |o| {
            let f = o.one("sip.call-failed");
            assert_eq!(call_of(f), "cf");
            assert_eq!(f.severity, Severity::Warning);
            assert!(cites(f, o.frame("cf:invite")) && cites(f, o.frame("cf:final")));
            assert!(says(f, "404 means"));
        };
        "sip.invite-unanswered" => || { let mut c = Cap::new(); emit_invite_only(&mut c, &Call::new("iu"), 4); c }, |o| {
            let f = o.one("sip.invite-unanswered");
            assert_eq!(call_of(f), "iu");
            assert!(cites(f, o.frame("iu:invite")));
            assert!(says(f, "3 retransmissions"), "{f:?}");
        };
        "sip.ack-missing" => || { let mut k = Call::new("am"); k.ok_copies = 5; k.ack = false; k.bye_after = Some(32000.0); k.bye_by_callee = true; cap_call(k) }, |o| {
            let f = o.one("sip.ack-missing");
            assert_eq!(call_of(f), "am");
            assert!(cites(f, o.frame("am:ok0")) && cites(f, o.frame("am:ok4")) && cites(f, o.frame("am:bye")));
            assert!(says(f, "5 copies"));
        };
        "sip.retransmissions" => || {
            let mut c = Cap::new();
            for i in 0..3 { let mut k = Call::new(&format!("rt{i}")); k.t = f64::from(i) * 10000.0; emit_invite_only(&mut c, &k, 3); }
            c
        }, |o| {
            let f = o.one("sip.retransmissions");
            assert_eq!(host_of(f), B);
            assert!(says(f, "6 of 9 requests"), "{f:?}");
        };
        "sip.slow-setup" => || { let mut k = Call::new("ss"); k.ring_at = Some(6500.0); k.answer_ms = 8000.0; cap_call(k) }, |o| {
            let f = o.one("sip.slow-setup");
            assert_eq!(call_of(f), "ss");
            assert!(cites(f, o.frame("ss:ring")) && says(f, "6.5 s"));
        };
        "sip.timer-drop" => || { let mut k = Call::new("td"); k.ok_copies = 6; k.ack = false; k.bye_after = Some(32000.0); k.bye_by_callee = true; cap_call(k) }, |o| {
            let f = o.one("sip.timer-drop");
            assert_eq!(call_of(f), "td");
            assert!(cites(f, o.frame("td:bye")) && says(f, "32.0 s"));
        };
        "sip.in-dialog-misroute" => || {
            let mut k = Call::new("mr");
            k.ok_hdrs = "Contact: <sip:bob@198.51.100.7:5060>\n".into();
            k.in_dialog_to = Some("198.51.100.99:5060".into());
            cap_call(k)
        }, |o| {
            let f = o.one("sip.in-dialog-misroute");
            assert_eq!(call_of(f), "mr");
            assert!(cites(f, o.frame("mr:ok0")) && cites(f, o.frame("mr:ack")));
            assert!(says(f, "198.51.100.7"));
        };
        "sip.malformed" => || {
            let mut c = Cap::new();
            c.sip("bad", 0.0, A, B, &format!("OPTIONS sip:bob@{} SIP/2.0\nVia: SIP/2.0/UDP {A};branch=z9hG4bKm1\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nCall-ID: mal\nCSeq: 1 OPTIONS\nContent-Length: 10\n\n0123456789abcdefghij", host(B)));
            c
        }, |o| { let f = o.one("sip.malformed"); assert!(cites(f, o.frame("bad"))); };
        "sip.oversize-udp" => || {
            let mut k = Call::new("big");
            let pad: String = (0..30).map(|i| format!("a=x-pad:{i:02} {}\n", "p".repeat(48))).collect();
            k.a_sdp = sdp(host(A), 4000, "0 101", &pad);
            cap_call(k)
        }, |o| {
            let f = o.one("sip.oversize-udp");
            assert_eq!(call_of(f), "big");
            // Reassembled in the frame of its second (last) fragment.
            assert!(cites(f, o.frame("big:invite") + 1) && says(f, "IP-fragmented"), "{f:?}");
        };
        "sip.session-timer" => || {
            let mut k = Call::new("st"); k.code = 422; k.reason = "Session Interval Too Small".into();
            k.ok_hdrs = "Min-SE: 1800\n".into();
            cap_call(k)
        }, |o| {
            let f = o.one("sip.session-timer");
            assert!(cites(f, o.frame("st:final")) && says(f, "Min-SE: 1800"));
        };
        "reg.failed" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, A, 3600, false, 401, 0);
            register(&mut c, "r2", 100.0, A, B, 2, A, 3600, true, 403, 0);
            c
        }, |o| {
            let f = o.one("reg.failed");
            assert!(matches!(&f.subject, Subject::Registration { aor, .. } if aor.contains("alice")));
            assert!(cites(f, o.frame("r2")) && cites(f, o.frame("r2:r")) && says(f, "403"));
        };
        "reg.expiry-exceeds-nat" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, "192.168.1.10:5060", 3600, false, 200, 3600);
            filler(&mut c, 300_000.0);
            c
        }, |o| {
            let f = o.one("reg.expiry-exceeds-nat");
            assert!(cites(f, o.frame("r1")) && says(f, "3600 s"));
        };
        "reg.interval-too-short" => || { let mut c = Cap::new(); register(&mut c, "r1", 0.0, A, B, 1, A, 30, false, 200, 30); c }, |o| {
            let f = o.one("reg.interval-too-short");
            assert!(cites(f, o.frame("r1")) && says(f, "30 s < 60 s"), "{f:?}");
        };
        "reg.lapsed" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, A, 60, false, 200, 60);
            filler(&mut c, 100_000.0);
            c
        }, |o| { let f = o.one("reg.lapsed"); assert!(cites(f, o.frame("r1:r")) && says(f, "granted 60 s")); };
        "reg.binding-expired-inbound-lost" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, "192.168.1.10:5060", 3600, false, 200, 3600);
            let mut k = Call::new("in1"); k.t = 200_000.0; k.a = B.into(); k.b = A.into();
            emit_invite_only(&mut c, &k, 4);
            c
        }, |o| {
            let f = o.one("reg.binding-expired-inbound-lost");
            assert_eq!(call_of(f), "in1");
            assert!(cites(f, o.frame("r1")) && cites(f, o.frame("in1:invite")));
        };
        "keepalive.missing" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, "192.168.1.10:5060", 3600, false, 200, 3600);
            register(&mut c, "r2", 300_000.0, A, B, 2, "192.168.1.10:5060", 3600, false, 200, 3600);
            c
        }, |o| { let f = o.one("keepalive.missing"); assert!(cites(f, o.frame("r1")) && says(f, "300.0 s")); };
        "keepalive.options-unanswered" => || {
            let mut c = Cap::new();
            for i in 0..3 { options(&mut c, &format!("o{i}"), f64::from(i) * 30_000.0, A, B, "pbx", false, "ping"); }
            c
        }, |o| { let f = o.one("keepalive.options-unanswered"); assert_eq!(host_of(f), B); assert!(cites(f, o.frame("o0")) && says(f, "3 of 3")); };
        "keepalive.interval" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, A, 3600, false, 200, 3600);
            for i in 1..=6 { c.udp(f64::from(i) * 5000.0, A, B, b"\r\n\r\n"); }
            c
        }, |o| { let f = o.one("keepalive.interval"); assert_eq!(host_of(f), A); assert!(says(f, "every 5.0 s")); };
        "nat.private-sdp" => || { let mut k = Call::new("ps"); k.a_sdp = sdp("192.168.1.10", 4000, "0", ""); cap_call(k) }, |o| {
            let f = o.one("nat.private-sdp");
            assert_eq!(call_of(f), "ps");
            assert!(cites(f, o.frame("ps:invite")) && says(f, "c=IN IP4 192.168.1.10"));
        };
        "nat.private-contact" => || {
            let mut c = Cap::new();
            let t = format!("INVITE sip:bob@{} SIP/2.0\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKpc1\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: pc\nCSeq: 1 INVITE\nContact: <sip:alice@192.168.1.10:5060>\n", host(B));
            c.sip("pc:invite", 0.0, A, B, &t);
            c
        }, |o| { let f = o.one("nat.private-contact"); assert!(cites(f, o.frame("pc:invite")) && says(f, "Contact: <sip:alice@192.168.1.10:5060>")); };
        "nat.media-port-translated" => || { let mut c = Cap::new(); talk(&mut c, &Call::new("mpt"), "203.0.113.10:62000", "198.51.100.5:5000"); c }, |o| {
            let f = o.one("nat.media-port-translated");
            assert!(matches!(&f.subject, Subject::Stream { src, .. } if src == "203.0.113.10:62000"));
            assert!(cites(f, o.frame("mpt:invite")));
        };
        "nat.media-to-unroutable" => || {
            let mut c = Cap::new();
            let mut k = Call::new("mtu"); k.a_sdp = sdp("192.168.1.10", 4000, "0", ""); k.emit(&mut c);
            c.rtp(1030.0, "198.51.100.5:5000", "192.168.1.10:4000", 0xB0B0_0001, 200);
            c
        }, |o| {
            let f = o.one("nat.media-to-unroutable");
            assert!(matches!(&f.subject, Subject::Stream { dst, .. } if dst == "192.168.1.10:4000"));
            assert!(cites(f, o.frame("mtu:invite")) && says(f, "200 RTP packets"));
        };
        "nat.early-media-lost" => || {
            let mut c = Cap::new();
            let mut k = Call::new("eml"); k.a_sdp = sdp("192.168.1.10", 4000, "0", ""); k.emit(&mut c);
            // The far end sends to the announced private address for 2 s, then latches.
            c.rtp_with(1030.0, "198.51.100.5:5000", "192.168.1.10:4000", 0xE0E0_0001, 0, 100, |_| false, |_| 0.0);
            c.rtp(3030.0, "203.0.113.10:4000", "198.51.100.5:5000", 0xA0A0_0001, 150);
            c.rtp_with(3040.0, "198.51.100.5:5000", "203.0.113.10:4000", 0xE0E0_0001, 0, 150, |_| false, |_| 0.0);
            c
        }, |o| {
            let f = o.one("nat.early-media-lost");
            assert!(matches!(&f.subject, Subject::Stream { dst, .. } if dst == "192.168.1.10:4000"));
            assert!(says(f, "100 packets") && says(f, "203.0.113.10:4000"));
        };
        "nat.binding-churn" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, "203.0.113.10:6001", B, 1, "192.168.1.10:5060", 300, false, 200, 300);
            register(&mut c, "r2", 250_000.0, "203.0.113.10:6002", B, 2, "192.168.1.10:5060", 300, false, 200, 300);
            c
        }, |o| { let f = o.one("nat.binding-churn"); assert!(cites(f, o.frame("r1")) && cites(f, o.frame("r2"))); };
        "alg.two-capture-diff" => || {
            // Phone side: private Via/Contact/SDP. Provider side: the router rewrote Via and
            // Contact to its public address but left the SDP private.
            let mut inside = Call::new("v2");
            inside.a = "192.168.1.10:5060".into();
            inside.a_sdp = sdp("192.168.1.10", 4000, "0", "");
            inside.inv_hdrs = "Contact: <sip:alice@192.168.1.10:5060>\n".into();
            let mut outside = inside.clone();
            outside.a = "203.0.113.7:1024".into();
            outside.inv_hdrs = "Contact: <sip:alice@203.0.113.7:1024>\n".into();
            let mut c = cap_call(inside);
            c.vantage = Some(Box::new(cap_call(outside)));
            c
        }, |o| {
            let f = o.one("alg.two-capture-diff");
            assert_eq!(call_of(f), "v2");
            assert!(says(f, "Contact") && says(f, "Via sent-by"), "{f:?}");
            assert!(says(f, "sip:alice@192.168.1.10:5060 → sip:alice@203.0.113.7:1024"), "{f:?}");
            assert!(cites(f, o.frame("v2:invite")));
            assert!(!f.summary.contains("SDP c="), "the SDP was not rewritten: {f:?}");
        };
        "alg.rewrite-inconsistent" => || {
            let mut k = Call::new("alg");
            k.a_sdp = sdp(host(A), 4000, "0", "").replace("o=- 1 1 IN IP4 203.0.113.10", "o=- 1 1 IN IP4 192.168.1.10");
            k.inv_hdrs = format!("Contact: <sip:alice@{A}>\n");
            let mut c = Cap::new();
            // Via left private, Contact and c= rewritten: two signs.
            let t = req("INVITE", &k.ruri, "192.168.1.10:5060", "alg1", "alg", 1, "INVITE", &k.inv_hdrs, &k.a_sdp);
            c.sip("alg:invite", 0.0, A, B, &t);
            c
        }, |o| {
            let f = o.one("alg.rewrite-inconsistent");
            assert_eq!(f.severity, Severity::Warning);
            assert!(cites(f, o.frame("alg:invite")) && says(f, "o=- 1 1 IN IP4 192.168.1.10"));
        };
        "media.one-way" => || {
            let mut c = Cap::new();
            let k = Call::new("ow"); k.emit(&mut c);
            c.rtp(1030.0, "198.51.100.5:5000", "203.0.113.10:4000", 0xB1B1_0001, 240);
            c
        }, |o| {
            let f = o.one("media.one-way");
            assert_eq!(call_of(f), "ow");
            assert!(says(f, "198.51.100.5:5000 → 203.0.113.10:4000") && says(f, "240 packets"));
        };
        "media.none" => || {
            let mut c = Cap::new();
            talk(&mut c, &Call::new("withrtp"), "203.0.113.10:4000", "198.51.100.5:5000");
            let mut k = Call::new("nm"); k.t = 20_000.0; k.a_sdp = sdp(host(A), 4100, "0", ""); k.b_sdp = sdp(host(B), 5100, "0", ""); k.emit(&mut c);
            c
        }, |o| {
            let f = o.one("media.none");
            assert_eq!(call_of(f), "nm");
            assert_eq!(f.severity, Severity::Error);
            assert!(cites(f, o.frame("nm:invite")) && cites(f, o.frame("nm:ok0")));
        };
        "media.stopped" => || {
            let mut c = Cap::new();
            let mut k = Call::new("stp"); k.bye_after = Some(12_000.0); k.emit(&mut c);
            c.rtp_with(1030.0, "203.0.113.10:4000", "198.51.100.5:5000", 0x5701_0001, 0, 550, |i| (100..450).contains(&i), |_| 0.0);
            c.rtp(1033.0, "198.51.100.5:5000", "203.0.113.10:4000", 0x5702_0002, 550);
            c
        }, |o| { let f = o.one("media.stopped"); assert!(says(f, "paused 7.0 s"), "{f:?}"); };
        "media.orphan" => || { let mut c = Cap::new(); c.rtp(0.0, "192.0.2.1:7000", "192.0.2.2:7002", 0x0F0F_0001, 50); c }, |o| {
            let f = o.one("media.orphan");
            assert_eq!(f.subject, Subject::Capture);
            assert!(cites(f, 1) && says(f, "0x0F0F0001"));
        };
        "media.codec-mismatch" => || { let mut k = Call::new("cm"); k.a_sdp = sdp(host(A), 4000, "0", ""); k.b_sdp = sdp(host(B), 5000, "18", ""); cap_call(k) }, |o| {
            let f = o.one("media.codec-mismatch");
            assert_eq!(call_of(f), "cm");
            assert!(cites(f, o.frame("cm:invite")) && cites(f, o.frame("cm:ok0")) && says(f, "m=audio 5000 RTP/AVP 18"));
        };
        "media.dtmf-mismatch" => || { let mut k = Call::new("dm"); k.a_sdp = sdp(host(A), 4000, "18 101", ""); k.b_sdp = sdp(host(B), 5000, "18", ""); cap_call(k) }, |o| {
            let f = o.one("media.dtmf-mismatch");
            assert_eq!(f.severity, Severity::Warning);
            assert!(cites(f, o.frame("dm:invite")) && says(f, "G729"));
        };
        "media.hold-not-resumed" => || hold_call(false), |o| {
            let f = o.one("media.hold-not-resumed");
            assert_eq!(call_of(f), "hold");
            assert!(cites(f, o.frame("hold:reinvite1")) && says(f, "sendonly"), "{f:?}");
        };
        "media.ssrc-change" => || {
            let mut c = Cap::new();
            let k = Call::new("sc"); k.emit(&mut c);
            c.rtp(1030.0, "203.0.113.10:4000", "198.51.100.5:5000", 0x1111_0001, 100);
            c.rtp(3030.0, "203.0.113.10:4000", "198.51.100.5:5000", 0x2222_0002, 100);
            c.rtp(1033.0, "198.51.100.5:5000", "203.0.113.10:4000", 0x3333_0003, 200);
            c
        }, |o| { let f = o.one("media.ssrc-change"); assert!(says(f, "0x11110001 → 0x22220002")); };
        "qos.loss" => || impaired(|i| i % 20 == 7, |_| 0.0), |o| {
            let f = o.one("qos.loss");
            assert!(matches!(&f.subject, Subject::Stream { ssrc, .. } if ssrc == "0x5EED0001"));
            assert!(says(f, "12 of 240"), "{f:?}");
        };
        // Arrival delay jumps 190 ms every 11 packets and eases back 19 ms per packet: never
        // reordered, but far from the 20 ms rhythm.
        "qos.jitter" => || impaired(|_| false, |i| match i % 11 { 0 => 0.0, k => 190.0 - 19.0 * f64::from(k - 1) }), |o| {
            let f = o.one("qos.jitter");
            assert!(matches!(&f.subject, Subject::Stream { ssrc, .. } if ssrc == "0x5EED0001"));
        };
        "qos.mos" => || impaired(|i| i % 4 == 1, |_| 0.0), |o| { let f = o.one("qos.mos"); assert!(says(f, "PCMU") || says(f, "G.711"), "{f:?}"); };
        "qos.rtcp-reported" => || rtcp_call(64), |o| { let f = o.one("qos.rtcp-reported"); assert!(says(f, "25.0 % lost")); };
        "qos.burst-loss" => || impaired(|i| (100..108).contains(&i), |_| 0.0), |o| { assert!(says(o.one("qos.burst-loss"), "8 consecutive")); };
        "security.scanner" => || {
            let mut c = Cap::new();
            options(&mut c, "sc0", 0.0, "192.0.2.66:5070", B, "friendly-scanner", true, "100");
            c
        }, |o| { let f = o.one("security.scanner"); assert_eq!(host_of(f), "192.0.2.66"); assert!(cites(f, o.frame("sc0")) && says(f, "friendly-scanner")); };
        // An extension sweep from an ordinary User-Agent: 12 users, nothing answered.
        "security.scanner" => || {
            let mut c = Cap::new();
            for i in 0..12 { options(&mut c, &format!("sw{i}"), f64::from(i) * 200.0, "192.0.2.67:5060", B, "Asterisk PBX 18", false, &format!("{}", 100 + i)); }
            c
        }, |o| { let f = o.one("security.scanner"); assert_eq!(host_of(f), "192.0.2.67"); assert!(cites(f, o.frame("sw0")) && says(f, "12 distinct users") && says(f, "0 of the 12")); };
        "security.bruteforce" => || {
            let mut c = Cap::new();
            for i in 0..12 { register(&mut c, &format!("b{i}"), f64::from(i) * 1000.0, "192.0.2.66:5070", B, i + 1, "192.0.2.66:5070", 3600, true, 403, 0); }
            c
        }, |o| { let f = o.one("security.bruteforce"); assert_eq!(host_of(f), "192.0.2.66"); assert!(cites(f, o.frame("b0")) && says(f, "12 refused")); };
        "security.toll-fraud" => || fraud(2000.0), |o| {
            let f = o.one("security.toll-fraud");
            assert_eq!(host_of(f), "203.0.113.10");
            assert!(cites(f, o.frame("tf0:invite")) && says(f, "12 distinct") && says(f, "12 international"));
        };
        "security.flood" => || {
            let mut c = Cap::new();
            for i in 0..60 { options(&mut c, &format!("f{i}"), f64::from(i) * 10.0, "192.0.2.77:5060", B, "x", false, "ping"); }
            c
        }, |o| { let f = o.one("security.flood"); assert_eq!(host_of(f), "192.0.2.77"); assert!(says(f, "60 SIP requests")); };
        "policy.transport" => || trunk(|k| k.transport_tcp = true), |o| { let f = o.one("policy.transport"); assert_eq!(host_of(f), TRUNK_IP); assert!(says(f, "over TCP")); };
        // Only the keepalive goes over TCP: out-of-dialog requests count too.
        "policy.transport" => || trunk(|k| k.options_tcp = true), |o| { let f = o.one("policy.transport"); assert!(says(f, "1 SIP messages with trunk") && cites(f, o.frame("ka"))); };
        "policy.method" => || trunk(|k| k.message = true), |o| { let f = o.one("policy.method"); assert_eq!(host_of(f), TRUNK_IP); assert!(cites(f, o.frame("msg")) && says(f, "MESSAGE")); };
        "policy.codec" => || trunk(|k| k.fmts = "18 101"), |o| { let f = o.one("policy.codec"); assert_eq!(f.severity, Severity::Warning); assert!(cites(f, o.frame("tk:invite")) && says(f, "G729")); };
        "policy.dtmf" => || trunk(|k| k.fmts = "8"), |o| { let f = o.one("policy.dtmf"); assert!(cites(f, o.frame("tk:invite")) && says(f, "without telephone-event")); };
        "policy.t38" => || trunk(|k| k.t38 = true), |o| { let f = o.one("policy.t38"); assert!(cites(f, o.frame("tk:invite")) && says(f, "udptl t38")); };
        "policy.number-format" => || trunk(|k| k.number = "0201234567"), |o| { let f = o.one("policy.number-format"); assert!(cites(f, o.frame("tk:invite")) && says(f, "Request-URI \"0201234567\"")); };
        "policy.caller-id" => || trunk(|k| k.pai = false), |o| { let f = o.one("policy.caller-id"); assert_eq!(call_of(f), "tk"); assert!(cites(f, o.frame("tk:invite")) && says(f, "no P-Asserted-Identity")); };
        "policy.peer-address" => || trunk(|k| k.stranger = true), |o| {
            let f = o.of("policy.peer-address").into_iter().find(|f| host_of(f) == "203.0.113.99").expect("stranger reported");
            assert!(cites(f, o.frame("stranger")));
        };
        "policy.rtp-port-range" => || trunk(|k| k.trunk_rtp_port = 30000), |o| { let f = o.one("policy.rtp-port-range"); assert!(says(f, "194.140.246.10:30000")); };
        "policy.channels" => || trunk(|k| k.second_call_at = Some(2000.0)), |o| { let f = o.one("policy.channels"); assert_eq!(f.subject, Subject::Capture); assert!(says(f, "2 concurrent") && cites(f, o.frame("tk2:ok0"))); };
        "policy.destination" => || trunk(|k| k.number = "+88112345678"), |o| { let f = o.one("policy.destination"); assert!(cites(f, o.frame("tk:invite")) && says(f, "+881")); };
        "policy.keepalive" => || trunk(|k| k.options_answered = false), |o| { let f = o.one("policy.keepalive"); assert_eq!(host_of(f), TRUNK_IP); assert!(cites(f, o.frame("ka"))); };
    }
}

fn near_misses() -> Vec<Case> {
    cases! {
        "capture.truncated" => normal_call, no_check;
        "capture.snaplen-cut" => normal_call, no_check;
        "capture.drops" => || { let mut c = normal_call(); c.pcapng_drops = Some(0); c }, no_check;
        // The far end answered: a normal capture of an unanswered INVITE is not one-sided.
        "capture.one-sided" => || { let mut k = Call::new("os"); k.code = 486; k.reason = "Busy Here".into(); cap_call(k) }, no_check;
        "capture.limits-hit" => || { let mut c = Cap::new(); for i in 0..3 { let mut k = Call::new(&format!("lim{i}")); k.t = f64::from(i) * 10.0; k.emit(&mut c); } c }, no_check;
        "capture.encrypted-signalling" => normal_call, no_check;
        "capture.duplicates" => || {
            let mut c = Cap::new();
            for i in 0..100u32 {
                let p = rtp_packet(false, 0, (1 + i) as u16, i * 160, 0xD0D0_0001, &[0xFF; 160]);
                let t = 1100.25 + f64::from(i) * 20.0;
                c.udp(t, "203.0.113.10:4000", "198.51.100.5:5000", &p);
                if i % 10 == 0 { c.udp(t + 0.05, "203.0.113.10:4000", "198.51.100.5:5000", &p); }
            }
            c
        }, no_check;
        // A 407 challenge answered with credentials and then accepted is no failure.
        "sip.call-failed" => challenged_call, |o| assert!(o.of("sip.ack-missing").is_empty());
        "sip.invite-unanswered" => || { let mut c = Cap::new(); let k = Call::new("iu"); emit_invite_only(&mut c, &k, 2); c.sip("", 600.0, B, A, &resp(100, "Trying", A, "iui", "iu", 1, "INVITE", "", "")); c }, no_check;
        "sip.ack-missing" => || { let mut k = Call::new("am"); k.ok_copies = 2; cap_call(k) }, no_check;
        "sip.retransmissions" => || { let mut c = Cap::new(); for i in 0..10 { let mut k = Call::new(&format!("rt{i}")); k.t = f64::from(i) * 10000.0; if i == 0 { emit_invite_only(&mut c, &k, 2) } else { k.emit(&mut c) } } c }, no_check;
        "sip.slow-setup" => || cap_call(Call::new("ss")), no_check;
        // A BYE after answer at 10 s, or a caller hanging up at 32 s after an ACK, is a person.
        "sip.timer-drop" => || {
            let mut c = Cap::new();
            let mut k = Call::new("td1"); k.bye_after = Some(10_000.0); k.emit(&mut c);
            let mut k = Call::new("td2"); k.t = 50_000.0; k.bye_after = Some(32_000.0); k.emit(&mut c);
            c
        }, no_check;
        "sip.in-dialog-misroute" => || { let mut k = Call::new("mr"); k.ok_hdrs = "Contact: <sip:bob@198.51.100.7:5060>\n".into(); k.in_dialog_to = Some("198.51.100.7:5060".into()); cap_call(k) }, no_check;
        "sip.malformed" => || { let mut c = Cap::new(); options(&mut c, "ok", 0.0, A, B, "x", true, "bob"); c }, no_check;
        "sip.oversize-udp" => || cap_call(Call::new("small")), no_check;
        "sip.session-timer" => || { let mut k = Call::new("st"); k.ok_hdrs = format!("Contact: <sip:bob@{B}>\nSession-Expires: 1800;refresher=uac\n"); cap_call(k) }, no_check;
        // A 401 challenge answered and accepted is a normal registration.
        "reg.failed" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, A, 3600, false, 401, 0);
            register(&mut c, "r2", 100.0, A, B, 2, A, 3600, true, 200, 3600);
            c
        }, no_check;
        "reg.expiry-exceeds-nat" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, "192.168.1.10:5060", 3600, false, 200, 3600);
            for i in 1..=10 { c.udp(f64::from(i) * 30_000.0, A, B, b"\r\n\r\n"); }
            c
        }, no_check;
        "reg.interval-too-short" => || { let mut c = Cap::new(); register(&mut c, "r1", 0.0, A, B, 1, A, 3600, false, 200, 3600); c }, no_check;
        "reg.lapsed" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, A, 60, false, 200, 60);
            register(&mut c, "r2", 50_000.0, A, B, 2, A, 60, false, 200, 60);
            filler(&mut c, 100_000.0);
            c
        }, no_check;
        "reg.binding-expired-inbound-lost" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, "192.168.1.10:5060", 3600, false, 200, 3600);
            let mut k = Call::new("in1"); k.t = 60_000.0; k.a = B.into(); k.b = A.into();
            emit_invite_only(&mut c, &k, 4);
            c
        }, no_check;
        "keepalive.missing" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, "192.168.1.10:5060", 3600, false, 200, 3600);
            for i in 1..=10 { c.udp(f64::from(i) * 30_000.0, A, B, b"\r\n\r\n"); }
            c
        }, no_check;
        "keepalive.options-unanswered" => || { let mut c = Cap::new(); for i in 0..3 { options(&mut c, &format!("o{i}"), f64::from(i) * 30_000.0, A, B, "pbx", true, "ping"); } c }, no_check;
        "keepalive.interval" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, A, B, 1, A, 3600, false, 200, 3600);
            for i in 1..=6 { c.udp(f64::from(i) * 30_000.0, A, B, b"\r\n\r\n"); }
            c
        }, no_check;
        // LAN side of the NAT: private addresses from a private source are normal.
        "nat.private-sdp" => || lan_call(), no_check;
        "nat.private-contact" => || {
            let mut c = Cap::new();
            let t = format!("INVITE sip:bob@{} SIP/2.0\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKpc1;rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: pc\nCSeq: 1 INVITE\nContact: <sip:alice@192.168.1.10:5060>\n", host(B));
            c.sip("pc:invite", 0.0, A, B, &t);
            c
        }, no_check;
        "nat.media-port-translated" => normal_call, no_check;
        // A LAN-side capture of a NATed phone: the private host is right there.
        "nat.media-to-unroutable" => lan_call, no_check;
        // Correct latching from the start (no packet to the private address).
        "nat.early-media-lost" => natted_latched_call, no_check;
        "nat.binding-churn" => || {
            let mut c = Cap::new();
            register(&mut c, "r1", 0.0, "203.0.113.10:6001", B, 1, "192.168.1.10:5060", 300, false, 200, 300);
            register(&mut c, "r2", 250_000.0, "203.0.113.10:6001", B, 2, "192.168.1.10:5060", 300, false, 200, 300);
            c
        }, no_check;
        // A STUN phone: c= public, o= private, nothing else: at most info.
        // Both captures carry the same messages: nothing changed in flight.
        "alg.two-capture-diff" => || {
            let mut c = normal_call();
            c.vantage = Some(Box::new(normal_call()));
            c
        }, |o| assert!(o.of("alg.two-capture-diff").is_empty());
        "alg.rewrite-inconsistent" => || {
            let mut k = Call::new("stun");
            k.a_sdp = sdp(host(A), 4000, "0", "").replace("o=- 1 1 IN IP4 203.0.113.10", "o=- 1 1 IN IP4 192.168.1.10");
            cap_call(k)
        }, |o| {
            assert!(o.of("alg.rewrite-inconsistent").iter().all(|f| f.severity == Severity::Info));
        };
        // NATed caller with correct latching: media both ways between the public addresses.
        "media.one-way" => natted_latched_call, no_check;
        "media.none" => normal_call, no_check;
        "media.stopped" => || {
            let mut c = Cap::new();
            let mut k = Call::new("stp"); k.bye_after = Some(12_000.0); k.emit(&mut c);
            c.rtp_with(1030.0, "203.0.113.10:4000", "198.51.100.5:5000", 0x5701_0001, 0, 550, |i| (100..250).contains(&i), |_| 0.0);
            c.rtp(1033.0, "198.51.100.5:5000", "203.0.113.10:4000", 0x5702_0002, 550);
            c
        }, no_check;
        "media.orphan" => normal_call, no_check;
        // Video on its own m= section with its own payload type is negotiated.
        "media.codec-mismatch" => || {
            let mut c = Cap::new();
            let video = "m=video 4002 RTP/AVP 34\na=rtpmap:34 H263/90000\n";
            let mut k = Call::new("cmv"); k.a_sdp = sdp(host(A), 4000, "0 101", video);
            k.b_sdp = sdp(host(B), 5000, "0 101", &video.replace("4002", "5002"));
            talk(&mut c, &k, "203.0.113.10:4000", "198.51.100.5:5000");
            c.rtp_with(1040.0, "203.0.113.10:4002", "198.51.100.5:5002", 0x7777_0001, 34, 100, |_| false, |_| 0.0);
            c
        }, no_check;
        "media.dtmf-mismatch" => normal_call, no_check;
        "media.hold-not-resumed" => || hold_call(true), no_check;
        "media.ssrc-change" => normal_call, no_check;
        "qos.loss" => || impaired(|i| i == 7, |_| 0.0), no_check;
        "qos.jitter" => || impaired(|_| false, |i| if i % 2 == 1 { 2.0 } else { 0.0 }), no_check;
        "qos.mos" => || impaired(|_| false, |_| 0.0), no_check;
        "qos.rtcp-reported" => || rtcp_call(0), no_check;
        "qos.burst-loss" => || impaired(|i| (100..103).contains(&i), |_| 0.0), no_check;
        // FreePBX's own User-Agent is not a scanner's.
        "security.scanner" => || { let mut c = Cap::new(); options(&mut c, "fp", 0.0, "192.168.8.13:5060", "192.168.8.183:5060", "FPBX-14.0.13.4(13.27.0)", true, "8804"); c }, no_check;
        // A PBX qualifying 12 peers (distinct users), each answering: not a sweep.
        "security.scanner" => || {
            let mut c = Cap::new();
            for i in 0..12 { options(&mut c, &format!("q{i}"), f64::from(i) * 200.0, "192.0.2.67:5060", B, "Asterisk PBX 18", true, &format!("{}", 100 + i)); }
            c
        }, no_check;
        "security.bruteforce" => || {
            let mut c = Cap::new();
            for i in 0..3 { register(&mut c, &format!("b{i}"), f64::from(i) * 1000.0, "192.0.2.66:5070", B, i + 1, "192.0.2.66:5070", 3600, true, 403, 0); }
            c
        }, no_check;
        "security.toll-fraud" => || fraud(100_000.0), no_check;
        "security.flood" => || { let mut c = Cap::new(); for i in 0..60 { options(&mut c, &format!("f{i}"), f64::from(i) * 1000.0, "192.0.2.77:5060", B, "x", true, "ping"); } c }, no_check;
        "policy.transport" => || trunk(|_| {}), no_check;
        "policy.method" => || trunk(|_| {}), no_check;
        "policy.codec" => || trunk(|_| {}), no_check;
        "policy.dtmf" => || trunk(|_| {}), no_check;
        "policy.t38" => || trunk(|_| {}), no_check;
        "policy.number-format" => || trunk(|_| {}), no_check;
        "policy.caller-id" => || trunk(|_| {}), no_check;
        "policy.peer-address" => || trunk(|_| {}), no_check;
        "policy.rtp-port-range" => || trunk(|_| {}), no_check;
        "policy.channels" => || trunk(|k| k.second_call_at = Some(20_000.0)), no_check;
        "policy.destination" => || trunk(|_| {}), no_check;
        "policy.keepalive" => || trunk(|_| {}), no_check;
    }
}

// ---------------------------------------------------------------------------------------
// Builders shared by several cases

/// The INVITE and `copies - 1` retransmissions (500 ms doubling), nothing else.
fn emit_invite_only(c: &mut Cap, k: &Call, copies: u32) {
    let inv = req(
        "INVITE",
        &k.ruri,
        &k.a,
        &format!("{}i", k.id),
        &k.id,
        1,
        "INVITE",
        &k.inv_hdrs,
        &k.a_sdp,
    );
    let (mut off, mut iv) = (0.0, 500.0);
    for i in 0..copies {
        let mark = if i == 0 {
            format!("{}:invite", k.id)
        } else {
            String::new()
        };
        c.sip(&mark, k.t + off, &k.a, &k.b, &inv);
        off += iv;
        iv *= 2.0;
    }
}

fn challenged_call() -> Cap {
    let mut c = Cap::new();
    let k = Call::new("ch");
    let inv = req(
        "INVITE",
        &k.ruri,
        A,
        "ch0",
        "ch",
        1,
        "INVITE",
        &k.inv_hdrs,
        &k.a_sdp,
    );
    c.sip("", 0.0, A, B, &inv);
    c.sip(
        "",
        10.0,
        B,
        A,
        &resp(
            407,
            "Proxy Authentication Required",
            A,
            "ch0",
            "ch",
            1,
            "INVITE",
            "Proxy-Authenticate: Digest realm=\"example.com\", nonce=\"x\"\n",
            "",
        ),
    );
    c.sip(
        "",
        20.0,
        A,
        B,
        &req("ACK", &k.ruri, A, "ch0", "ch", 1, "ACK", "", ""),
    );
    let mut k2 = k.clone();
    k2.t = 50.0;
    k2.inv_hdrs.push_str("Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:bob@198.51.100.5\", response=\"0123456789abcdef0123456789abcdef\"\n");
    // Same Call-ID, CSeq 2.
    let inv2 = req(
        "INVITE",
        &k2.ruri,
        A,
        "ch1",
        "ch",
        2,
        "INVITE",
        &k2.inv_hdrs,
        &k2.a_sdp,
    );
    c.sip("", 50.0, A, B, &inv2);
    c.sip(
        "",
        60.0,
        B,
        A,
        &resp(180, "Ringing", A, "ch1", "ch", 2, "INVITE", "", ""),
    );
    c.sip(
        "",
        1050.0,
        B,
        A,
        &resp(
            200,
            "OK",
            A,
            "ch1",
            "ch",
            2,
            "INVITE",
            &k2.ok_hdrs,
            &k2.b_sdp,
        ),
    );
    c.sip(
        "",
        1065.0,
        A,
        B,
        &req("ACK", &k2.ruri, A, "ch2", "ch", 2, "ACK", "", ""),
    );
    c.rtp(
        1080.0,
        "203.0.113.10:4000",
        "198.51.100.5:5000",
        0xC1C1_0001,
        200,
    );
    c.rtp(
        1083.0,
        "198.51.100.5:5000",
        "203.0.113.10:4000",
        0xC2C2_0002,
        200,
    );
    c.sip(
        "",
        5200.0,
        A,
        B,
        &req("BYE", &k2.ruri, A, "ch3", "ch", 3, "BYE", "", ""),
    );
    c.sip(
        "",
        5210.0,
        B,
        A,
        &resp(200, "OK", A, "ch3", "ch", 3, "BYE", "", ""),
    );
    c
}

/// A NATed phone seen from its LAN side: private signalling and media addresses throughout.
fn lan_call() -> Cap {
    let mut c = Cap::new();
    let mut k = Call::new("lan");
    k.a = "192.168.1.10:5060".into();
    k.a_sdp = sdp("192.168.1.10", 4000, "0 101", "");
    k.inv_hdrs = "Contact: <sip:alice@192.168.1.10:5060>\n".into();
    talk(&mut c, &k, "192.168.1.10:4000", "198.51.100.5:5000");
    c
}

/// A NATed phone seen outside the NAT: private SDP, and the far end latches at once onto
/// the observed source, so media flows both ways between the public addresses.
fn natted_latched_call() -> Cap {
    let mut c = Cap::new();
    let mut k = Call::new("natl");
    k.a_sdp = sdp("192.168.1.10", 4000, "0 101", "");
    talk(&mut c, &k, "203.0.113.10:4000", "198.51.100.5:5000");
    c
}

fn hold_call(resume: bool) -> Cap {
    let mut c = Cap::new();
    let mut k = Call::new("hold");
    k.bye_after = Some(9000.0);
    talk(&mut c, &k, "203.0.113.10:4000", "198.51.100.5:5000");
    let held = sdp(host(A), 4000, "0 101", "a=sendonly\n").replace("o=- 1 1", "o=- 1 2");
    let mut offers = vec![("hold:reinvite1", 4000.0, held)];
    if resume {
        offers.push((
            "hold:reinvite2",
            6000.0,
            sdp(host(A), 4000, "0 101", "").replace("o=- 1 1", "o=- 1 3"),
        ));
    }
    for (i, (mark, t, body)) in offers.into_iter().enumerate() {
        let cseq = 10 + i as u32;
        let br = format!("hre{i}");
        c.sip(
            mark,
            1000.0 + t,
            A,
            B,
            &req(
                "INVITE",
                &format!("sip:bob@{B}"),
                A,
                &br,
                "hold",
                cseq,
                "INVITE",
                &format!("Contact: <sip:alice@{A}>\n"),
                &body,
            ),
        );
        c.sip(
            "",
            1010.0 + t,
            B,
            A,
            &resp(
                200,
                "OK",
                A,
                &br,
                "hold",
                cseq,
                "INVITE",
                &format!("Contact: <sip:bob@{B}>\n"),
                &sdp(host(B), 5000, "0 101", ""),
            ),
        );
        c.sip(
            "",
            1020.0 + t,
            A,
            B,
            &req(
                "ACK",
                &format!("sip:bob@{B}"),
                A,
                &format!("{br}a"),
                "hold",
                cseq,
                "ACK",
                "",
                "",
            ),
        );
    }
    c
}

/// A 5 s answered call whose caller stream (SSRC 0x5EED0001, 240 packets) is impaired.
fn impaired(lost: fn(u32) -> bool, late: fn(u32) -> f64) -> Cap {
    let mut c = Cap::new();
    let k = Call::new("imp");
    k.emit(&mut c);
    c.rtp_with(
        1030.0,
        "203.0.113.10:4000",
        "198.51.100.5:5000",
        0x5EED_0001,
        0,
        240,
        lost,
        late,
    );
    c.rtp(
        1033.0,
        "198.51.100.5:5000",
        "203.0.113.10:4000",
        0x5EED_0002,
        240,
    );
    c
}

/// A clean call plus receiver reports from the callee about the caller's stream.
fn rtcp_call(fraction: u8) -> Cap {
    let mut c = normal_call();
    for i in 1..=3u32 {
        let rr = rtcp_rr(
            0xB2B2_0002,
            &[ReportBlock {
                ssrc: 0xA1A1_0001,
                fraction_lost: fraction,
                cumulative_lost: i32::from(fraction) * i as i32 / 8,
                highest_seq: 1000 + 50 * i,
                jitter: 10,
                lsr: 0,
                dlsr: 0,
            }],
        );
        c.udp(
            1030.0 + f64::from(i) * 1000.0 + 0.5,
            "198.51.100.5:5001",
            "203.0.113.10:4001",
            &rr,
        );
    }
    c
}

/// 12 INVITEs to distinct international numbers, `gap` ms apart.
fn fraud(gap: f64) -> Cap {
    let mut c = Cap::new();
    for i in 0..12 {
        let mut k = Call::new(&format!("tf{i}"));
        k.t = f64::from(i) * gap;
        k.ruri = format!("sip:+8821600{i:04}@{}", host(B));
        k.code = 403;
        k.reason = "Forbidden".into();
        let inv = req(
            "INVITE",
            &k.ruri,
            A,
            &format!("tf{i}"),
            &k.id,
            1,
            "INVITE",
            "",
            "",
        )
        .replace("To: <sip:bob@example.com>", &format!("To: <{}>", k.ruri));
        c.sip(&format!("{}:invite", k.id), k.t, A, B, &inv);
        c.sip(
            "",
            k.t + 10.0,
            B,
            A,
            &resp(
                403,
                "Forbidden",
                A,
                &format!("tf{i}"),
                &k.id,
                1,
                "INVITE",
                "",
                "",
            ),
        );
    }
    c
}

const TRUNK_IP: &str = "194.140.246.10";
const TRUNK: &str = "194.140.246.10:5060";
const PBX: &str = "192.168.1.2:5060";

struct TrunkOpts {
    transport_tcp: bool,
    /// The trunk keepalive (OPTIONS) over TCP.
    options_tcp: bool,
    message: bool,
    fmts: &'static str,
    t38: bool,
    number: &'static str,
    pai: bool,
    stranger: bool,
    trunk_rtp_port: u16,
    second_call_at: Option<f64>,
    options_answered: bool,
}

/// A PBX (192.168.1.2) calling out through the example trunk, compliant with
/// `profiles/example-trunk.toml` (max_channels lowered to 1) unless `tweak` changes one
/// thing.
fn trunk(tweak: fn(&mut TrunkOpts)) -> Cap {
    let mut o = TrunkOpts {
        transport_tcp: false,
        options_tcp: false,
        message: false,
        fmts: "8 101",
        t38: false,
        number: "+31201234567",
        pai: true,
        stranger: false,
        trunk_rtp_port: 12000,
        second_call_at: None,
        options_answered: true,
    };
    tweak(&mut o);
    let mut c = Cap::new();
    let mut p = Profile::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-trunk.toml"),
    )
    .expect("example profile");
    p.max_channels = Some(1);
    p.keepalive_interval_s = None;
    c.profile = Some(p);
    let mut ka = Cap::new();
    options(
        &mut ka,
        "ka",
        0.0,
        PBX,
        TRUNK,
        "pbx",
        o.options_answered,
        "ping",
    );
    replay(
        &mut c,
        ka,
        &|h| h,
        o.options_tcp.then_some((-5.0, PBX, TRUNK)),
    );
    let mut calls = vec![("tk", 100.0)];
    if let Some(t) = o.second_call_at {
        calls.push(("tk2", t));
    }
    for (id, t) in calls {
        let mut k = Call::new(id);
        k.t = t;
        k.a = PBX.into();
        k.b = TRUNK.into();
        k.ruri = format!("sip:{}@{TRUNK_IP}", o.number);
        let extra = if o.t38 {
            "m=image 4002 udptl t38\n"
        } else {
            ""
        };
        k.a_sdp = sdp("192.168.1.2", 4000, o.fmts, extra);
        k.b_sdp = sdp(TRUNK_IP, o.trunk_rtp_port, "8 101", "");
        k.inv_hdrs = format!("Contact: <sip:+31501234567@{PBX}>\n");
        if o.pai {
            k.inv_hdrs
                .push_str("P-Asserted-Identity: <sip:+31501234567@example.com>\n");
        }
        k.ok_hdrs = format!("Contact: <sip:{}@{TRUNK}>\n", o.number);
        k.bye_after = Some(5000.0);
        let num = o.number;
        let fix = |s: String| {
            s.replace(
                "From: <sip:alice@example.com>",
                "From: <sip:+31501234567@example.com>",
            )
            .replace(
                "To: <sip:bob@example.com>",
                &format!("To: <sip:{num}@example.com>"),
            )
        };
        emit_fixed(&mut c, &k, &fix, o.transport_tcp);
        let st = k.answer_t() + 30.0;
        let trunk_rtp = format!("{TRUNK_IP}:{}", o.trunk_rtp_port);
        c.rtp(
            st,
            "192.168.1.2:4000",
            &trunk_rtp,
            0x7001_0001 + t as u32,
            200,
        );
        c.rtp(
            st + 3.0,
            &trunk_rtp,
            "192.168.1.2:4000",
            0x7002_0002 + t as u32,
            200,
        );
    }
    if o.message {
        let t = format!(
            "MESSAGE sip:+31201234567@{TRUNK_IP} SIP/2.0\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKmsg1\nMax-Forwards: 70\nFrom: <sip:+31501234567@example.com>;tag=m\nTo: <sip:+31201234567@example.com>\nCall-ID: msg1\nCSeq: 1 MESSAGE\nContent-Type: text/plain\n\nhello"
        );
        c.sip("msg", 8000.0, PBX, TRUNK, &t);
    }
    if o.stranger {
        options(
            &mut c,
            "stranger",
            9000.0,
            "203.0.113.99:5060",
            PBX,
            "x",
            true,
            "100",
        );
    }
    c
}

/// [`Call::emit`] with every message passed through `fix`, over UDP or TCP.
fn emit_fixed(c: &mut Cap, k: &Call, fix: &dyn Fn(String) -> String, tcp: bool) {
    let mut tmp = Cap::new();
    k.emit(&mut tmp);
    let open = tcp.then_some((k.t - 5.0, k.a.as_str(), k.b.as_str()));
    replay(c, tmp, fix, open);
}

/// Copy the SIP/UDP frames of `tmp` into `c`, header blocks passed through `fix`; with
/// `tcp` = (time, client, server) over a TCP connection opened then (Vias say TCP).
fn replay(c: &mut Cap, tmp: Cap, fix: &dyn Fn(String) -> String, tcp: Option<(f64, &str, &str)>) {
    let marks = tmp.marks.clone();
    let pk = tmp.w.finish();
    if let Some((t, client, server)) = tcp {
        c.w.tcp_open(ns(t), sa(client), sa(server));
    }
    let tcp = tcp.is_some();
    for p in pk {
        // Re-parse our own frame: Ethernet(14) + IPv4(20) + UDP(8).
        let Some(l4) = p.data.get(14 + 20..) else {
            continue;
        };
        let src = SocketAddr::new(
            std::net::IpAddr::from([p.data[26], p.data[27], p.data[28], p.data[29]]),
            u16::from_be_bytes([l4[0], l4[1]]),
        );
        let dst = SocketAddr::new(
            std::net::IpAddr::from([p.data[30], p.data[31], p.data[32], p.data[33]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        );
        let text = String::from_utf8_lossy(&l4[8..]).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut head = fix(head.to_string());
        if tcp {
            head = head.replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        }
        let msg = format!("{head}\r\n\r\n{body}");
        if tcp {
            c.w.tcp_send(p.ts_ns, src, dst, &[msg.as_bytes()]);
        } else {
            c.w.udp(0, p.ts_ns, src, dst, msg.as_bytes());
        }
    }
    c.marks.extend(marks);
}

// ---------------------------------------------------------------------------------------
// The tests

fn run_cases(cases: Vec<Case>, must_fire: bool) {
    let start = std::time::Instant::now();
    let mut failures = Vec::new();
    for case in cases {
        let out = (case.build)().run();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if must_fire {
                (case.check)(&out);
                assert!(!out.of(case.id).is_empty(), "{} did not fire", case.id);
            } else {
                let hits = out.of(case.id);
                let info_ok = case.id == "alg.rewrite-inconsistent";
                assert!(
                    hits.is_empty()
                        || (info_ok && hits.iter().all(|f| f.severity == Severity::Info)),
                    "{} fired on its near-miss: {:?}",
                    case.id,
                    hits.iter().map(|f| &f.summary).collect::<Vec<_>>()
                );
                (case.check)(&out);
            }
        }));
        if let Err(e) = res {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", case.id));
        }
        assert!(start.elapsed().as_secs() < 120, "rule tests are too slow");
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_fires_on_its_capture() {
    run_cases(firing(), true);
}

#[test]
fn no_rule_fires_on_its_near_miss() {
    run_cases(near_misses(), false);
}

#[test]
fn every_registry_rule_has_a_firing_and_a_near_miss_case() {
    let f: Vec<&str> = firing().iter().map(|c| c.id).collect();
    let n: Vec<&str> = near_misses().iter().map(|c| c.id).collect();
    let mut missing = Vec::new();
    for r in sipscope::rules::registry() {
        let id = r.meta().id;
        if !f.contains(&id) {
            missing.push(format!("{id}: no firing case"));
        }
        if !n.contains(&id) {
            missing.push(format!("{id}: no near-miss case"));
        }
    }
    for id in f.iter().chain(n.iter()) {
        assert!(
            sipscope::rules::registry()
                .iter()
                .any(|r| r.meta().id == *id),
            "case for unknown rule {id}"
        );
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn policy_rules_need_a_profile() {
    let mut c = trunk(|k| k.fmts = "18");
    c.profile = None;
    let out = c.run();
    assert!(out.findings.iter().all(|f| !f.rule.starts_with("policy.")));
}

#[test]
fn many_identical_failures_are_clustered_per_peer() {
    let mut c = Cap::new();
    for i in 0..20 {
        let mut k = Call::new(&format!("cl{i}"));
        k.t = f64::from(i) * 100.0;
        k.code = 503;
        k.reason = "Service Unavailable".into();
        k.emit(&mut c);
    }
    let out = c.run();
    let f = out.of("sip.call-failed");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(host_of(f[0]), host(B));
    assert_eq!(f[0].severity, Severity::Error);
    assert!(says(f[0], "20 calls") && cites(f[0], out.frame("cl0:invite")));
}

#[test]
fn example_profile_parses() {
    let p = Profile::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-trunk.toml"),
    )
    .expect("example profile");
    assert_eq!(p.transports, vec!["udp"]);
    assert_eq!(p.t38, Some(false));
    assert!(p.p_asserted_identity_required);
    assert!(p.is_trunk(&TRUNK_IP.parse().unwrap()));
}

#[test]
fn docs_rules_md_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let want = sipscope::rules::markdown();
    if std::env::var_os("SIPSCOPE_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write docs/rules.md");
        return;
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "docs/rules.md is stale: regenerate with SIPSCOPE_BLESS=1 cargo test --test rules docs_rules_md_is_up_to_date"
    );
}
