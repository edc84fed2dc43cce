//! The per-frame pipeline: reader thread → decode → reassembly → classification → state.

use super::finalise::Sink;
use super::media::{Media, StreamHasher};
use super::{Config, DecodeOn};
use crate::capture::{Batch, CaptureError, FileInfo, FrameSource, MergedReader};
use crate::correlate::{
    Accounting, Analysis, Call, CallKey, CaptureFacts, HostActivity, StreamKey, attach,
};
use crate::decode::{Datagram, Decoded, Detached, Held, L4, Reassembler, decode_frame};
use crate::rtp::RtpHeader;
use crate::sip::state::{SipPacket, SipState, message_sdp};
use crate::sip::wire::{self, StreamFrame};
use crate::types::{Anomaly, Endpoint, FiveTuple, FrameRef, Layer, Transport, Ts};
use foldhash::fast::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an analysis could not run (traffic problems are never errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("no input files given")]
    NoInput,
}

/// Shared progress counters (read by a progress bar on another thread).
#[derive(Debug, Default)]
pub struct Progress {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub calls: AtomicU64,
    pub total_bytes: AtomicU64,
}

/// An RTP-looking plain UDP packet's header and stream hash, worked out next to the decode
/// (on the reader thread in the two-stage pipeline) so the state thread, the busier one,
/// finds a known stream with one precomputed lookup.
#[derive(Clone, Copy)]
struct RtpHint {
    hdr: RtpHeader,
    hash: u64,
    src: Endpoint,
    dst: Endpoint,
    /// Where the UDP payload sits in the frame's bytes.
    payload_off: u32,
    payload_len: u32,
}

/// The hint for a decoded frame: plain UDP whose payload has RTP version 2 and a payload
/// type outside RTCP's range, with a header that parses ([`State::udp`] makes the same
/// tests, in the same order, for packets without a hint).
/// No hint on a TLS port: such packets take the full path, which decides encryption.
fn rtp_hint(
    hasher: &StreamHasher,
    tls: &PortSet,
    frame: &[u8],
    d: &Decoded<'_>,
) -> Option<RtpHint> {
    let Decoded::Ip {
        src,
        dst,
        l4: L4::Udp {
            src_port,
            dst_port,
            payload,
        },
        ..
    } = d
    else {
        return None;
    };
    if payload.first()? >> 6 != 2
        || payload.get(1).is_some_and(|b| (192..=223).contains(b))
        || tls.contains(*src_port)
        || tls.contains(*dst_port)
    {
        return None;
    }
    let hdr = crate::rtp::parse_rtp_lenient(payload)?;
    let (s, t) = (
        Endpoint::new(*src, *src_port),
        Endpoint::new(*dst, *dst_port),
    );
    let off = (payload.as_ptr() as usize)
        .checked_sub(frame.as_ptr() as usize)
        .filter(|o| o.saturating_add(payload.len()) <= frame.len())?;
    Some(RtpHint {
        hash: hasher.hash(&s, &t, hdr.ssrc),
        hdr,
        src: s,
        dst: t,
        payload_off: u32::try_from(off).ok()?,
        payload_len: u32::try_from(payload.len()).ok()?,
    })
}

/// Set of ports as a bitmap: a per-packet `contains` on the TLS port list showed in the
/// profile.
#[derive(Clone)]
struct PortSet(Box<[u64; 1024]>);

impl PortSet {
    fn new(ports: &[u16]) -> Self {
        let mut b = Box::new([0u64; 1024]);
        for &p in ports {
            if let Some(w) = b.get_mut(usize::from(p / 64)) {
                *w |= 1 << (p % 64);
            }
        }
        PortSet(b)
    }
    fn contains(&self, p: u16) -> bool {
        self.0
            .get(usize::from(p / 64))
            .is_some_and(|w| w & (1 << (p % 64)) != 0)
    }
}

/// What a frame turned out to be, for the accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Sip,
    SipKeepalive,
    Rtp,
    Rtcp,
    Stun,
    Encrypted,
    OtherUdp,
    OtherTcp,
}

/// Per-direction SIP-over-TCP framing buffer.
#[derive(Default)]
struct TcpSip {
    buf: Vec<u8>,
    /// None until the first bytes decide whether this direction carries SIP.
    is_sip: Option<bool>,
    /// Set when framing stopped at an open header block (see [`header_block_open`]): the
    /// buffer length then. Re-framing is skipped until new bytes could end the block, so
    /// a message trickled in line by line costs O(bytes), not O(segments × header bytes).
    open_headers: Option<usize>,
    /// Set when framing stopped at a message whose header block is complete: the buffer
    /// length that message needs (header block + Content-Length). Until the buffer
    /// reaches it nothing can be framed, so a body trickled in tiny segments costs
    /// O(bytes), not O(segments × header bytes).
    need: Option<usize>,
}

/// An empty line (a line terminator directly followed by another: CRLF, LF or bare CR)
/// is the only thing that can end a header block.
fn has_empty_line(b: &[u8]) -> bool {
    [b"\n\n", b"\n\r", b"\r\r"]
        .iter()
        .any(|p| memchr::memmem::find(b, *p).is_some())
}

/// After `stream_frame` said Incomplete: `Some(len)` when the buffer holds a terminated
/// start line (a terminator before the last byte, which might be half a CRLF) and no
/// empty line. Until an empty line appears or the block outgrows `MAX_HEADER_BLOCK`, the
/// answer stays Incomplete whatever else arrives (the start line was already judged;
/// header lines cannot end the block), so asking again is wasted work.
fn header_block_open(buf: &[u8]) -> Option<usize> {
    let head = buf.get(..buf.len().saturating_sub(1))?;
    (memchr::memchr2(b'\r', b'\n', head).is_some() && !has_empty_line(buf)).then_some(buf.len())
}

/// Whether the block found open at length `prev` is still open (only the new bytes, plus
/// the byte before them, can form an empty line).
fn still_open(buf: &[u8], prev: usize) -> bool {
    buf.len() <= wire::MAX_HEADER_BLOCK
        && !has_empty_line(buf.get(prev.saturating_sub(1)..).unwrap_or(&[]))
}

/// What a signalling packet was, for the per-endpoint activity table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Sip,
    Register,
    Options,
    Notify,
    Crlf,
    Stun,
}

/// Activity table cap (oldest-seen entries beyond it are not tracked; counted).
const MAX_HOSTS: usize = 100_000;

struct HostAcc {
    h: HostActivity,
    last_keepalive: Option<Ts>,
}

/// Bytes of a TCP direction's first line looked at before deciding it is not SIP.
const UNDECIDED_TCP_BYTES: usize = 2048;

/// Bytes a single TCP direction may buffer while waiting for a message to complete.
const MAX_TCP_SIP_BUFFER: usize = 1 << 20;

/// Ports well-known non-RTP dissectors own in Wireshark; its RTP heuristic never sees them.
fn port_claimed(p: u16) -> bool {
    matches!(
        p,
        53 | 67
            | 68
            | 69
            | 123
            | 137
            | 138
            | 139
            | 161
            | 162
            | 389
            | 443
            | 500
            | 514
            | 520
            | 1900
            | 3478
            | 3479
            | 4500
            | 5353
            | 5355
    )
}

fn is_stun(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] & 0xC0 == 0 && p.get(4..8) == Some(&[0x21, 0x12, 0xA4, 0x42][..])
}

/// A TLS or DTLS record header (content type 20–23, version 3.x or DTLS 254.x).
fn looks_like_tls(p: &[u8]) -> bool {
    p.len() >= 5 && (20..=23).contains(&p[0]) && (p[1] == 3 || p[1] == 254)
}

fn is_crlf_keepalive(p: &[u8]) -> bool {
    !p.is_empty() && p.len() <= 8 && p.iter().all(|&b| b == b'\r' || b == b'\n')
}

struct State<'c> {
    cfg: &'c Config,
    tls_ports: PortSet,
    sip: SipState,
    media: Media,
    /// Ordered, so the eviction victim (the smallest key) is found in O(log n): a
    /// `keys().min()` scan of a hash map made every eviction O(cap).
    tcp_sip: BTreeMap<FiveTuple, TcpSip>,
    acc: Accounting,
    anomalies: Vec<Anomaly>,
    anomaly_counts: BTreeMap<String, u64>,
    first_ts: Option<Ts>,
    last_ts: Option<Ts>,
    last_expiry: Ts,
    last_media_expiry: Ts,
    tcp_sip_evicted: u64,
    hosts: HashMap<Endpoint, HostAcc, RandomState>,
    hosts_untracked: u64,
    /// `SIPSCOPE_TRACE_FRAMES=1`: print each classified frame to stderr (debugging aid).
    trace: bool,
}

impl<'c> State<'c> {
    fn new(cfg: &'c Config) -> Self {
        State {
            cfg,
            tls_ports: PortSet::new(&cfg.tls_ports),
            sip: SipState::new(cfg.sip),
            media: Media::new(cfg.max_streams),
            tcp_sip: BTreeMap::new(),
            acc: Accounting::default(),
            anomalies: Vec::new(),
            anomaly_counts: BTreeMap::new(),
            first_ts: None,
            last_ts: None,
            last_expiry: Ts(i64::MIN),
            last_media_expiry: Ts(i64::MIN),
            tcp_sip_evicted: 0,
            hosts: HashMap::default(),
            hosts_untracked: 0,
            trace: std::env::var_os("SIPSCOPE_TRACE_FRAMES").is_some(),
        }
    }

    fn anomaly(&mut self, layer: Layer, kind: &'static str, frame: FrameRef, detail: String) {
        let n = self.anomaly_counts.entry(kind.to_string()).or_default();
        *n += 1;
        if (*n as usize) <= self.cfg.anomalies_per_kind {
            self.anomalies.push(Anomaly {
                layer,
                kind,
                frame,
                detail,
            });
        }
    }

    /// Record a signalling packet from `ep`. STUN only counts for endpoints already known
    /// to speak SIP (it keeps their binding alive); everything else creates the entry.
    fn activity(&mut self, ep: Endpoint, frame: FrameRef, ts: Ts, act: Act, ua: Option<&str>) {
        if !self.hosts.contains_key(&ep) {
            if act == Act::Stun {
                return;
            }
            if self.hosts.len() >= MAX_HOSTS {
                self.hosts_untracked += 1;
                return;
            }
            self.hosts.insert(
                ep,
                HostAcc {
                    h: HostActivity {
                        endpoint: ep,
                        first_frame: frame,
                        first_ts: ts,
                        last_frame: frame,
                        last_ts: ts,
                        packets: 0,
                        max_gap_ms: 0.0,
                        max_gap_from: None,
                        max_gap_to: None,
                        max_gap_from_ts: None,
                        crlf_keepalives: 0,
                        options: 0,
                        stun: 0,
                        notify: 0,
                        register: 0,
                        keepalive_min_interval_s: None,
                        keepalive_max_interval_s: None,
                        user_agent: None,
                    },
                    last_keepalive: None,
                },
            );
        }
        let Some(acc) = self.hosts.get_mut(&ep) else {
            return;
        };
        let h = &mut acc.h;
        if h.packets > 0 {
            let gap = ts.ms_since(h.last_ts);
            if gap > h.max_gap_ms {
                h.max_gap_ms = gap;
                h.max_gap_from = Some(h.last_frame);
                h.max_gap_from_ts = Some(h.last_ts);
                h.max_gap_to = Some(frame);
            }
        }
        h.packets += 1;
        if ts >= h.last_ts {
            h.last_ts = ts;
            h.last_frame = frame;
        }
        if h.user_agent.is_none() {
            h.user_agent = ua.map(|u| u.chars().take(200).collect());
        }
        let keepalive = match act {
            Act::Crlf => {
                h.crlf_keepalives += 1;
                true
            }
            Act::Options => {
                h.options += 1;
                true
            }
            Act::Stun => {
                h.stun += 1;
                true
            }
            Act::Notify => {
                h.notify += 1;
                true
            }
            Act::Register => {
                h.register += 1;
                false
            }
            Act::Sip => false,
        };
        if keepalive {
            if let Some(prev) = acc.last_keepalive {
                let iv = ts.secs_since(prev);
                h.keepalive_min_interval_s =
                    Some(h.keepalive_min_interval_s.map_or(iv, |m| m.min(iv)));
                h.keepalive_max_interval_s =
                    Some(h.keepalive_max_interval_s.map_or(iv, |m| m.max(iv)));
            }
            acc.last_keepalive = Some(ts);
        }
    }

    fn count(&mut self, c: Class) {
        let a = &mut self.acc;
        match c {
            Class::Sip => a.sip += 1,
            Class::SipKeepalive => a.sip_keepalive += 1,
            Class::Rtp => a.rtp += 1,
            Class::Rtcp => a.rtcp += 1,
            Class::Stun => a.stun += 1,
            Class::Encrypted => a.encrypted += 1,
            Class::OtherUdp => a.other_udp += 1,
            Class::OtherTcp => a.other_tcp += 1,
        }
    }

    fn datagram(&mut self, d: &Datagram<'_>, hint: Option<&RtpHint>) -> Class {
        let t = &d.tuple;
        let tls_port = self.tls_ports.contains(t.src.port) || self.tls_ports.contains(t.dst.port);
        match t.transport {
            Transport::Tcp => {
                let c = self.tcp(d);
                // A TLS port carrying plain SIP is analysed; anything else there is encrypted.
                if tls_port && c == Class::OtherTcp {
                    Class::Encrypted
                } else {
                    c
                }
            }
            _ => {
                if tls_port
                    && !d.payload.is_empty()
                    && !wire::looks_like_sip(d.payload)
                    && looks_like_tls(d.payload)
                {
                    return Class::Encrypted;
                }
                self.udp(d, hint)
            }
        }
    }

    fn udp(&mut self, d: &Datagram<'_>, hint: Option<&RtpHint>) -> Class {
        let p = d.payload;
        let t = &d.tuple;
        let first = p.first().copied().unwrap_or(0);
        if first >> 6 == 2 {
            // RTP/RTCP version 2. A packet of a stream we already track is the hot path:
            // one lookup. New flows: SDP-announced endpoints first (as Wireshark's
            // conversations), then the heuristic.
            let rtcp_pt = p.get(1).is_some_and(|b| (192..=223).contains(b));
            let (hdr, hash) = match hint {
                Some(h) => (Some(h.hdr), h.hash),
                None if rtcp_pt => (None, 0),
                None => match crate::rtp::parse_rtp_lenient(p) {
                    Some(h) => (Some(h), self.media.hasher().hash(&t.src, &t.dst, h.ssrc)),
                    None => (None, 0),
                },
            };
            if let Some(h) = &hdr
                && self
                    .media
                    .update_known(d.frame, d.ts, t.src, t.dst, h, hash, p)
            {
                return Class::Rtp;
            }
            match self.media.announced_rtcp(&t.src, &t.dst) {
                Some(true) => return self.rtcp(d),
                Some(false) => {
                    if rtcp_pt {
                        return self.rtcp(d);
                    }
                    if let Some(h) = &hdr {
                        self.media.create(d.frame, d.ts, t.src, t.dst, h, p, true);
                        return Class::Rtp;
                    }
                    return Class::OtherUdp;
                }
                None => {}
            }
            if self.cfg.heuristic_rtp && !port_claimed(t.src.port) && !port_claimed(t.dst.port) {
                if crate::rtp::looks_like_rtcp(p) {
                    return self.rtcp(d);
                }
                if crate::rtp::looks_like_rtp(p)
                    && let Some(h) = crate::rtp::parse_rtp(p)
                {
                    self.media.create(d.frame, d.ts, t.src, t.dst, &h, p, false);
                    return Class::Rtp;
                }
            }
            return Class::OtherUdp;
        }
        if is_stun(p) {
            self.activity(t.src, d.frame, d.ts, Act::Stun, None);
            return Class::Stun;
        }
        if wire::looks_like_sip(p)
            && let Some(msg) = wire::parse(p)
        {
            self.sip_message(msg, d);
            return Class::Sip;
        }
        if is_crlf_keepalive(p)
            && (t.src.port == 5060 || t.dst.port == 5060 || self.hosts.contains_key(&t.src))
        {
            self.activity(t.src, d.frame, d.ts, Act::Crlf, None);
            return Class::SipKeepalive;
        }
        Class::OtherUdp
    }

    fn rtcp(&mut self, d: &Datagram<'_>) -> Class {
        if let Some(bad) = self.media.rtcp(d.frame, d.ts, d.tuple.src, d.payload) {
            self.anomaly(
                Layer::Rtcp,
                bad,
                d.frame,
                format!("frame {}: malformed RTCP ({bad})", d.frame),
            );
        }
        Class::Rtcp
    }

    fn tcp(&mut self, d: &Datagram<'_>) -> Class {
        let key = d.tuple;
        let closing = d.tcp.is_some_and(|c| c.fin || c.rst);
        let gap = d.tcp.is_some_and(|c| c.gap_before);
        if !self.tcp_sip.contains_key(&key) {
            if d.payload.is_empty() {
                return Class::OtherTcp;
            }
            if self.tcp_sip.len() >= self.cfg.reassembly.max_tcp_streams {
                // Drop an arbitrary-but-deterministic victim: the smallest key.
                if let Some(k) = self.tcp_sip.keys().next().copied() {
                    self.tcp_sip.remove(&k);
                    self.tcp_sip_evicted += 1;
                }
            }
            self.tcp_sip.insert(key, TcpSip::default());
        }
        let Some(mut st) = self.tcp_sip.remove(&key) else {
            return Class::OtherTcp;
        };
        if gap {
            st.buf.clear();
            st.open_headers = None;
            st.need = None;
            self.anomaly(
                Layer::Tcp,
                "tcp.gap",
                d.frame,
                format!(
                    "frame {}: bytes missing in TCP stream {} → {}",
                    d.frame, key.src, key.dst
                ),
            );
        }
        // Decide whether this direction carries SIP from its first complete line, not
        // its first segment: a request line split over tiny segments must still be seen
        // (else splitting would hide a stream from the analysis).
        let mut appended = false;
        if st.is_sip.is_none() && !d.payload.is_empty() {
            st.buf.extend_from_slice(d.payload);
            appended = true;
            let start = st.buf.iter().position(|b| *b != b'\r' && *b != b'\n');
            let decided = match start {
                None => None,
                Some(i) => {
                    let rest = &st.buf[i..];
                    let line_done = memchr::memchr(b'\n', rest).is_some();
                    if wire::looks_like_sip(rest) {
                        Some(true)
                    } else if line_done
                        || rest.len() >= UNDECIDED_TCP_BYTES
                        || !rest
                            .iter()
                            .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r')
                    {
                        Some(false)
                    } else {
                        None
                    }
                }
            };
            st.is_sip = decided;
            if decided == Some(false) {
                st.buf.clear();
            }
        }
        let class = if st.is_sip == Some(true) {
            if !appended {
                st.buf.extend_from_slice(d.payload);
            }
            let mut any_msg = false;
            let mut any_ka = false;
            let mut guard = 0;
            // Still Incomplete for certain: skip framing.
            let headers_open = st
                .open_headers
                .is_some_and(|prev| still_open(&st.buf, prev));
            let body_short = st.need.is_some_and(|n| st.buf.len() < n);
            let skip = headers_open || body_short;
            // Checked up to here: the next segment's check starts at its own bytes.
            st.open_headers = headers_open.then_some(st.buf.len());
            if !body_short {
                st.need = None;
            }
            loop {
                guard += 1;
                if skip || guard > 10_000 || st.buf.is_empty() {
                    break;
                }
                let (frame, need) = wire::stream_frame_need(&st.buf);
                match frame {
                    StreamFrame::Complete(n) => {
                        let n = n.min(st.buf.len()).max(1);
                        if let Some(msg) = wire::parse(&st.buf[..n]) {
                            self.sip_message(msg, d);
                            any_msg = true;
                        }
                        st.buf.drain(..n);
                    }
                    StreamFrame::Keepalive(n) => {
                        any_ka = true;
                        self.activity(d.tuple.src, d.frame, d.ts, Act::Crlf, None);
                        st.buf.drain(..n.min(st.buf.len()).max(1));
                    }
                    StreamFrame::Garbage(n) => {
                        st.buf.drain(..n.min(st.buf.len()).max(1));
                    }
                    StreamFrame::Incomplete => {
                        st.open_headers = header_block_open(&st.buf);
                        st.need = need;
                        break;
                    }
                }
            }
            if st.buf.len() > MAX_TCP_SIP_BUFFER {
                self.anomaly(
                    Layer::Sip,
                    "sip.tcp_buffer_overflow",
                    d.frame,
                    format!(
                        "frame {}: {} bytes without a complete SIP message",
                        d.frame,
                        st.buf.len()
                    ),
                );
                st.buf.clear();
                st.open_headers = None;
                st.need = None;
            }
            if any_msg || !st.buf.is_empty() {
                Class::Sip
            } else if any_ka {
                Class::SipKeepalive
            } else {
                Class::OtherTcp
            }
        } else {
            Class::OtherTcp
        };
        if !closing {
            self.tcp_sip.insert(key, st);
        }
        class
    }

    fn sip_message(&mut self, msg: wire::SipMessage, d: &Datagram<'_>) {
        for a in &msg.anomalies {
            let detail = format!("frame {}: {}", d.frame, a.detail);
            self.anomaly(Layer::Sip, a.kind, d.frame, detail);
        }
        // Parsed once: announced here, and handed to the SIP state with the message.
        let sdp = message_sdp(&msg);
        if let Some(s) = &sdp {
            self.media.announce(s, d.ts);
        }
        let act = match msg.method() {
            Some(wire::Method::Register) => Act::Register,
            Some(wire::Method::Options) => Act::Options,
            Some(wire::Method::Notify) => Act::Notify,
            _ => Act::Sip,
        };
        let ua = msg
            .header_value(wire::HeaderName::UserAgent)
            .or_else(|| msg.header_value(wire::HeaderName::Server))
            .map(|u| u.into_owned());
        self.activity(d.tuple.src, d.frame, d.ts, act, ua.as_deref());
        let size = msg.raw.len();
        let msg = Arc::new(msg);
        self.sip.on_message(&SipPacket {
            msg: &msg,
            frame: d.frame,
            ts: d.ts,
            tuple: d.tuple,
            size,
            fragmented: d.fragments.is_some(),
            sdp: sdp.as_ref(),
        });
    }
}

/// The reassembler beside the rest of the state, so its callback can borrow the rest.
struct Pipeline<'c> {
    reasm: Reassembler,
    st: State<'c>,
    /// Streaming finalisation: units leave for the caller's sink as the clock passes.
    fin: Option<super::finalise::Finaliser<'c>>,
}

impl Pipeline<'_> {
    /// One frame: the fast path for a packet of a known RTP stream, else the full path.
    fn frame<'a>(
        &mut self,
        id: FrameRef,
        ts: Ts,
        data: &'a [u8],
        hint: Option<&RtpHint>,
        decoded: impl FnOnce() -> Decoded<'a>,
    ) {
        self.begin(ts);
        if let Some(h) = hint
            && self.known_rtp(id, ts, data, h)
        {
            return;
        }
        self.classify(id, ts, decoded(), hint);
    }

    /// Decode every frame of `b` here, work out its hint and analyse it.
    fn decode_and_feed(&mut self, b: &Batch) {
        for f in b.iter() {
            let d = decode_frame(f.link, f.data);
            let hint = rtp_hint(self.st.media.hasher(), &self.st.tls_ports, f.data, &d);
            self.frame(f.id, f.ts, f.data, hint.as_ref(), move || d);
        }
    }

    /// A packet of a stream already tracked, straight from its hint (what [`State::udp`]
    /// would do with it, minus the classification it would redo); `false` when the
    /// packet needs the full path.
    fn known_rtp(&mut self, id: FrameRef, ts: Ts, data: &[u8], h: &RtpHint) -> bool {
        let st = &mut self.st;
        let off = h.payload_off as usize;
        let Some(p) = data.get(off..off.saturating_add(h.payload_len as usize)) else {
            return false;
        };
        if !st
            .media
            .update_known(id, ts, h.src, h.dst, &h.hdr, h.hash, p)
        {
            return false;
        }
        if st.trace {
            eprintln!("frame {id}: {:?}", Class::Rtp);
        }
        st.count(Class::Rtp);
        true
    }

    /// Counters and capture-clock expiry every frame goes through first.
    fn begin(&mut self, ts: Ts) {
        self.st.acc.frames += 1;
        if self.st.first_ts.is_none() {
            self.st.first_ts = Some(ts);
        }
        if self.st.last_ts.is_none_or(|l| ts > l) {
            self.st.last_ts = Some(ts);
        }
        // Expire on the capture clock, at most once per capture second.
        if ts.0 > self.st.last_expiry.0.saturating_add(Ts::NS_PER_SEC) {
            self.st.last_expiry = ts;
            self.reasm.expire(ts);
            self.st.sip.expire(ts);
            self.st.media.expire_sr_times(ts);
            if let Some(f) = self.fin.as_mut() {
                f.tick(ts, self.st.first_ts, &mut self.st.sip, &mut self.st.media);
            }
            // Streams idle out over an hour: a scan of the stream table once a capture
            // minute is plenty and keeps the cost flat with 100,000 streams.
            if ts.0
                > self
                    .st
                    .last_media_expiry
                    .0
                    .saturating_add(60 * Ts::NS_PER_SEC)
            {
                self.st.last_media_expiry = ts;
                self.st.media.expire(ts, self.st.cfg.stream_idle_timeout_ms);
            }
        }
    }

    /// Everything after [`Pipeline::begin`] for a frame off the fast path.
    fn classify(&mut self, id: FrameRef, ts: Ts, decoded: Decoded<'_>, hint: Option<&RtpHint>) {
        match decoded {
            Decoded::NonIp { .. } => {
                self.st.acc.non_ip += 1;
                return;
            }
            Decoded::UnsupportedLink { .. } => {
                self.st.acc.unsupported_link += 1;
                return;
            }
            Decoded::Malformed { layer, reason } => {
                *self.st.acc.malformed.entry(reason.to_string()).or_default() += 1;
                self.st
                    .anomaly(layer, reason, id, format!("frame {id}: {reason}"));
                return;
            }
            Decoded::Ip {
                l4: L4::Icmp { .. },
                ..
            } => {
                self.st.acc.icmp += 1;
                return;
            }
            Decoded::Ip {
                l4: L4::Other { .. },
                ..
            } => {
                self.st.acc.other_ip += 1;
                return;
            }
            // Plain UDP needs no reassembly: the hot path (RTP) skips the reassembler.
            Decoded::Ip {
                src,
                dst,
                l4:
                    L4::Udp {
                        src_port,
                        dst_port,
                        payload,
                    },
                ..
            } => {
                let d = Datagram {
                    frame: id,
                    ts,
                    tuple: FiveTuple {
                        src: Endpoint::new(src, src_port),
                        dst: Endpoint::new(dst, dst_port),
                        transport: Transport::Udp,
                    },
                    payload,
                    fragments: None,
                    tcp: None,
                };
                let c = self.st.datagram(&d, hint);
                if self.st.trace {
                    eprintln!("frame {id}: {c:?}");
                }
                self.st.count(c);
                return;
            }
            _ => {}
        }
        let mut classes: smallvec::SmallVec<[Class; 2]> = smallvec::SmallVec::new();
        let mut completed_fragments = 0u16;
        // The reassembler owns its buffers; datagrams are handled inside the callback.
        let Pipeline { reasm, st, .. } = self;
        let held = reasm.push(id, ts, decoded, &mut |d: Datagram<'_>| {
            if let Some((_, _, n)) = d.fragments {
                completed_fragments = completed_fragments.saturating_add(n);
            }
            let c = st.datagram(&d, None);
            classes.push(c);
        });
        let st = &mut self.st;
        if completed_fragments > 1 {
            // This frame completed a packet: its earlier fragments were counted as pending.
            let earlier = (completed_fragments - 1) as u64;
            st.acc.ip_fragment += earlier;
            st.acc.ip_fragment_incomplete = st.acc.ip_fragment_incomplete.saturating_sub(earlier);
        }
        match (classes.first(), held) {
            (Some(c), _) => {
                if st.trace {
                    eprintln!("frame {id}: {c:?}");
                }
                st.count(*c)
            }
            (None, Some(Held::FragmentPending)) => st.acc.ip_fragment_incomplete += 1,
            (None, Some(Held::TcpControl)) => st.acc.tcp_control += 1,
            (None, Some(Held::TcpRetransmission)) => st.acc.tcp_retransmission += 1,
            (None, Some(Held::TcpOutOfOrder)) => st.acc.tcp_out_of_order += 1,
            (None, None) => match decoded {
                Decoded::Ip {
                    l4: L4::Tcp { .. }, ..
                } => st.acc.tcp_control += 1,
                Decoded::Fragment(_) => st.acc.ip_fragment_incomplete += 1,
                _ => st.acc.other_udp += 1,
            },
        }
    }
}

/// Analyse capture files (merged by time when several) into an [`Analysis`].
pub fn analyze_paths(
    paths: &[String],
    cfg: &Config,
    progress: Option<&Progress>,
) -> Result<Analysis, EngineError> {
    if paths.is_empty() {
        return Err(EngineError::NoInput);
    }
    let reader = MergedReader::open(paths)?;
    analyze_source(reader, cfg, progress)
}

/// Analyse frames from any source (files, or a live interface with the `live` feature).
pub fn analyze_source<S: FrameSource>(
    reader: S,
    cfg: &Config,
    progress: Option<&Progress>,
) -> Result<Analysis, EngineError> {
    run(reader, cfg, progress, None)
}

/// [`analyze_paths`], finalising as the capture clock passes (`engine/finalise.rs`):
/// each call with its streams, and each stream no call claimed, goes to `sink` as a
/// one-call [`Analysis`] once final, and is released. Returns the rest of the model
/// (capture facts, registrations, out-of-dialog requests, signalling hosts, `sip,stat`),
/// with no calls or streams.
pub fn analyze_paths_streamed<'a>(
    paths: &[String],
    cfg: &'a Config,
    progress: Option<&Progress>,
    sink: &'a mut Sink<'a>,
) -> Result<Analysis, EngineError> {
    if paths.is_empty() {
        return Err(EngineError::NoInput);
    }
    let reader = MergedReader::open(paths)?;
    analyze_source_streamed(reader, cfg, progress, sink)
}

/// [`analyze_source`] with streaming finalisation (see [`analyze_paths_streamed`]).
pub fn analyze_source_streamed<'a, S: FrameSource>(
    reader: S,
    cfg: &'a Config,
    progress: Option<&Progress>,
    sink: &'a mut Sink<'a>,
) -> Result<Analysis, EngineError> {
    run(
        reader,
        cfg,
        progress,
        Some(super::finalise::Finaliser::new(sink)),
    )
}

fn run<'c, S: FrameSource>(
    mut reader: S,
    cfg: &'c Config,
    progress: Option<&Progress>,
    fin: Option<super::finalise::Finaliser<'c>>,
) -> Result<Analysis, EngineError> {
    if let (Some(p), Some(t)) = (progress, reader.total_bytes()) {
        p.total_bytes.store(t, Ordering::Relaxed);
    }
    let mut state = Pipeline {
        reasm: Reassembler::new(cfg.reassembly),
        st: State::new(cfg),
        fin,
    };
    let batch_frames = cfg.batch_frames.max(1);
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    };

    if threads <= 1 {
        // One thread: read, decode and analyse in turn.
        let mut b = Batch::new();
        loop {
            b.clear();
            let more = reader.next_batch(&mut b, batch_frames)?;
            state.decode_and_feed(&b);
            if let Some(p) = progress {
                p.bytes.store(reader.bytes_read(), Ordering::Relaxed);
                p.frames.store(state.st.acc.frames, Ordering::Relaxed);
                p.calls
                    .store(state.st.sip.calls_seen() as u64, Ordering::Relaxed);
            }
            if !more && b.is_empty() {
                break;
            }
        }
        let infos = reader.infos();
        return Ok(build(state, infos, false));
    }

    // Two stages: the reader thread reads and decodes each batch (the stateless half), the
    // calling thread owns all state. Batches and their decodes are recycled through a
    // return channel, so the steady state allocates nothing.
    // Per frame either the RTP hint (the main thread re-decodes in the rare case it needs
    // the full path: a new stream) or the detached decode.
    type Work = (Batch, Vec<Result<RtpHint, Detached>>);
    let hasher = state.st.media.hasher().clone();
    let tls = state.st.tls_ports.clone();
    let decode_on = cfg.decode_on;
    let (full_tx, full_rx) = crossbeam_channel::bounded::<Work>(4);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Work>(6);
    for _ in 0..5 {
        let _ = empty_tx.send((Batch::new(), Vec::new()));
    }
    let infos: Vec<FileInfo> = std::thread::scope(|scope| -> Result<Vec<FileInfo>, EngineError> {
        let reader_thread = std::thread::Builder::new()
            .name("sipscope-read".into())
            .spawn_scoped(scope, move || -> Result<Vec<FileInfo>, CaptureError> {
                while let Ok((mut b, mut dec)) = empty_rx.recv() {
                    b.clear();
                    dec.clear();
                    let more = reader.next_batch(&mut b, batch_frames)?;
                    // Balance the two threads: an empty queue means the analysis thread
                    // is waiting for us, so this batch goes over undecoded and it decodes
                    // the batch itself (as `--threads 1` does; the results are the same).
                    // Reading is memory-bound (the kernel's copy out of the page cache and
                    // ours into the batch), so which thread is the busier one depends on
                    // the traffic; measured on the benchmark capture, the reader was.
                    let decode_here = match decode_on {
                        DecodeOn::Balanced => !full_tx.is_empty(),
                        DecodeOn::Reader => true,
                        DecodeOn::Analysis => false,
                    };
                    if decode_here {
                        dec.extend(b.iter().map(|f| {
                            let d = decode_frame(f.link, f.data);
                            rtp_hint(&hasher, &tls, f.data, &d).ok_or_else(|| d.detach(f.data))
                        }));
                    }
                    if let Some(p) = progress {
                        p.bytes.store(reader.bytes_read(), Ordering::Relaxed);
                    }
                    if b.is_empty() && !more {
                        break;
                    }
                    if full_tx.send((b, dec)).is_err() {
                        break;
                    }
                    if !more {
                        break;
                    }
                }
                drop(full_tx);
                Ok(reader.infos())
            });
        let reader_thread = match reader_thread {
            Ok(t) => t,
            Err(e) => {
                return Err(EngineError::Capture(CaptureError::Io {
                    path: "reader thread".into(),
                    error: e,
                }));
            }
        };
        for (batch, dec) in full_rx.iter() {
            if dec.len() != batch.len() {
                state.decode_and_feed(&batch);
            }
            for (f, d) in batch.iter().zip(dec.iter()) {
                match d {
                    Ok(hint) => state.frame(f.id, f.ts, f.data, Some(hint), || {
                        decode_frame(f.link, f.data)
                    }),
                    Err(d) => state.frame(f.id, f.ts, f.data, None, || d.attach(f.data)),
                }
            }
            if let Some(p) = progress {
                p.frames.store(state.st.acc.frames, Ordering::Relaxed);
                p.calls
                    .store(state.st.sip.calls_seen() as u64, Ordering::Relaxed);
            }
            let _ = empty_tx.send((batch, dec));
        }
        drop(empty_tx);
        match reader_thread.join() {
            Ok(r) => Ok(r?),
            Err(_) => Ok(Vec::new()),
        }
    })?;
    Ok(build(state, infos, true))
}

fn build(state: Pipeline<'_>, files: Vec<FileInfo>, parallel: bool) -> Analysis {
    let reasm = state.reasm;
    let fin = state.fin;
    let State {
        sip,
        media,
        mut acc,
        anomalies,
        mut anomaly_counts,
        first_ts,
        last_ts,
        tcp_sip_evicted,
        hosts,
        hosts_untracked,
        ..
    } = state.st;
    let mut hosts: Vec<HostActivity> = hosts.into_values().map(|h| h.h).collect();
    hosts.sort_by_key(|a| a.endpoint);
    let media_evicted = media.evicted;
    // The two finalisations are independent (each ~1 % of a run): side by side when the
    // run may use a second thread.
    let (mut streams, sip_out) = if parallel {
        std::thread::scope(|s| {
            let h = s.spawn(move || media.finish());
            let sip_out = sip.finish();
            let streams = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (streams, sip_out)
        })
    } else {
        (media.finish(), sip.finish())
    };
    let reassembly = reasm.stats().clone();
    let mut anomalies = anomalies;
    for a in &sip_out.anomalies {
        *anomaly_counts.entry(a.kind.to_string()).or_default() += 1;
        anomalies.push(a.clone());
    }
    anomalies.sort_by(|a, b| (a.frame, a.kind).cmp(&(b.frame, b.kind)));
    // Frames still marked pending at the end are incomplete; nothing else to move.
    let _ = &mut acc;

    let mut registrations = sip_out.registrations;
    let mut out_of_dialog = sip_out.out_of_dialog;
    let mut calls: Vec<Call> = Vec::new();
    if let Some(mut fin) = fin {
        // Streaming: what is left leaves as units now; the model keeps no calls or
        // streams. The finaliser drained some registrations and out-of-dialog requests
        // on the way: merged in the order `SipState::finish` gives.
        fin.finish(
            sip_out.calls,
            std::mem::take(&mut streams),
            first_ts,
            last_ts,
        );
        registrations.append(&mut fin.regs);
        out_of_dialog.append(&mut fin.ood);
        crate::sip::state::report_order(&mut registrations, &mut out_of_dialog);
    } else {
        let keys: Vec<StreamKey> = streams.iter().map(StreamKey::of).collect();
        let call_keys: Vec<CallKey> = sip_out.calls.iter().map(CallKey::of).collect();
        let attached = attach(&call_keys, &keys);
        calls = sip_out
            .calls
            .into_iter()
            .map(|sip| Call {
                sip,
                streams: Vec::new(),
            })
            .collect();
        for (i, (s, a)) in streams.iter_mut().zip(attached).enumerate() {
            if let Some((ci, how)) = a {
                s.call = Some(ci);
                s.association = Some(how);
                if let Some(c) = calls.get_mut(ci) {
                    c.streams.push(i);
                }
            }
        }
    }
    let mut limits_hit: Vec<(String, u64)> = sip_out
        .evicted
        .iter()
        .map(|(t, n)| (t.to_string(), *n))
        .collect();
    if media_evicted > 0 {
        limits_hit.push(("streams".into(), media_evicted));
    }
    if hosts_untracked > 0 {
        limits_hit.push(("signalling_hosts".into(), hosts_untracked));
    }
    if tcp_sip_evicted > 0 {
        limits_hit.push(("tcp_sip_streams".into(), tcp_sip_evicted));
    }
    if reassembly.fragment_frames_evicted > 0 {
        limits_hit.push(("ip_fragments".into(), reassembly.fragment_frames_evicted));
    }
    if reassembly.tcp_streams_evicted > 0 {
        limits_hit.push(("tcp_streams".into(), reassembly.tcp_streams_evicted));
    }
    limits_hit.retain(|(_, n)| *n > 0);
    Analysis {
        capture: CaptureFacts {
            files,
            first_ts,
            last_ts,
            accounting: acc,
            reassembly,
            limits_hit,
            anomaly_counts,
        },
        calls,
        registrations,
        out_of_dialog,
        streams,
        hosts,
        sources: sip_out.sources,
        sip_stats: sip_out.stats,
        anomalies,
    }
}
