//! Scenarios: complete calls ([`CallScenario`]), registrations ([`RegisterScenario`]),
//! OPTIONS and CRLF keepalives, emitted onto a [`Wire`] (which turns datagrams and TCP
//! segments into link-layer frames) while a [`Truth`] records what an analyzer must find.
//! The truth is derived from the scenario parameters as the scenario runs (how many SIP
//! messages it sent, which were retransmissions, what the call outcome was, what each RTP
//! plan delivered), never by analysing the output.

use super::Rng;
use super::builder::Packet;
use super::media::{self, DtmfEvent, Impairments, MediaPkt, ReportBlock, RtpSpec, StreamTruth};
use super::packet::{self, Ipv4Hdr, Link, tcpflags};
use super::siptext::{Auth, Codec, NameAddr, PCMU, Sdp, SdpMedia, SipMsg, Via, reason_phrase};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};

/// Link layer of one capture interface; MACs are derived from the IP addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Ethernet { vlans: Vec<u16> },
    Sll,
    Raw,
}

impl LinkKind {
    pub fn link(&self, src: IpAddr, dst: IpAddr) -> Link {
        match self {
            LinkKind::Ethernet { vlans } => Link::Ethernet {
                src: packet::mac_for(src),
                dst: packet::mac_for(dst),
                vlans: vlans.clone(),
            },
            LinkKind::Sll => Link::Sll {
                pkttype: 0,
                addr: packet::mac_for(src),
            },
            LinkKind::Raw => Link::Raw,
        }
    }
    pub fn linktype(&self) -> u32 {
        self.link(IpAddr::from([0, 0, 0, 0]), IpAddr::from([0, 0, 0, 0]))
            .linktype()
    }
}

/// The capture point: frames go here, in any order; [`Wire::finish`] sorts them by time.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Link layer per interface (index = pcapng interface id).
    pub links: Vec<LinkKind>,
    /// Interface SIP frames are captured on.
    pub sip_iface: u32,
    /// Interface RTP/RTCP frames are captured on.
    pub media_iface: u32,
    /// UDP datagrams whose IP packet exceeds this are fragmented.
    pub mtu: usize,
    /// Delivery order of the fragments of a fragmented datagram (indices; see
    /// [`packet::permute`]).
    pub frag_order: Vec<usize>,
    pub packets: Vec<Packet>,
    ident: u16,
    tcp_next: Vec<((SocketAddr, SocketAddr), u32)>,
}

impl Wire {
    pub fn new(link: LinkKind) -> Self {
        Wire {
            links: vec![link],
            sip_iface: 0,
            media_iface: 0,
            mtu: 1500,
            frag_order: Vec::new(),
            packets: Vec::new(),
            ident: 0x1000,
            tcp_next: Vec::new(),
        }
    }

    fn push_ip(&mut self, iface: u32, t: i64, src: IpAddr, dst: IpAddr, ip: &[u8]) {
        let kind = self
            .links
            .get(iface as usize)
            .or(self.links.first())
            .cloned()
            .unwrap_or(LinkKind::Raw);
        let mut p = Packet::new(t, kind.link(src, dst).wrap(ip));
        p.iface = iface;
        self.packets.push(p);
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// One UDP datagram, fragmented when its IP packet is larger than the MTU.
    pub fn udp(&mut self, iface: u32, t: i64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let id = self.next_ident();
        let l4 = packet::udp(src.ip(), src.port(), dst.ip(), dst.port(), payload);
        let fits = l4.len() + 40 <= self.mtu || (src.is_ipv4() && l4.len() + 20 <= self.mtu);
        if fits {
            let ip = packet::ip(src.ip(), dst.ip(), packet::PROTO_UDP, id, &l4);
            self.push_ip(iface, t, src.ip(), dst.ip(), &ip);
            return;
        }
        let frags = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                packet::fragment_ipv4(&Ipv4Hdr::new(s, d, packet::PROTO_UDP, id), &l4, self.mtu)
            }
            _ => {
                let s6 = match src.ip() {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                let d6 = match dst.ip() {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                packet::fragment_ipv6(s6, d6, packet::PROTO_UDP, u32::from(id), &l4, self.mtu)
            }
        };
        let order = self.frag_order.clone();
        for (i, f) in packet::permute(&frags, &order).into_iter().enumerate() {
            self.push_ip(iface, t + i as i64 * 20_000, src.ip(), dst.ip(), &f);
        }
    }

    fn seq(&mut self, a: SocketAddr, b: SocketAddr) -> u32 {
        if let Some(e) = self.tcp_next.iter().find(|e| e.0 == (a, b)) {
            return e.1;
        }
        let isn = super::mix64(u64::from(a.port()) << 16 | u64::from(b.port()) ^ 0x7C9) as u32;
        self.tcp_next.push(((a, b), isn));
        isn
    }

    fn set_seq(&mut self, a: SocketAddr, b: SocketAddr, v: u32) {
        if let Some(e) = self.tcp_next.iter_mut().find(|e| e.0 == (a, b)) {
            e.1 = v;
        } else {
            self.tcp_next.push(((a, b), v));
        }
    }

    fn tcp_raw(
        &mut self,
        iface: u32,
        t: i64,
        src: SocketAddr,
        dst: SocketAddr,
        flags: u8,
        payload: &[u8],
    ) {
        let seq = self.seq(src, dst);
        let ack = if flags & tcpflags::ACK != 0 {
            self.seq(dst, src)
        } else {
            0
        };
        let seg = packet::tcp(
            src.ip(),
            src.port(),
            dst.ip(),
            dst.port(),
            seq,
            ack,
            flags,
            64240,
            payload,
        );
        let id = self.next_ident();
        let ip = packet::ip(src.ip(), dst.ip(), packet::PROTO_TCP, id, &seg);
        self.push_ip(iface, t, src.ip(), dst.ip(), &ip);
        let adv = payload.len() as u32 + u32::from(flags & (tcpflags::SYN | tcpflags::FIN) != 0);
        self.set_seq(src, dst, seq.wrapping_add(adv));
    }

    /// Three-way handshake starting at `t`; returns the time it completes.
    pub fn tcp_open(&mut self, t: i64, client: SocketAddr, server: SocketAddr) -> i64 {
        let i = self.sip_iface;
        self.tcp_raw(i, t, client, server, tcpflags::SYN, &[]);
        self.tcp_raw(
            i,
            t + 300_000,
            server,
            client,
            tcpflags::SYN | tcpflags::ACK,
            &[],
        );
        self.tcp_raw(i, t + 600_000, client, server, tcpflags::ACK, &[]);
        t + 600_000
    }

    /// Data segments (one frame each, 100 µs apart) on an open connection.
    pub fn tcp_send(&mut self, t: i64, src: SocketAddr, dst: SocketAddr, segments: &[&[u8]]) {
        let i = self.sip_iface;
        for (k, s) in segments.iter().enumerate() {
            self.tcp_raw(
                i,
                t + k as i64 * 100_000,
                src,
                dst,
                tcpflags::PSH | tcpflags::ACK,
                s,
            );
        }
    }

    /// A pure ACK from `src` (acknowledging everything `dst` sent).
    pub fn tcp_ack(&mut self, t: i64, src: SocketAddr, dst: SocketAddr) {
        let i = self.sip_iface;
        self.tcp_raw(i, t, src, dst, tcpflags::ACK, &[]);
    }

    /// Frames sorted by time (stable, so simultaneous frames keep emission order).
    pub fn finish(mut self) -> Vec<Packet> {
        self.packets.sort_by_key(|p| p.ts_ns);
        self.packets
    }
}

/// One call's expected outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTruth {
    pub call_id: String,
    /// Wireshark VoIP-calls vocabulary: COMPLETED, REJECTED, CANCELLED, CALL SETUP, ...
    pub state: &'static str,
    pub final_code: Option<u16>,
    pub final_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegTruth {
    pub aor: String,
    /// "registered" or "unregistered" at the end of the capture.
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOnWire {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub t: StreamTruth,
}

/// What the analyzer must find in a capture, accumulated by the scenarios.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Truth {
    pub sip_messages: u32,
    pub sip_resent: u32,
    pub calls: Vec<CallTruth>,
    pub registrations: Vec<RegTruth>,
    pub streams: Vec<StreamOnWire>,
    /// Whether `sequence_errors` of the streams is stated in the JSON.
    pub state_sequence_errors: bool,
}

impl Truth {
    /// The fixture `expect.json` shape (see `fixtures/README.md`).
    pub fn to_json(&self, description: &str) -> Value {
        let mut v = serde_json::Map::new();
        v.insert("description".into(), json!(description));
        v.insert("sip_messages".into(), json!(self.sip_messages));
        v.insert("sip_resent".into(), json!(self.sip_resent));
        if !self.calls.is_empty() {
            let calls: Vec<Value> = self
                .calls
                .iter()
                .map(|c| {
                    let mut m = serde_json::Map::new();
                    m.insert("call_id".into(), json!(c.call_id));
                    m.insert("state".into(), json!(c.state));
                    if let Some(code) = c.final_code {
                        m.insert("final_code".into(), json!(code));
                    }
                    if let Some(r) = &c.final_reason {
                        m.insert("final_reason".into(), json!(r));
                    }
                    Value::Object(m)
                })
                .collect();
            v.insert("calls".into(), Value::Array(calls));
        }
        if !self.registrations.is_empty() {
            let r: Vec<Value> = self
                .registrations
                .iter()
                .map(|r| json!({"aor": r.aor, "state": r.state}))
                .collect();
            v.insert("registrations".into(), Value::Array(r));
        }
        if !self.streams.is_empty() {
            let s: Vec<Value> = self
                .streams
                .iter()
                .map(|s| {
                    let mut m = serde_json::Map::new();
                    m.insert("ssrc".into(), json!(format!("0x{:08X}", s.t.ssrc)));
                    m.insert("src".into(), json!(s.src.to_string()));
                    m.insert("dst".into(), json!(s.dst.to_string()));
                    m.insert("packets".into(), json!(s.t.packets));
                    m.insert("lost".into(), json!(s.t.lost));
                    m.insert("duplicates".into(), json!(s.t.duplicates));
                    if self.state_sequence_errors {
                        m.insert("sequence_errors".into(), json!(s.t.sequence_errors));
                    }
                    if !s.t.dtmf.is_empty() {
                        let d: Vec<String> = s.t.dtmf.iter().map(|c| c.to_string()).collect();
                        m.insert("dtmf".into(), json!(d));
                    }
                    Value::Object(m)
                })
                .collect();
            v.insert("streams".into(), Value::Array(s));
        }
        Value::Object(v)
    }
}

/// Address translation in front of an endpoint: what it believes (and writes into Via,
/// Contact and SDP) versus what the capture point sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    pub private_ip: IpAddr,
    pub private_sip_port: u16,
    pub private_rtp_port: u16,
}

/// A SIP user agent. `ip`/`sip_port`/`rtp_port` are what the wire carries (the public,
/// translated values when `nat` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub user: String,
    pub domain: String,
    pub ip: IpAddr,
    pub sip_port: u16,
    pub rtp_port: u16,
    pub nat: Option<Nat>,
    pub agent: String,
}

impl Endpoint {
    pub fn new(user: &str, domain: &str, ip: IpAddr, rtp_port: u16) -> Self {
        Endpoint {
            user: user.into(),
            domain: domain.into(),
            ip,
            sip_port: 5060,
            rtp_port,
            nat: None,
            agent: format!("sipscope-synth/{user}"),
        }
    }
    pub fn wire_sip(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.sip_port)
    }
    pub fn adv_sip(&self) -> SocketAddr {
        match &self.nat {
            Some(n) => SocketAddr::new(n.private_ip, n.private_sip_port),
            None => self.wire_sip(),
        }
    }
    pub fn wire_rtp(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.rtp_port)
    }
    pub fn adv_rtp(&self) -> SocketAddr {
        match &self.nat {
            Some(n) => SocketAddr::new(n.private_ip, n.private_rtp_port),
            None => self.wire_rtp(),
        }
    }
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }
    pub fn contact(&self, transport: &str) -> String {
        if transport == "UDP" {
            format!("sip:{}@{}", self.user, self.adv_sip())
        } else {
            format!(
                "sip:{}@{};transport={}",
                self.user,
                self.adv_sip(),
                transport.to_ascii_lowercase()
            )
        }
    }
}

/// How a call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 OK, talk, BYE from the caller (or the callee).
    Answered { bye_from_callee: bool },
    /// CANCEL after ringing → 200 (CANCEL) → 487 → ACK.
    Cancelled,
    /// Any final failure response (486 Busy Here, 404, 503, or a custom phrase).
    Rejected { code: u16, reason: String },
    /// No response at all: INVITE retransmitted per RFC 3261 Timer A until Timer B (32 s).
    NoAnswer,
    /// 200 OK retransmitted (T1 doubling, capped at T2 = 4 s) because no ACK arrives; the
    /// callee gives up after 64·T1 = 32 s and sends BYE.
    NoAck,
}

/// Which RTP directions flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFlow {
    Both,
    CallerOnly,
    CalleeOnly,
    None,
}

/// SIP transport of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    /// `split_invite`: the INVITE goes out in two segments; `coalesce_provisional`: the
    /// 100 and 180 travel in one segment.
    Tcp {
        split_invite: bool,
        coalesce_provisional: bool,
    },
}

/// A complete call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallScenario {
    pub call_id: String,
    pub seed: u64,
    pub start_ns: i64,
    pub caller: Endpoint,
    pub callee: Endpoint,
    pub transport: SipTransport,
    pub outcome: Outcome,
    /// Challenge the first INVITE (Some(true) = 407 Proxy-Authenticate, Some(false) = 401).
    pub auth: Option<bool>,
    pub ring_ms: u32,
    pub talk_ms: u32,
    pub caller_codecs: Vec<Codec>,
    pub callee_codecs: Vec<Codec>,
    pub media: MediaFlow,
    /// Digits the caller sends as RFC 4733 events (one per second from 1 s into the call).
    pub dtmf: Vec<char>,
    pub rtcp: bool,
    /// RTCP report interval (RFC 3550 suggests 5 s).
    pub rtcp_interval_ms: u32,
    /// 183 Session Progress with SDP, callee media flowing before the 200.
    pub early_media: bool,
    pub caller_impair: Impairments,
    pub callee_impair: Impairments,
    pub caller_ssrc: u32,
    pub callee_ssrc: u32,
    pub caller_start_seq: u16,
    pub callee_start_seq: u16,
    /// (slot, new SSRC) for the caller's stream.
    pub caller_ssrc_change: Option<(u32, u32)>,
    /// Extra SDP attribute bytes in the INVITE (pushes it over the MTU).
    pub sdp_padding: usize,
}

impl CallScenario {
    pub fn new(
        call_id: &str,
        seed: u64,
        start_ns: i64,
        caller: Endpoint,
        callee: Endpoint,
    ) -> Self {
        let mut r = Rng::new(seed);
        CallScenario {
            call_id: call_id.into(),
            seed,
            start_ns,
            caller,
            callee,
            transport: SipTransport::Udp,
            outcome: Outcome::Answered {
                bye_from_callee: false,
            },
            auth: None,
            ring_ms: 2000,
            talk_ms: 5000,
            caller_codecs: vec![PCMU],
            callee_codecs: vec![PCMU],
            media: MediaFlow::Both,
            dtmf: Vec::new(),
            rtcp: false,
            rtcp_interval_ms: 5000,
            early_media: false,
            caller_impair: Impairments::default(),
            callee_impair: Impairments::default(),
            caller_ssrc: r.next_u32() | 1,
            callee_ssrc: r.next_u32() | 2,
            caller_start_seq: (r.next_u32() & 0x7FFF) as u16,
            callee_start_seq: (r.next_u32() & 0x7FFF) as u16,
            caller_ssrc_change: None,
            sdp_padding: 0,
        }
    }

    fn transport_name(&self) -> &'static str {
        match self.transport {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp { .. } => "TCP",
        }
    }

    /// Emits the whole call onto `w` and its expectations into `truth`.
    pub fn emit(&self, w: &mut Wire, truth: &mut Truth) {
        let mut e = CallEmitter::new(self, w);
        e.run(truth);
    }
}

const MS: i64 = 1_000_000;

struct CallEmitter<'a> {
    s: &'a CallScenario,
    w: &'a mut Wire,
    rng: Rng,
    /// Where the caller's SIP leaves from on the wire (TCP: its ephemeral port).
    caller_sip: SocketAddr,
    callee_sip: SocketAddr,
    tcp_open: bool,
}

impl<'a> CallEmitter<'a> {
    fn new(s: &'a CallScenario, w: &'a mut Wire) -> Self {
        let caller_sip = match s.transport {
            SipTransport::Udp => s.caller.wire_sip(),
            SipTransport::Tcp { .. } => {
                SocketAddr::new(s.caller.ip, 40000 + (s.seed % 20000) as u16)
            }
        };
        CallEmitter {
            s,
            w,
            rng: Rng::new(s.seed ^ 0xCA11),
            caller_sip,
            callee_sip: s.callee.wire_sip(),
            tcp_open: false,
        }
    }

    /// Sends SIP messages at `t`: over UDP one datagram each (1 ms apart); over TCP all in
    /// one segment, or split in two segments when `split`.
    fn send(
        &mut self,
        truth: &mut Truth,
        t: i64,
        from_caller: bool,
        msgs: &[&SipMsg],
        resent: bool,
        split: bool,
    ) {
        let (src, dst) = if from_caller {
            (self.caller_sip, self.callee_sip)
        } else {
            (self.callee_sip, self.caller_sip)
        };
        truth.sip_messages += msgs.len() as u32;
        if resent {
            truth.sip_resent += msgs.len() as u32;
        }
        match self.s.transport {
            SipTransport::Udp => {
                for (i, m) in msgs.iter().enumerate() {
                    let iface = self.w.sip_iface;
                    self.w.udp(iface, t + i as i64 * MS, src, dst, &m.render());
                }
            }
            SipTransport::Tcp { .. } => {
                if !self.tcp_open {
                    self.w
                        .tcp_open(t - 2 * MS, self.caller_sip, self.callee_sip);
                    self.tcp_open = true;
                }
                let mut buf = Vec::new();
                for m in msgs {
                    buf.extend_from_slice(&m.render());
                }
                if split {
                    let mid = buf.len() / 2;
                    let (a, b) = buf.split_at(mid);
                    self.w.tcp_send(t, src, dst, &[a, b]);
                } else {
                    self.w.tcp_send(t, src, dst, &[&buf]);
                }
                // the peer acknowledges the data shortly after
                self.w.tcp_ack(t + 400_000, dst, src);
            }
        }
    }

    fn offer_sdp(&mut self) -> String {
        let c = &self.s.caller;
        let mut m = SdpMedia::audio(c.adv_rtp().port(), self.s.caller_codecs.clone());
        if !self.s.dtmf.is_empty() {
            m.telephone_event = Some(101);
        }
        let mut pad = 0usize;
        let mut k = 0u32;
        while pad < self.s.sdp_padding {
            let line = format!("x-sipscope-pad:{k:04} {}", self.rng.hex(56));
            pad += line.len() + 4;
            m.extra_attrs.push(line);
            k += 1;
        }
        let id = 1000 + (self.s.seed % 100000);
        Sdp::new(&c.user, id, c.adv_rtp().ip(), vec![m]).render()
    }

    fn answer_codec(&self) -> Codec {
        let s = self.s;
        s.callee_codecs
            .iter()
            .find(|c| s.caller_codecs.iter().any(|o| o.pt == c.pt))
            .or(s.callee_codecs.first())
            .copied()
            .unwrap_or(PCMU)
    }

    fn answer_sdp(&self) -> String {
        let c = &self.s.callee;
        let mut m = SdpMedia::audio(c.adv_rtp().port(), vec![self.answer_codec()]);
        if !self.s.dtmf.is_empty() {
            m.telephone_event = Some(101);
        }
        let id = 2000 + (self.s.seed % 100000);
        Sdp::new(&c.user, id, c.adv_rtp().ip(), vec![m]).render()
    }

    fn caller_via(&mut self) -> Via {
        Via {
            transport: self.s.transport_name().into(),
            sent_by: self.s.caller.adv_sip().to_string(),
            branch: format!("z9hG4bK{}", self.rng.hex(16)),
            rport: Some(None),
            received: None,
        }
    }

    /// The callee's view of the caller's Via: rport filled in, received= when NATed.
    fn stamp_via(&self, v: &mut [Via]) {
        if let Some(top) = v.first_mut() {
            if top.rport.is_some() {
                top.rport = Some(Some(self.caller_sip.port()));
            }
            if self.s.caller.nat.is_some() {
                top.received = Some(self.caller_sip.ip().to_string());
            }
        }
    }

    fn response(&self, req: &SipMsg, code: u16, reason: &str, to_tag: Option<&str>) -> SipMsg {
        let mut r = SipMsg::response_to(req, code, reason);
        self.stamp_via(&mut r.via);
        if let Some(t) = to_tag {
            r.to.tag = Some(t.into());
        }
        r.server = Some(self.s.callee.agent.clone());
        if (200..300).contains(&code) || code == 180 || code == 183 {
            r.contact = Some((self.s.callee.contact(self.s.transport_name()), None));
        }
        r
    }

    fn run(&mut self, truth: &mut Truth) {
        let s = self.s;
        let t0 = s.start_ns;
        let tr = s.transport_name();
        let from = NameAddr {
            display: Some(s.caller.user.clone()),
            uri: s.caller.aor(),
            tag: Some(self.rng.hex(10)),
        };
        let to = NameAddr::new(s.callee.aor());
        let to_tag = self.rng.hex(10);
        let ruri = format!("sip:{}@{}", s.callee.user, s.callee.wire_sip());
        let offer = self.offer_sdp();
        let (split, coalesce) = match s.transport {
            SipTransport::Tcp {
                split_invite,
                coalesce_provisional,
            } => (split_invite, coalesce_provisional),
            SipTransport::Udp => (false, false),
        };

        let mut cseq = 1u32;
        let mk_invite = |me: &mut Self, cseq: u32, auth: Option<Auth>| {
            let mut m = SipMsg::request("INVITE", &ruri, &s.call_id, cseq);
            m.via.push(me.caller_via());
            m.from = from.clone();
            m.to = to.clone();
            m.contact = Some((s.caller.contact(tr), None));
            m.user_agent = Some(s.caller.agent.clone());
            m.auth = auth;
            m.extra
                .push(("Allow".into(), "INVITE, ACK, CANCEL, BYE, OPTIONS".into()));
            m.with_sdp(&offer)
        };
        let mut invite = mk_invite(self, cseq, None);
        self.send(truth, t0, true, &[&invite], false, split);
        let mut base = t0;
        if let Some(proxy) = s.auth {
            let realm = s.callee.domain.clone();
            let nonce = self.rng.hex(24);
            let (code, reason) = if proxy {
                (407, "Proxy Authentication Required")
            } else {
                (401, "Unauthorized")
            };
            let mut ch = self.response(&invite, code, reason, Some(&to_tag));
            ch.auth = Some(Auth::Challenge {
                proxy,
                realm: realm.clone(),
                nonce: nonce.clone(),
            });
            self.send(truth, t0 + 10 * MS, false, &[&ch], false, false);
            let mut ack = SipMsg::request("ACK", &ruri, &s.call_id, cseq);
            ack.via = invite.via.clone();
            ack.from = from.clone();
            ack.to = ch.to.clone();
            self.send(truth, t0 + 15 * MS, true, &[&ack], false, false);
            cseq += 1;
            let cred = Auth::Credentials {
                proxy,
                username: s.caller.user.clone(),
                realm,
                nonce,
                uri: ruri.clone(),
                response: self.rng.hex(32),
            };
            invite = mk_invite(self, cseq, Some(cred));
            base = t0 + 40 * MS;
            self.send(truth, base, true, &[&invite], false, false);
        }

        if s.outcome == Outcome::NoAnswer {
            // Timer A: T1 = 500 ms doubling; Timer B fires at 64·T1 = 32 s
            let mut at = 0i64;
            let mut iv = 500i64;
            while at + iv < 32_000 {
                at += iv;
                self.send(truth, base + at * MS, true, &[&invite], true, false);
                iv *= 2;
            }
            truth.calls.push(CallTruth {
                call_id: s.call_id.clone(),
                state: "CALL SETUP",
                final_code: None,
                final_reason: None,
            });
            return;
        }

        let trying = self.response(&invite, 100, "Trying", None);
        let ringing = self.response(&invite, 180, "Ringing", Some(&to_tag));
        if coalesce {
            self.send(
                truth,
                base + 20 * MS,
                false,
                &[&trying, &ringing],
                false,
                false,
            );
        } else {
            self.send(truth, base + 5 * MS, false, &[&trying], false, false);
            self.send(truth, base + 50 * MS, false, &[&ringing], false, false);
        }
        let answer = self.answer_sdp();
        let mut early_start = None;
        if s.early_media {
            let p = self
                .response(&invite, 183, "Session Progress", Some(&to_tag))
                .with_sdp(&answer);
            self.send(truth, base + 60 * MS, false, &[&p], false, false);
            early_start = Some(base + 80 * MS);
        }
        let answer_t = base + i64::from(s.ring_ms) * MS;
        let ack_of = |me: &mut Self, to_hdr: &NameAddr, same_branch: bool| {
            let uri = if same_branch {
                ruri.clone()
            } else {
                format!("sip:{}@{}", s.callee.user, s.callee.adv_sip())
            };
            let mut a = SipMsg::request("ACK", &uri, &s.call_id, cseq);
            a.via = if same_branch {
                invite.via.clone()
            } else {
                vec![me.caller_via()]
            };
            a.from = from.clone();
            a.to = to_hdr.clone();
            a
        };
        match &s.outcome {
            Outcome::Cancelled => {
                let mut c = SipMsg::request("CANCEL", &ruri, &s.call_id, cseq);
                c.via = invite.via.clone();
                c.from = from.clone();
                c.to = to.clone();
                self.send(truth, answer_t, true, &[&c], false, false);
                let ok = self.response(&c, 200, "OK", Some(&to_tag));
                self.send(truth, answer_t + 5 * MS, false, &[&ok], false, false);
                let term = self.response(&invite, 487, "Request Terminated", Some(&to_tag));
                self.send(truth, answer_t + 10 * MS, false, &[&term], false, false);
                let ack = ack_of(self, &term.to, true);
                self.send(truth, answer_t + 15 * MS, true, &[&ack], false, false);
                truth.calls.push(CallTruth {
                    call_id: s.call_id.clone(),
                    state: "CANCELLED",
                    final_code: Some(487),
                    final_reason: Some("Request Terminated".into()),
                });
                self.early_media_only(truth, early_start, answer_t);
            }
            Outcome::Rejected { code, reason } => {
                let r = self.response(&invite, *code, reason, Some(&to_tag));
                self.send(truth, answer_t, false, &[&r], false, false);
                let ack = ack_of(self, &r.to, true);
                self.send(truth, answer_t + 10 * MS, true, &[&ack], false, false);
                truth.calls.push(CallTruth {
                    call_id: s.call_id.clone(),
                    state: "REJECTED",
                    final_code: Some(*code),
                    final_reason: Some(reason.clone()),
                });
                self.early_media_only(truth, early_start, answer_t);
            }
            Outcome::Answered { bye_from_callee } => {
                let ok = self
                    .response(&invite, 200, "OK", Some(&to_tag))
                    .with_sdp(&answer);
                self.send(truth, answer_t, false, &[&ok], false, false);
                let ack = ack_of(self, &ok.to, false);
                self.send(truth, answer_t + 15 * MS, true, &[&ack], false, false);
                let media_start = answer_t + 30 * MS;
                let media_end = media_start + i64::from(s.talk_ms) * MS;
                self.media(truth, early_start, media_start, media_end);
                let bye_t = media_end + 40 * MS;
                if *bye_from_callee {
                    self.callee_bye(truth, bye_t, &from, &ok.to);
                } else {
                    let mut bye = SipMsg::request(
                        "BYE",
                        &format!("sip:{}@{}", s.callee.user, s.callee.adv_sip()),
                        &s.call_id,
                        cseq + 1,
                    );
                    bye.via.push(self.caller_via());
                    bye.from = from.clone();
                    bye.to = ok.to.clone();
                    bye.user_agent = Some(s.caller.agent.clone());
                    self.send(truth, bye_t, true, &[&bye], false, false);
                    let r = self.response(&bye, 200, "OK", None);
                    self.send(truth, bye_t + 10 * MS, false, &[&r], false, false);
                }
                truth.calls.push(CallTruth {
                    call_id: s.call_id.clone(),
                    state: "COMPLETED",
                    final_code: Some(200),
                    final_reason: Some("OK".into()),
                });
            }
            Outcome::NoAck => {
                let ok = self
                    .response(&invite, 200, "OK", Some(&to_tag))
                    .with_sdp(&answer);
                self.send(truth, answer_t, false, &[&ok], false, false);
                // Timer G: T1 doubling, capped at T2 = 4 s; Timer H = 64·T1 = 32 s
                let mut at = 0i64;
                let mut iv = 500i64;
                while at + iv < 32_000 {
                    at += iv;
                    self.send(truth, answer_t + at * MS, false, &[&ok], true, false);
                    iv = (iv * 2).min(4000);
                }
                self.callee_bye(truth, answer_t + 32_000 * MS, &from, &ok.to);
                truth.calls.push(CallTruth {
                    call_id: s.call_id.clone(),
                    state: "COMPLETED",
                    final_code: Some(200),
                    final_reason: Some("OK".into()),
                });
            }
            Outcome::NoAnswer => {}
        }
    }

    fn callee_bye(
        &mut self,
        truth: &mut Truth,
        t: i64,
        caller_from: &NameAddr,
        callee_to: &NameAddr,
    ) {
        let s = self.s;
        let mut bye = SipMsg::request("BYE", &s.caller.contact(s.transport_name()), &s.call_id, 1);
        bye.via.push(Via {
            transport: s.transport_name().into(),
            sent_by: s.callee.adv_sip().to_string(),
            branch: format!("z9hG4bK{}", self.rng.hex(16)),
            rport: None,
            received: None,
        });
        bye.from = callee_to.clone();
        bye.to = caller_from.clone();
        bye.user_agent = Some(s.callee.agent.clone());
        self.send(truth, t, false, &[&bye], false, false);
        let mut r = SipMsg::response_to(&bye, 200, reason_phrase(200));
        r.user_agent = Some(s.caller.agent.clone());
        self.send(truth, t + 10 * MS, true, &[&r], false, false);
    }

    /// Early media of a call that was never answered (183 then failure/cancel).
    fn early_media_only(&mut self, truth: &mut Truth, early: Option<i64>, until: i64) {
        if let Some(st) = early
            && matches!(self.s.media, MediaFlow::Both | MediaFlow::CalleeOnly)
        {
            let slots = ((until - st) / (20 * MS)).max(0) as u32;
            self.callee_stream(truth, st, slots, &mut Vec::new());
        }
    }

    fn callee_stream(
        &mut self,
        truth: &mut Truth,
        start: i64,
        slots: u32,
        out: &mut Vec<MediaPkt>,
    ) -> Option<u32> {
        let s = self.s;
        let codec = self.answer_codec();
        let mut spec = RtpSpec::pcmu(
            s.callee_ssrc,
            s.callee_start_seq,
            start + 300_000,
            slots,
            s.seed ^ 0xB0B,
        );
        spec.pt = codec.pt;
        spec.clock_rate = codec.rate;
        spec.payload_len = codec.bytes_20ms;
        spec.fill = codec.fill;
        spec.impair = s.callee_impair.clone();
        let (pk, tr) = media::generate(&spec);
        let src = s.callee.wire_rtp();
        let dst = s.caller.wire_rtp();
        self.put_media(&pk, src, dst);
        for t in tr {
            truth.streams.push(StreamOnWire { src, dst, t });
        }
        out.extend(pk);
        Some(s.callee_ssrc)
    }

    fn put_media(&mut self, pk: &[MediaPkt], src: SocketAddr, dst: SocketAddr) {
        let iface = self.w.media_iface;
        for p in pk {
            self.w.udp(iface, p.ns, src, dst, &p.bytes);
        }
    }

    fn media(&mut self, truth: &mut Truth, early: Option<i64>, start: i64, end: i64) {
        let s = self.s;
        let codec = self.answer_codec();
        let mut caller_pk = Vec::new();
        let mut callee_pk = Vec::new();
        if matches!(s.media, MediaFlow::Both | MediaFlow::CallerOnly) {
            let slots = ((end - start) / (20 * MS)).max(0) as u32;
            let mut spec = RtpSpec::pcmu(
                s.caller_ssrc,
                s.caller_start_seq,
                start,
                slots,
                s.seed ^ 0xA1,
            );
            spec.pt = codec.pt;
            spec.clock_rate = codec.rate;
            spec.payload_len = codec.bytes_20ms;
            spec.fill = codec.fill;
            spec.impair = s.caller_impair.clone();
            spec.ssrc_change = s.caller_ssrc_change;
            spec.dtmf = s
                .dtmf
                .iter()
                .enumerate()
                .map(|(i, d)| DtmfEvent {
                    digit: *d,
                    start_slot: 50 + 50 * i as u32,
                    slots: 5,
                })
                .collect();
            let (pk, tr) = media::generate(&spec);
            let src = s.caller.wire_rtp();
            let dst = s.callee.wire_rtp();
            self.put_media(&pk, src, dst);
            for t in tr {
                truth.streams.push(StreamOnWire { src, dst, t });
            }
            caller_pk = pk;
        }
        if matches!(s.media, MediaFlow::Both | MediaFlow::CalleeOnly) {
            let st = early.unwrap_or(start);
            let slots = ((end - st) / (20 * MS)).max(0) as u32;
            self.callee_stream(truth, st, slots, &mut callee_pk);
        }
        if s.rtcp {
            self.rtcp(start, end, &caller_pk, &callee_pk);
        }
    }

    /// SR + SDES every `rtcp_interval_ms` per sending side, and SR + SDES + BYE when media stops.
    fn rtcp(&mut self, start: i64, end: i64, caller_pk: &[MediaPkt], callee_pk: &[MediaPkt]) {
        let s = self.s;
        let sides = [
            (
                s.caller_ssrc,
                s.callee_ssrc,
                caller_pk,
                callee_pk,
                &s.caller,
                &s.callee,
                0i64,
                &s.callee_impair,
            ),
            (
                s.callee_ssrc,
                s.caller_ssrc,
                callee_pk,
                caller_pk,
                &s.callee,
                &s.caller,
                100 * MS,
                &s.caller_impair,
            ),
        ];
        let mut frames: Vec<(i64, SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
        for (me, peer, mine, theirs, ep, other, offset, peer_imp) in sides {
            if mine.is_empty() {
                continue;
            }
            let src = SocketAddr::new(ep.wire_rtp().ip(), ep.wire_rtp().port().wrapping_add(1));
            let dst = SocketAddr::new(
                other.wire_rtp().ip(),
                other.wire_rtp().port().wrapping_add(1),
            );
            let mut prev: Option<(u32, i32)> = None;
            let iv = i64::from(s.rtcp_interval_ms.max(100)) * MS;
            let mut k = 1i64;
            loop {
                let last = start + k * iv + offset >= end;
                let t = if last {
                    end + 20 * MS + offset
                } else {
                    start + k * iv + offset
                };
                let sent: Vec<&MediaPkt> =
                    mine.iter().filter(|p| p.ns <= t && p.ssrc == me).collect();
                let octets: u64 = sent
                    .iter()
                    .map(|p| p.bytes.len().saturating_sub(12) as u64)
                    .sum();
                let rtp_ts = sent
                    .last()
                    .and_then(|p| p.bytes.get(4..8))
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                let mut blocks = Vec::new();
                if let Some((hi, lost, _n)) = media::reception_at(theirs, peer, t) {
                    let (p_hi, p_lost) = prev.unwrap_or((hi.wrapping_sub(hi.min(250)), 0));
                    let exp_int = hi.wrapping_sub(p_hi).max(1);
                    let lost_int = (lost - p_lost).max(0) as u32;
                    let fraction = ((lost_int.saturating_mul(256)) / exp_int).min(255) as u8;
                    prev = Some((hi, lost));
                    blocks.push(ReportBlock {
                        ssrc: peer,
                        fraction_lost: fraction,
                        cumulative_lost: lost,
                        highest_seq: hi,
                        // nominal: a third of the configured jitter bound, in 8 kHz units
                        jitter: (peer_imp.jitter_ms / 3.0 * 8.0) as u32,
                        lsr: 0,
                        dlsr: 0,
                    });
                }
                let mut pkt = media::rtcp_sr(
                    me,
                    media::ntp_from_ns(t),
                    rtp_ts,
                    sent.len() as u32,
                    octets as u32,
                    &blocks,
                );
                pkt.extend(media::rtcp_sdes_cname(
                    me,
                    &format!("{}@{}", ep.user, ep.adv_rtp().ip()),
                ));
                if last {
                    pkt.extend(media::rtcp_bye(me, None));
                }
                frames.push((t, src, dst, pkt));
                if last || k > 100_000 {
                    break;
                }
                k += 1;
            }
        }
        let iface = self.w.media_iface;
        for (t, a, b, p) in frames {
            self.w.udp(iface, t, a, b, &p);
        }
    }
}

/// A registration lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterScenario {
    pub seed: u64,
    pub start_ns: i64,
    pub ua: Endpoint,
    pub registrar: SocketAddr,
    /// 401 challenge before the first success.
    pub challenge: bool,
    pub expires: u32,
    pub granted: u32,
    pub refreshes: u32,
    pub refresh_ms: u32,
    /// Source port for refresh i (NAT rebinding); missing entries keep the previous port.
    pub rebind_ports: Vec<u16>,
    pub unregister: bool,
    /// OPTIONS pings from the UA between refreshes (answered or not).
    pub options: u32,
    pub options_answered: bool,
    /// Double-CRLF keepalives from the UA (RFC 5626), one every `refresh_ms / (n+1)`.
    pub crlf_keepalives: u32,
}

impl RegisterScenario {
    pub fn new(seed: u64, start_ns: i64, ua: Endpoint, registrar: SocketAddr) -> Self {
        RegisterScenario {
            seed,
            start_ns,
            ua,
            registrar,
            challenge: true,
            expires: 3600,
            granted: 600,
            refreshes: 0,
            refresh_ms: 300_000,
            rebind_ports: Vec::new(),
            unregister: false,
            options: 0,
            options_answered: true,
            crlf_keepalives: 0,
        }
    }

    pub fn emit(&self, w: &mut Wire, truth: &mut Truth) {
        let s = self;
        let mut rng = Rng::new(s.seed ^ 0x4E6);
        let call_id = format!("{}@{}", rng.hex(20), s.ua.adv_sip().ip());
        let from = NameAddr {
            display: None,
            uri: s.ua.aor(),
            tag: Some(rng.hex(10)),
        };
        let to = NameAddr::new(s.ua.aor());
        let ruri = format!("sip:{}", s.ua.domain);
        let realm = s.ua.domain.clone();
        let nonce = rng.hex(24);
        let server_tag = rng.hex(10);
        let mut cseq = 0u32;
        let mut src = s.ua.wire_sip();
        let iface = w.sip_iface;
        let send = |w: &mut Wire,
                    truth: &mut Truth,
                    t: i64,
                    a: SocketAddr,
                    b: SocketAddr,
                    m: &SipMsg,
                    resent: bool| {
            truth.sip_messages += 1;
            if resent {
                truth.sip_resent += 1;
            }
            w.udp(iface, t, a, b, &m.render());
        };
        let register = |rng: &mut Rng, cseq: u32, expires: u32, auth: Option<Auth>| {
            let mut m = SipMsg::request("REGISTER", &ruri, &call_id, cseq);
            m.via.push(Via {
                transport: "UDP".into(),
                sent_by: s.ua.adv_sip().to_string(),
                branch: format!("z9hG4bK{}", rng.hex(16)),
                rport: Some(None),
                received: None,
            });
            m.from = from.clone();
            m.to = to.clone();
            m.contact = Some((s.ua.contact("UDP"), None));
            m.expires = Some(expires);
            m.user_agent = Some(s.ua.agent.clone());
            m.auth = auth;
            m
        };
        let respond = |req: &SipMsg, src: SocketAddr, code: u16, contact_exp: Option<u32>| {
            let mut r = SipMsg::response_to(req, code, reason_phrase(code));
            if let Some(v) = r.via.first_mut() {
                v.rport = Some(Some(src.port()));
                if s.ua.nat.is_some() || src != s.ua.wire_sip() {
                    v.received = Some(src.ip().to_string());
                }
            }
            r.to.tag = Some(server_tag.clone());
            if let Some(e) = contact_exp {
                r.contact = Some((s.ua.contact("UDP"), Some(e)));
            }
            r.server = Some("sipscope-synth registrar".into());
            r
        };
        let cred = |rng: &mut Rng| Auth::Credentials {
            proxy: false,
            username: s.ua.user.clone(),
            realm: realm.clone(),
            nonce: nonce.clone(),
            uri: ruri.clone(),
            response: rng.hex(32),
        };
        let mut t = s.start_ns;
        cseq += 1;
        let first = register(&mut rng, cseq, s.expires, None);
        send(w, truth, t, src, s.registrar, &first, false);
        if s.challenge {
            let mut ch = respond(&first, src, 401, None);
            ch.auth = Some(Auth::Challenge {
                proxy: false,
                realm: realm.clone(),
                nonce: nonce.clone(),
            });
            send(w, truth, t + 12 * MS, s.registrar, src, &ch, false);
            cseq += 1;
            t += 30 * MS;
            let c = cred(&mut rng);
            let again = register(&mut rng, cseq, s.expires, Some(c));
            send(w, truth, t, src, s.registrar, &again, false);
            let ok = respond(&again, src, 200, Some(s.granted));
            send(w, truth, t + 15 * MS, s.registrar, src, &ok, false);
        } else {
            let ok = respond(&first, src, 200, Some(s.granted));
            send(w, truth, t + 15 * MS, s.registrar, src, &ok, false);
        }
        let period = i64::from(s.refresh_ms) * MS;
        let mut opt_cseq = 0u32;
        let opt_call = format!("{}@{}", rng.hex(20), s.ua.adv_sip().ip());
        // keepalives run inside each refresh period, and after the last registration only
        // when no unregister follows
        let periods = if s.unregister {
            s.refreshes
        } else {
            s.refreshes + 1
        };
        for i in 0..=s.refreshes {
            let n = if i < periods { s.crlf_keepalives } else { 0 };
            for k in 1..=n {
                let at = t + period * i64::from(k) / i64::from(n + 1) + 7 * MS;
                w.udp(iface, at, src, s.registrar, b"\r\n\r\n");
            }
            let opts = if i < periods { s.options } else { 0 };
            for k in 0..opts {
                let at = t + period * i64::from(k + 1) / i64::from(s.options + 1) + 11 * MS;
                opt_cseq += 1;
                let mut o = SipMsg::request("OPTIONS", &ruri, &opt_call, opt_cseq);
                o.via.push(Via {
                    transport: "UDP".into(),
                    sent_by: s.ua.adv_sip().to_string(),
                    branch: format!("z9hG4bK{}", rng.hex(16)),
                    rport: Some(None),
                    received: None,
                });
                o.from = NameAddr {
                    display: None,
                    uri: s.ua.aor(),
                    tag: Some(rng.hex(10)),
                };
                o.to = NameAddr::new(format!("sip:{}", s.ua.domain));
                send(w, truth, at, src, s.registrar, &o, false);
                if s.options_answered {
                    let r = respond(&o, src, 200, None);
                    send(w, truth, at + 8 * MS, s.registrar, src, &r, false);
                } else {
                    // Timer E: T1 doubling capped at T2 = 4 s until Timer F (32 s)
                    let mut el = 0i64;
                    let mut iv = 500i64;
                    while el + iv < 32_000 {
                        el += iv;
                        send(w, truth, at + el * MS, src, s.registrar, &o, true);
                        iv = (iv * 2).min(4000);
                    }
                }
            }
            if i == s.refreshes {
                break;
            }
            t += period;
            if let Some(&p) = s.rebind_ports.get(i as usize) {
                src = SocketAddr::new(src.ip(), p);
            }
            cseq += 1;
            let c = cred(&mut rng);
            let r = register(&mut rng, cseq, s.expires, Some(c));
            send(w, truth, t, src, s.registrar, &r, false);
            let ok = respond(&r, src, 200, Some(s.granted));
            send(w, truth, t + 15 * MS, s.registrar, src, &ok, false);
        }
        if s.unregister {
            t += 10_000 * MS;
            cseq += 1;
            let c = cred(&mut rng);
            let mut r = register(&mut rng, cseq, 0, Some(c));
            r.contact = Some((s.ua.contact("UDP"), Some(0)));
            send(w, truth, t, src, s.registrar, &r, false);
            let ok = respond(&r, src, 200, None);
            send(w, truth, t + 15 * MS, s.registrar, src, &ok, false);
        }
        truth.registrations.push(RegTruth {
            aor: s.ua.aor(),
            state: if s.unregister {
                "unregistered"
            } else {
                "registered"
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ep(user: &str, last: u8, rtp: u16) -> Endpoint {
        Endpoint::new(
            user,
            "example.com",
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            rtp,
        )
    }

    fn udp_payloads(pk: &[Packet]) -> Vec<Vec<u8>> {
        pk.iter()
            .filter_map(|p| {
                let s = etherparse::SlicedPacket::from_ethernet(&p.data).ok()?;
                match s.transport {
                    Some(etherparse::TransportSlice::Udp(u)) => Some(u.payload().to_vec()),
                    _ => None,
                }
            })
            .collect()
    }

    fn sip_starts(pk: &[Packet]) -> Vec<String> {
        udp_payloads(pk)
            .into_iter()
            .filter(|p| {
                p.starts_with(b"SIP/2.0") || p.windows(8).take(40).any(|w| w == b" SIP/2.0")
            })
            .map(|p| {
                String::from_utf8_lossy(&p)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn answered_call_flow_and_truth() {
        let mut c = CallScenario::new(
            "c1@x",
            1,
            1_000_000_000_000_000_000,
            ep("alice", 10, 40000),
            ep("bob", 20, 50000),
        );
        c.talk_ms = 1000;
        c.rtcp = true;
        let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
        let mut t = Truth::default();
        c.emit(&mut w, &mut t);
        let pk = w.finish();
        let lines = sip_starts(&pk);
        let firsts: Vec<&str> = lines
            .iter()
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(
            firsts,
            vec![
                "INVITE", "SIP/2.0", "SIP/2.0", "SIP/2.0", "ACK", "BYE", "SIP/2.0"
            ]
        );
        assert_eq!(t.sip_messages, 7);
        assert_eq!(t.sip_resent, 0);
        assert_eq!(t.streams.len(), 2);
        assert_eq!(t.streams[0].t.packets, 50);
        assert_eq!(t.calls[0].state, "COMPLETED");
        assert!(pk.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
        let rtcp = udp_payloads(&pk)
            .iter()
            .filter(|p| p.get(1) == Some(&200))
            .count();
        assert_eq!(rtcp, 2, "one final SR per side for a 1 s call");
    }

    #[test]
    fn no_answer_retransmits_per_timer_a() {
        let mut c = CallScenario::new("c2@x", 2, 0, ep("a", 1, 4000), ep("b", 2, 5000));
        c.outcome = Outcome::NoAnswer;
        let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
        let mut t = Truth::default();
        c.emit(&mut w, &mut t);
        let pk = w.finish();
        let times: Vec<i64> = pk.iter().map(|p| p.ts_ns / MS).collect();
        assert_eq!(times, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!((t.sip_messages, t.sip_resent), (7, 6));
    }

    #[test]
    fn no_ack_retransmits_200_then_bye() {
        let mut c = CallScenario::new("c3@x", 3, 0, ep("a", 1, 4000), ep("b", 2, 5000));
        c.outcome = Outcome::NoAck;
        c.ring_ms = 1000;
        let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
        let mut t = Truth::default();
        c.emit(&mut w, &mut t);
        let pk = w.finish();
        let oks: Vec<i64> = pk
            .iter()
            .zip(sip_starts(&pk))
            .filter(|(_, l)| l.starts_with("SIP/2.0 200"))
            .map(|(p, _)| p.ts_ns / MS)
            .collect();
        // 0.5, 1, 2, 4, 4, 4 ... (capped) after the first 200 at 1000 ms, then the BYE's 200
        assert_eq!(&oks[..6], &[1000, 1500, 2500, 4500, 8500, 12500]);
        assert_eq!(t.sip_resent, 10);
        assert!(sip_starts(&pk).iter().any(|l| l.starts_with("BYE")));
    }

    #[test]
    fn nat_rewrites_only_the_inside() {
        let mut a = ep("alice", 10, 40002);
        a.ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        a.sip_port = 5062;
        a.nat = Some(Nat {
            private_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
            private_sip_port: 5060,
            private_rtp_port: 40000,
        });
        let c = CallScenario::new("n@x", 4, 0, a, ep("bob", 20, 50000));
        let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
        let mut t = Truth::default();
        c.emit(&mut w, &mut t);
        let pk = w.finish();
        let inv = String::from_utf8(udp_payloads(&pk)[0].clone()).unwrap();
        assert!(inv.contains("Via: SIP/2.0/UDP 192.168.1.10:5060"));
        assert!(inv.contains("c=IN IP4 192.168.1.10"));
        assert!(inv.contains("m=audio 40000 "));
        let trying = String::from_utf8(udp_payloads(&pk)[1].clone()).unwrap();
        assert!(trying.contains(";rport=5062;received=198.51.100.7"));
        assert_eq!(t.streams[0].src.to_string(), "198.51.100.7:40002");
        assert_eq!(t.streams[1].dst.to_string(), "198.51.100.7:40002");
    }

    #[test]
    fn tcp_sequence_numbers_are_contiguous() {
        let mut c = CallScenario::new("t@x", 5, 0, ep("a", 1, 4000), ep("b", 2, 5000));
        c.transport = SipTransport::Tcp {
            split_invite: true,
            coalesce_provisional: true,
        };
        c.media = MediaFlow::None;
        let mut w = Wire::new(LinkKind::Raw);
        let mut t = Truth::default();
        c.emit(&mut w, &mut t);
        let pk = w.finish();
        let mut next: Vec<((u16, u16), u32)> = Vec::new();
        let mut data_segments = 0;
        for p in &pk {
            let s = etherparse::SlicedPacket::from_ip(&p.data).unwrap();
            let Some(etherparse::TransportSlice::Tcp(tc)) = s.transport else {
                panic!("tcp only")
            };
            let key = (tc.source_port(), tc.destination_port());
            let len = tc.payload().len() as u32 + u32::from(tc.syn() || tc.fin());
            if let Some(e) = next.iter_mut().find(|e| e.0 == key) {
                assert_eq!(tc.sequence_number(), e.1, "seq continues");
                e.1 = e.1.wrapping_add(len);
            } else {
                assert!(tc.syn());
                next.push((key, tc.sequence_number().wrapping_add(len)));
            }
            if !tc.payload().is_empty() {
                data_segments += 1;
            }
        }
        // INVITE in 2 segments, 100+180 in one, 200, ACK, BYE, 200
        assert_eq!(data_segments, 7);
        assert_eq!(t.sip_messages, 7);
    }

    #[test]
    fn registration_flow() {
        let mut r =
            RegisterScenario::new(9, 0, ep("carol", 30, 0), "10.0.0.1:5060".parse().unwrap());
        r.refreshes = 1;
        r.refresh_ms = 60_000;
        r.rebind_ports = vec![6000];
        r.unregister = true;
        let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
        let mut t = Truth::default();
        r.emit(&mut w, &mut t);
        let pk = w.finish();
        let l = sip_starts(&pk);
        assert_eq!(l.len(), 8);
        assert!(l[1].starts_with("SIP/2.0 401"));
        assert_eq!(t.sip_messages, 8);
        assert_eq!(t.registrations[0].state, "unregistered");
        let refresh = String::from_utf8(udp_payloads(&pk)[4].clone()).unwrap();
        assert!(refresh.contains("Authorization: Digest"));
        let ok = String::from_utf8(udp_payloads(&pk)[5].clone()).unwrap();
        assert!(ok.contains("rport=6000;received=10.0.0.30"), "{ok}");
    }

    #[test]
    fn fragmentation_on_wire() {
        let mut c = CallScenario::new("f@x", 6, 0, ep("a", 1, 4000), ep("b", 2, 5000));
        c.sdp_padding = 3000;
        c.media = MediaFlow::None;
        let mut w = Wire::new(LinkKind::Raw);
        w.frag_order = vec![2, 0, 1];
        let mut t = Truth::default();
        c.emit(&mut w, &mut t);
        let pk = w.finish();
        let frags: Vec<&Packet> = pk.iter().take(3).collect();
        let offs: Vec<u16> = frags
            .iter()
            .map(|p| u16::from_be_bytes([p.data[6], p.data[7]]) & 0x1FFF)
            .collect();
        assert_eq!(offs[1], 0, "first fragment delivered second");
        assert!(offs[0] > offs[2]);
        assert!(pk.iter().all(|p| p.data.len() <= 1500));
    }
}
