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

/// A [`Decoded`] whose one byte slice is kept as an offset into its frame, so the decode
/// can run on the reader thread and travel to the state thread beside the batch that owns
/// the bytes (no copy, no lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detached {
    kind: Decoded<'static>,
    off: u32,
    len: u32,
}

impl<'a> Decoded<'a> {
    /// Detach from `frame`, the bytes this was decoded from.
    pub fn detach(self, frame: &'a [u8]) -> Detached {
        let (kind, slice): (Decoded<'static>, &[u8]) = match self {
            Decoded::Ip {
                src,
                dst,
                l4,
                tunnelled,
            } => {
                let (l4, s): (L4<'static>, &[u8]) = match l4 {
                    L4::Udp {
                        src_port,
                        dst_port,
                        payload,
                    } => (
                        L4::Udp {
                            src_port,
                            dst_port,
                            payload: &[],
                        },
                        payload,
                    ),
                    L4::Tcp {
                        src_port,
                        dst_port,
                        seq,
                        flags,
                        payload,
                    } => (
                        L4::Tcp {
                            src_port,
                            dst_port,
                            seq,
                            flags,
                            payload: &[],
                        },
                        payload,
                    ),
                    L4::Icmp {
                        v6,
                        icmp_type,
                        code,
                    } => (
                        L4::Icmp {
                            v6,
                            icmp_type,
                            code,
                        },
                        &[],
                    ),
                    L4::Other { proto } => (L4::Other { proto }, &[]),
                };
                (
                    Decoded::Ip {
                        src,
                        dst,
                        l4,
                        tunnelled,
                    },
                    s,
                )
            }
            Decoded::Fragment(f) => (Decoded::Fragment(Fragment { data: &[], ..f }), f.data),
            Decoded::NonIp { ethertype } => (Decoded::NonIp { ethertype }, &[]),
            Decoded::UnsupportedLink { link } => (Decoded::UnsupportedLink { link }, &[]),
            Decoded::Malformed { layer, reason } => (Decoded::Malformed { layer, reason }, &[]),
        };
        // Every slice a decode returns borrows from the frame; compute its position.
        let base = frame.as_ptr() as usize;
        let off = (slice.as_ptr() as usize)
            .checked_sub(base)
            .filter(|o| o + slice.len() <= frame.len());
        match off {
            Some(o) if !slice.is_empty() => Detached {
                kind,
                off: o as u32,
                len: slice.len() as u32,
            },
            _ => Detached {
                kind,
                off: 0,
                len: 0,
            },
        }
    }
}

impl Detached {
    /// Re-attach to the same frame bytes.
    pub fn attach<'a>(&self, frame: &'a [u8]) -> Decoded<'a> {
        let s: &'a [u8] = frame
            .get(self.off as usize..(self.off as usize).saturating_add(self.len as usize))
            .unwrap_or(&[]);
        match self.kind {
            Decoded::Ip {
                src,
                dst,
                l4,
                tunnelled,
            } => {
                let l4 = match l4 {
                    L4::Udp {
                        src_port, dst_port, ..
                    } => L4::Udp {
                        src_port,
                        dst_port,
                        payload: s,
                    },
                    L4::Tcp {
                        src_port,
                        dst_port,
                        seq,
                        flags,
                        ..
                    } => L4::Tcp {
                        src_port,
                        dst_port,
                        seq,
                        flags,
                        payload: s,
                    },
                    L4::Icmp {
                        v6,
                        icmp_type,
                        code,
                    } => L4::Icmp {
                        v6,
                        icmp_type,
                        code,
                    },
                    L4::Other { proto } => L4::Other { proto },
                };
                Decoded::Ip {
                    src,
                    dst,
                    l4,
                    tunnelled,
                }
            }
            Decoded::Fragment(f) => Decoded::Fragment(Fragment { data: s, ..f }),
            other => other,
        }
    }
}

#[cfg(test)]
mod detach_tests {
    use super::*;

    #[test]
    fn detach_attach_round_trips_every_corpus_like_packet() {
        // Ethernet / IPv4 / UDP with payload "abcd".
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![
            0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4, 0, 12, 0, 0]);
        ip.extend_from_slice(b"abcd");
        f.extend_from_slice(&ip);
        let d = decode_frame(1, &f);
        let back = d.detach(&f).attach(&f);
        assert_eq!(d, back);
        assert!(matches!(
            back,
            Decoded::Ip {
                l4: L4::Udp {
                    payload: b"abcd",
                    ..
                },
                ..
            }
        ));
        // Truncations: still equal after the round trip.
        for cut in 0..f.len() {
            let d = decode_frame(1, &f[..cut]);
            assert_eq!(d, d.detach(&f[..cut]).attach(&f[..cut]));
        }
    }
}
