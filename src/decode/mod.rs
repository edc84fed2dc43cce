//! Frame → datagram: link layers (Ethernet with 802.1Q/QinQ, Linux SLL and SLL2, raw
//! IPv4/IPv6, BSD NULL/loopback, PPP, PPPoE, MPLS), tunnels (IP-in-IP 4in4/6in4/4in6/6in6,
//! GRE incl. PPTP and ERSPAN, VXLAN), IPv4/IPv6 with extension headers (a hand-written
//! zero-copy walker, faster than generic slicing), IP fragment reassembly and TCP stream
//! reassembly.
//!
//! Two halves, so the stateless one can run in parallel:
//! - [`decode_frame`] is pure: bytes in, a borrowed [`Decoded`] view out. It never panics
//!   and never allocates on the common path.
//! - [`Reassembler`] holds the state (fragment buffers, TCP streams); it is capped and
//!   expires entries on the capture clock, and counts what it evicts.

use crate::types::{FiveTuple, FrameRef, Ts};
use serde::Serialize;
use std::net::IpAddr;

mod link;
mod reasm;
pub use link::decode_frame;
pub use reasm::{Reassembler, ReassemblyLimits};
#[cfg(test)]
mod corpus_tests;

/// TCP flags we care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub ack: bool,
}

/// Transport layer of a decoded, unfragmented IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        flags: TcpFlags,
        payload: &'a [u8],
    },
    /// ICMP / ICMPv6 (type, code). Port-unreachable after a BYE is normal teardown.
    Icmp { v6: bool, icmp_type: u8, code: u8 },
    /// Another IP protocol number.
    Other { proto: u8 },
}

/// An IP fragment that must be reassembled before its transport header can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification or IPv6 fragment identification.
    pub ident: u32,
    /// Upper-layer protocol of the reassembled packet.
    pub proto: u8,
    /// Offset of this fragment's data in bytes.
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
}

/// What one frame decodes to, before reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole IP packet with its transport layer. `tunnelled` = it was inside IP-in-IP/GRE.
    Ip {
        src: IpAddr,
        dst: IpAddr,
        l4: L4<'a>,
        tunnelled: bool,
    },
    Fragment(Fragment<'a>),
    /// ARP, LLDP, STP, ...: not IP, nothing to analyse (not an error).
    NonIp {
        ethertype: u16,
    },
    UnsupportedLink {
        link: u32,
    },
    /// A header was cut short or invalid. `reason` is a stable id such as
    /// `decode.ipv4_truncated`, `decode.bad_ip_version`, `decode.tcp_header_length`.
    Malformed {
        layer: crate::types::Layer,
        reason: &'static str,
    },
}

/// A transport payload ready for protocol analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The frame that completed it (last fragment, or the TCP segment carrying the bytes).
    pub frame: FrameRef,
    pub ts: Ts,
    pub tuple: FiveTuple,
    pub payload: &'a [u8],
    /// Reassembled from IP fragments (first and last fragment frames kept for evidence).
    pub fragments: Option<(FrameRef, FrameRef, u16)>,
    /// For TCP: in-order stream bytes; `gap_before` = bytes were lost before this chunk.
    pub tcp: Option<TcpChunk>,
}

/// TCP-specific facts about a delivered stream chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpChunk {
    pub gap_before: bool,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// What the reassembler did with a frame that produced no datagram (for accounting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// An IP fragment waiting for the rest of its packet.
    FragmentPending,
    /// A TCP segment with no new payload (pure ACK, SYN, FIN, keepalive).
    TcpControl,
    /// A TCP segment whose bytes were all seen before.
    TcpRetransmission,
    /// A TCP segment buffered out of order.
    TcpOutOfOrder,
}

/// Counters kept by the reassembler.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub fragments_reassembled: u64,
    /// Fragment frames dropped because their packet never completed in time.
    pub fragment_frames_expired: u64,
    /// Fragment frames dropped because the fragment table was full (oldest evicted).
    pub fragment_frames_evicted: u64,
    pub fragment_overlaps: u64,
    pub tcp_streams: u64,
    pub tcp_retransmitted_segments: u64,
    pub tcp_out_of_order_segments: u64,
    pub tcp_gaps: u64,
    /// TCP streams evicted because the stream table was full.
    pub tcp_streams_evicted: u64,
    /// Bytes dropped because a stream's out-of-order buffer hit its cap (the hole skipped
    /// over: those bytes are treated as old if they arrive later).
    pub tcp_bytes_dropped: u64,
    /// Fragment frames refused: the packet would exceed 65535 bytes, had too many
    /// fragments, or was fragmented again inside a reassembled packet too deeply.
    pub fragment_frames_dropped: u64,
    /// Reassembled packets whose transport header turned out truncated or invalid.
    pub reassembled_malformed: u64,
}
