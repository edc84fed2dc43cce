//! Stateless decoding of one captured frame: link layer, tunnels, IPv4/IPv6 and the
//! transport header, into a [`Decoded`] view that borrows the frame's bytes.
//!
//! A hand-written walker (no etherparse on this path): it reads only the fields the analyzer
//! needs, allocates nothing, and every read goes through `get`/`first_chunk`, so hostile
//! bytes end in [`Decoded::Malformed`] and never in a panic. Recursion (tunnels, VXLAN, VLAN
//! stacks, IPv6 extension chains) is capped.
//!
//! Conventions:
//! - Lengths on the wire win over captured bytes: the IPv4 total length / IPv6 payload length
//!   cut off Ethernet padding, and the UDP length is honoured when it is sane. When the
//!   snaplen cut the packet, what was captured is delivered (shorter payload), but a header
//!   that is itself cut short is `Malformed { reason: "decode.<layer>_truncated" }`.
//! - Header checksums are not verified: checksum offload makes them wrong in most captures
//!   taken on the sending host.
//! - For links that are not Ethernet, [`Decoded::NonIp`]'s `ethertype` carries that link's
//!   protocol number instead (PPP protocol, BSD address family, SLL protocol).

use super::{Decoded, Fragment, L4, TcpFlags};
use crate::capture::linktype;
use crate::types::Layer;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Tunnels removed at most (IP-in-IP, GRE, VXLAN, each counts one).
const MAX_TUNNEL_DEPTH: u8 = 4;
/// 802.1Q/802.1ad tags read at most before giving up.
const MAX_VLAN_TAGS: usize = 8;
/// IPv6 extension headers walked at most.
const MAX_V6_EXT: usize = 16;
/// MPLS labels popped at most.
const MAX_MPLS_LABELS: usize = 8;

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88A8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_QINQ_OLD2: u16 = 0x9200;
const ETH_PPPOE_DISC: u16 = 0x8863;
const ETH_PPPOE_SESS: u16 = 0x8864;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_TEB: u16 = 0x6558;
const ETH_ERSPAN2: u16 = 0x88BE;
const ETH_ERSPAN3: u16 = 0x22EB;
const ETH_PPP: u16 = 0x880B;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_ICMPV6: u8 = 58;

const VXLAN_PORT: u16 = 4789;

/// Where we are in the encapsulation stack.
#[derive(Clone, Copy)]
struct Ctx {
    depth: u8,
    tunnelled: bool,
}

impl Ctx {
    const TOP: Ctx = Ctx {
        depth: 0,
        tunnelled: false,
    };
    /// One tunnel deeper, or `None` when the cap is reached.
    fn inner(self) -> Option<Ctx> {
        (self.depth < MAX_TUNNEL_DEPTH).then_some(Ctx {
            depth: self.depth + 1,
            tunnelled: true,
        })
    }
}

#[inline]
fn be16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..)?
        .first_chunk::<2>()
        .map(|b| u16::from_be_bytes(*b))
}

#[inline]
fn mal(layer: Layer, reason: &'static str) -> Decoded<'static> {
    Decoded::Malformed { layer, reason }
}

/// Decode one frame captured on link type `link` (LINKTYPE_* number).
pub fn decode_frame(link: u32, data: &[u8]) -> Decoded<'_> {
    let c = Ctx::TOP;
    match link {
        linktype::ETHERNET => ethernet_ipv4_udp(data).unwrap_or_else(|| ethernet(data, c)),
        linktype::LINUX_SLL => sll(data, c),
        linktype::LINUX_SLL2 => sll2(data, c),
        linktype::RAW | linktype::RAW_BSD12 | linktype::RAW_BSD14 => raw_ip(data, c),
        linktype::IPV4 => ipv4(data, c),
        linktype::IPV6 => ipv6(data, c),
        linktype::NULL | linktype::LOOP => null_loop(data, c),
        linktype::PPP => ppp(data, c),
        linktype::PPP_ETHER => pppoe(data, c),
        _ => Decoded::UnsupportedLink { link },
    }
}

/// [`decode_frame`] without the Ethernet/IPv4/UDP fast path (for tests that compare them).
#[cfg(test)]
pub(crate) fn walk(link: u32, data: &[u8]) -> Decoded<'_> {
    match link {
        linktype::ETHERNET => ethernet(data, Ctx::TOP),
        _ => decode_frame(link, data),
    }
}

/// Decode the payload of a reassembled IP packet (`proto` = upper-layer protocol, from the
/// fragment header), as if it had arrived unfragmented. Used by the reassembler.
pub(super) fn decode_ip_payload<'a>(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
) -> Decoded<'a> {
    if src.is_ipv6() {
        // Extension headers may follow the fragment header (destination options).
        v6_chain(proto, src, dst, payload, Ctx::TOP)
    } else {
        transport(proto, src, dst, payload, Ctx::TOP)
    }
}

/// Ethernet → IPv4 without options, not a fragment → UDP with consistent lengths and no
/// tunnel port: the shape of nearly every RTP packet, decoded without the general walk
/// (which costs ~2× as much per packet). `None` for anything else, which then takes the
/// general path; the result is the one [`ethernet`] gives (`fast_path_agrees_with_walk`
/// and the corpus test check it frame by frame).
#[inline]
fn ethernet_ipv4_udp(d: &[u8]) -> Option<Decoded<'_>> {
    let h = d.first_chunk::<42>()?; // Ethernet 14 + IPv4 20 + UDP 8
    if h[12] != 0x08 || h[13] != 0x00 || h[14] != 0x45 || h[23] != IPPROTO_UDP {
        return None;
    }
    // More-fragments flag or a fragment offset: the reassembler's business.
    if h[20] & 0x3F != 0 || h[21] != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let ulen = usize::from(u16::from_be_bytes([h[38], h[39]]));
    // Total length 0 (offload) or beyond the captured bytes, and a UDP length that does
    // not fit the IP payload, are the general path's to interpret.
    if total < 28 || total > d.len() - 14 || ulen < 8 || ulen > total - 20 {
        return None;
    }
    let dst_port = u16::from_be_bytes([h[36], h[37]]);
    if dst_port == VXLAN_PORT {
        return None;
    }
    let payload = d.get(42..34 + ulen)?;
    Some(Decoded::Ip {
        src: IpAddr::V4(Ipv4Addr::new(h[26], h[27], h[28], h[29])),
        dst: IpAddr::V4(Ipv4Addr::new(h[30], h[31], h[32], h[33])),
        l4: L4::Udp {
            src_port: u16::from_be_bytes([h[34], h[35]]),
            dst_port,
            payload,
        },
        tunnelled: false,
    })
}

fn ethernet(d: &[u8], c: Ctx) -> Decoded<'_> {
    let (Some(et), Some(rest)) = (be16(d, 12), d.get(14..)) else {
        return mal(Layer::Link, "decode.ethernet_truncated");
    };
    by_ethertype(et, rest, c)
}

/// Dispatch on an Ethernet type, peeling VLAN tags (802.1Q, 802.1ad, pre-standard 0x9100).
fn by_ethertype(mut et: u16, mut rest: &[u8], c: Ctx) -> Decoded<'_> {
    for _ in 0..=MAX_VLAN_TAGS {
        match et {
            ETH_IPV4 => return ipv4(rest, c),
            ETH_IPV6 => return ipv6(rest, c),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD | ETH_QINQ_OLD2 => {
                // Tag: 2 bytes TCI, 2 bytes inner ethertype.
                let (Some(inner), Some(r)) = (be16(rest, 2), rest.get(4..)) else {
                    return mal(Layer::Link, "decode.vlan_truncated");
                };
                et = inner;
                rest = r;
            }
            ETH_PPPOE_SESS => return pppoe(rest, c),
            ETH_MPLS | ETH_MPLS_MC => return mpls(rest, c),
            // Everything else, including 802.3 length fields (<= 1500): not IP.
            _ => return Decoded::NonIp { ethertype: et },
        }
    }
    mal(Layer::Link, "decode.vlan_depth")
}

/// Linux cooked capture v1: 16-byte header, protocol (ethertype) at offset 14.
fn sll(d: &[u8], c: Ctx) -> Decoded<'_> {
    let (Some(hatype), Some(proto), Some(rest)) = (be16(d, 2), be16(d, 14), d.get(16..)) else {
        return mal(Layer::Link, "decode.sll_truncated");
    };
    sll_proto(hatype, proto, rest, c)
}

/// Linux cooked capture v2: 20-byte header, protocol at offset 0, ARPHRD type at 8.
fn sll2(d: &[u8], c: Ctx) -> Decoded<'_> {
    let (Some(proto), Some(hatype), Some(rest)) = (be16(d, 0), be16(d, 8), d.get(20..)) else {
        return mal(Layer::Link, "decode.sll2_truncated");
    };
    sll_proto(hatype, proto, rest, c)
}

fn sll_proto(hatype: u16, proto: u16, rest: &[u8], c: Ctx) -> Decoded<'_> {
    const ARPHRD_NETLINK: u16 = 824;
    if hatype == ARPHRD_NETLINK {
        // The protocol field is a netlink family there, not an ethertype.
        return Decoded::NonIp { ethertype: proto };
    }
    by_ethertype(proto, rest, c)
}

/// Raw IP (no link header): the version nibble says which.
fn raw_ip(d: &[u8], c: Ctx) -> Decoded<'_> {
    match d.first().map(|b| b >> 4) {
        Some(4) => ipv4(d, c),
        Some(6) => ipv6(d, c),
        Some(_) => mal(Layer::Ip, "decode.bad_ip_version"),
        None => mal(Layer::Ip, "decode.ip_truncated"),
    }
}

/// BSD NULL (host byte order) and LOOP (network byte order) 4-byte address family.
/// Files written on a host of the other endianness are common, so both orders are accepted
/// for both link types: families are small numbers, the non-zero half tells the order.
fn null_loop(d: &[u8], c: Ctx) -> Decoded<'_> {
    let (Some(h), Some(rest)) = (d.first_chunk::<4>(), d.get(4..)) else {
        return mal(Layer::Link, "decode.null_truncated");
    };
    let le = u32::from_le_bytes(*h);
    let fam = if le > 0xFFFF {
        u32::from_be_bytes(*h)
    } else {
        le
    };
    match fam {
        2 => ipv4(rest, c),
        // AF_INET6: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
        24 | 28 | 30 => ipv6(rest, c),
        _ => Decoded::NonIp {
            ethertype: u16::try_from(fam).unwrap_or(u16::MAX),
        },
    }
}

/// PPP (link type 9, GRE/PPTP): optional FF 03 address/control, then the protocol
/// (1 byte when protocol-field compression made it odd, else 2).
fn ppp(d: &[u8], c: Ctx) -> Decoded<'_> {
    let d = match d.first_chunk::<2>() {
        Some([0xFF, 0x03]) => d.get(2..).unwrap_or_default(),
        _ => d,
    };
    ppp_protocol(d, c)
}

fn ppp_protocol(d: &[u8], c: Ctx) -> Decoded<'_> {
    let Some(&first) = d.first() else {
        return mal(Layer::Link, "decode.ppp_truncated");
    };
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), d.get(1..))
    } else {
        match (be16(d, 0), d.get(2..)) {
            (Some(p), Some(r)) => (p, Some(r)),
            _ => return mal(Layer::Link, "decode.ppp_truncated"),
        }
    };
    let rest = rest.unwrap_or_default();
    match proto {
        PPP_IPV4 => ipv4(rest, c),
        PPP_IPV6 => ipv6(rest, c),
        _ => Decoded::NonIp { ethertype: proto },
    }
}

/// PPPoE (RFC 2516): ver/type, code, session id, length; session data (code 0) carries PPP.
fn pppoe(d: &[u8], c: Ctx) -> Decoded<'_> {
    let (Some(h), Some(rest)) = (d.first_chunk::<6>(), d.get(6..)) else {
        return mal(Layer::Link, "decode.pppoe_truncated");
    };
    if h[1] != 0 {
        // Discovery stage (PADI/PADO/...), seen on PPP_ETHER links.
        return Decoded::NonIp {
            ethertype: ETH_PPPOE_DISC,
        };
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let rest = rest.get(..len).unwrap_or(rest);
    ppp_protocol(rest, c)
}

/// MPLS label stack; the payload type is guessed from the IP version nibble (as Wireshark
/// does without configuration).
fn mpls(mut d: &[u8], c: Ctx) -> Decoded<'_> {
    for _ in 0..MAX_MPLS_LABELS {
        let (Some(l), Some(rest)) = (d.first_chunk::<4>(), d.get(4..)) else {
            return mal(Layer::Link, "decode.mpls_truncated");
        };
        d = rest;
        if l[2] & 1 == 1 {
            return match d.first().map(|b| b >> 4) {
                Some(4) => ipv4(d, c),
                Some(6) => ipv6(d, c),
                _ => Decoded::NonIp {
                    ethertype: ETH_MPLS,
                },
            };
        }
    }
    mal(Layer::Link, "decode.mpls_depth")
}

fn ipv4(d: &[u8], c: Ctx) -> Decoded<'_> {
    let Some(h) = d.first_chunk::<20>() else {
        return mal(Layer::Ip, "decode.ipv4_truncated");
    };
    if h[0] >> 4 != 4 {
        return mal(Layer::Ip, "decode.bad_ip_version");
    }
    let ihl = usize::from(h[0] & 0x0F) * 4;
    if ihl < 20 {
        return mal(Layer::Ip, "decode.ipv4_header_length");
    }
    if d.len() < ihl {
        return mal(Layer::Ip, "decode.ipv4_truncated");
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let end = if total == 0 {
        // Segmentation offload: the stack leaves the length to the NIC.
        d.len()
    } else if total < ihl {
        return mal(Layer::Ip, "decode.ipv4_total_length");
    } else {
        total.min(d.len())
    };
    let payload = d.get(ihl..end).unwrap_or_default();
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let more = frag & 0x2000 != 0;
    let offset = u32::from(frag & 0x1FFF) * 8;
    let proto = h[9];
    if more || offset != 0 {
        return Decoded::Fragment(Fragment {
            src,
            dst,
            ident: u32::from(u16::from_be_bytes([h[4], h[5]])),
            proto,
            offset,
            more,
            data: payload,
        });
    }
    transport(proto, src, dst, payload, c)
}

fn ipv6(d: &[u8], c: Ctx) -> Decoded<'_> {
    let Some(h) = d.first_chunk::<40>() else {
        return mal(Layer::Ip, "decode.ipv6_truncated");
    };
    if h[0] >> 4 != 6 {
        return mal(Layer::Ip, "decode.bad_ip_version");
    }
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // Payload length 0: jumbogram or segmentation offload; use what was captured.
    let end = if plen == 0 {
        d.len()
    } else {
        (40 + plen).min(d.len())
    };
    let payload = d.get(40..end).unwrap_or_default();
    let mut s = [0u8; 16];
    let mut t = [0u8; 16];
    s.copy_from_slice(&h[8..24]);
    t.copy_from_slice(&h[24..40]);
    let src = IpAddr::V6(Ipv6Addr::from(s));
    let dst = IpAddr::V6(Ipv6Addr::from(t));
    v6_chain(h[6], src, dst, payload, c)
}

/// Walk IPv6 extension headers from next-header `nh`, then decode the transport.
fn v6_chain<'a>(mut nh: u8, src: IpAddr, dst: IpAddr, mut p: &'a [u8], c: Ctx) -> Decoded<'a> {
    for _ in 0..MAX_V6_EXT {
        let len = match nh {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: (len+1)*8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let Some(e) = p.first_chunk::<2>() else {
                    return mal(Layer::Ip, "decode.ipv6_ext_truncated");
                };
                (usize::from(e[1]) + 1) * 8
            }
            // Authentication header: (len+2)*4.
            51 => {
                let Some(e) = p.first_chunk::<2>() else {
                    return mal(Layer::Ip, "decode.ipv6_ext_truncated");
                };
                (usize::from(e[1]) + 2) * 4
            }
            44 => {
                let (Some(f), Some(rest)) = (p.first_chunk::<8>(), p.get(8..)) else {
                    return mal(Layer::Ip, "decode.ipv6_ext_truncated");
                };
                let fo = u16::from_be_bytes([f[2], f[3]]);
                let offset = u32::from(fo & 0xFFF8);
                let more = fo & 1 == 1;
                if offset == 0 && !more {
                    // Atomic fragment (RFC 6946): a whole packet, keep walking.
                    nh = f[0];
                    p = rest;
                    continue;
                }
                return Decoded::Fragment(Fragment {
                    src,
                    dst,
                    ident: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                    proto: f[0],
                    offset,
                    more,
                    data: rest,
                });
            }
            _ => return transport(nh, src, dst, p, c),
        };
        let (Some(&next), Some(rest)) = (p.first(), p.get(len..)) else {
            return mal(Layer::Ip, "decode.ipv6_ext_truncated");
        };
        nh = next;
        p = rest;
    }
    mal(Layer::Ip, "decode.ipv6_ext_depth")
}

fn transport<'a>(proto: u8, src: IpAddr, dst: IpAddr, p: &'a [u8], c: Ctx) -> Decoded<'a> {
    let l4 = match proto {
        IPPROTO_UDP => return udp(src, dst, p, c),
        IPPROTO_TCP => return tcp(src, dst, p, c),
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let Some(h) = p.first_chunk::<4>() else {
                return mal(Layer::Ip, "decode.icmp_truncated");
            };
            L4::Icmp {
                v6: proto == IPPROTO_ICMPV6,
                icmp_type: h[0],
                code: h[1],
            }
        }
        IPPROTO_IPIP => {
            let Some(ic) = c.inner() else {
                return mal(Layer::Ip, "decode.tunnel_depth");
            };
            return ipv4(p, ic);
        }
        IPPROTO_IPV6 => {
            let Some(ic) = c.inner() else {
                return mal(Layer::Ip, "decode.tunnel_depth");
            };
            return ipv6(p, ic);
        }
        IPPROTO_GRE => return gre(src, dst, p, c),
        _ => L4::Other { proto },
    };
    Decoded::Ip {
        src,
        dst,
        l4,
        tunnelled: c.tunnelled,
    }
}

fn udp<'a>(src: IpAddr, dst: IpAddr, p: &'a [u8], c: Ctx) -> Decoded<'a> {
    let Some(h) = p.first_chunk::<8>() else {
        return mal(Layer::Udp, "decode.udp_truncated");
    };
    let src_port = u16::from_be_bytes([h[0], h[1]]);
    let dst_port = u16::from_be_bytes([h[2], h[3]]);
    let ulen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // A UDP length longer than what we have means snaplen (or a lie): deliver what is there.
    // Shorter than the header (0 = jumbogram/offload) is not sane: fall back to IP length.
    let end = if (8..=p.len()).contains(&ulen) {
        ulen
    } else {
        p.len()
    };
    let payload = p.get(8..end).unwrap_or_default();
    if dst_port == VXLAN_PORT
        && let Some(inner) = vxlan(payload, c)
    {
        return inner;
    }
    Decoded::Ip {
        src,
        dst,
        l4: L4::Udp {
            src_port,
            dst_port,
            payload,
        },
        tunnelled: c.tunnelled,
    }
}

/// VXLAN (RFC 7348, also the group-policy variant): 8-byte header with the I flag, then
/// Ethernet. Anything that does not look like VXLAN stays plain UDP.
fn vxlan(p: &[u8], c: Ctx) -> Option<Decoded<'_>> {
    let h = p.first_chunk::<8>()?;
    if h[0] & 0x08 == 0 || h[0] & 0x77 != 0 || h[7] != 0 {
        return None;
    }
    let ic = c.inner()?;
    Some(ethernet(p.get(8..)?, ic))
}

fn tcp<'a>(src: IpAddr, dst: IpAddr, p: &'a [u8], c: Ctx) -> Decoded<'a> {
    let Some(h) = p.first_chunk::<20>() else {
        return mal(Layer::Tcp, "decode.tcp_truncated");
    };
    let doff = usize::from(h[12] >> 4) * 4;
    if doff < 20 {
        return mal(Layer::Tcp, "decode.tcp_header_length");
    }
    let Some(payload) = p.get(doff..) else {
        return mal(Layer::Tcp, "decode.tcp_truncated");
    };
    let f = h[13];
    Decoded::Ip {
        src,
        dst,
        l4: L4::Tcp {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            flags: TcpFlags {
                fin: f & 0x01 != 0,
                syn: f & 0x02 != 0,
                rst: f & 0x04 != 0,
                ack: f & 0x10 != 0,
            },
            payload,
        },
        tunnelled: c.tunnelled,
    }
}

/// GRE version 0 (RFC 2784/2890: optional checksum, key, sequence) and version 1 (PPTP's
/// enhanced GRE, RFC 2637, carrying PPP). Unknown payload types stay `L4::Other { 47 }`.
fn gre<'a>(src: IpAddr, dst: IpAddr, p: &'a [u8], c: Ctx) -> Decoded<'a> {
    let Some(h) = p.first_chunk::<4>() else {
        return mal(Layer::Ip, "decode.gre_truncated");
    };
    let flags = u16::from_be_bytes([h[0], h[1]]);
    let proto = u16::from_be_bytes([h[2], h[3]]);
    let other = Decoded::Ip {
        src,
        dst,
        l4: L4::Other { proto: IPPROTO_GRE },
        tunnelled: c.tunnelled,
    };
    let has_c = flags & 0x8000 != 0;
    let has_r = flags & 0x4000 != 0;
    let has_k = flags & 0x2000 != 0;
    let has_s = flags & 0x1000 != 0;
    let Some(ic) = c.inner() else {
        return mal(Layer::Ip, "decode.tunnel_depth");
    };
    match flags & 0x0007 {
        0 => {
            if has_r {
                // Source-routed GRE (RFC 1701) is obsolete; not worth a decoder.
                return other;
            }
            let off = 4 + 4 * (usize::from(has_c) + usize::from(has_k) + usize::from(has_s));
            let Some(rest) = p.get(off..) else {
                return mal(Layer::Ip, "decode.gre_truncated");
            };
            match proto {
                ETH_IPV4 => ipv4(rest, ic),
                ETH_IPV6 => ipv6(rest, ic),
                ETH_TEB => ethernet(rest, ic),
                ETH_PPP => ppp(rest, ic),
                ETH_MPLS | ETH_MPLS_MC => mpls(rest, ic),
                // ERSPAN type II has an 8-byte header and the sequence bit set; type I has
                // neither (Wireshark tells them apart the same way).
                ETH_ERSPAN2 => {
                    let skip = if has_s { 8 } else { 0 };
                    match rest.get(skip..) {
                        Some(r) => ethernet(r, ic),
                        None => mal(Layer::Ip, "decode.erspan_truncated"),
                    }
                }
                // ERSPAN type III: 12-byte header, plus an 8-byte platform sub-header when
                // the O flag (lowest bit of the last byte) is set.
                ETH_ERSPAN3 => {
                    let Some(e) = rest.first_chunk::<12>() else {
                        return mal(Layer::Ip, "decode.erspan_truncated");
                    };
                    let skip = if e[11] & 1 == 1 { 20 } else { 12 };
                    match rest.get(skip..) {
                        Some(r) => ethernet(r, ic),
                        None => mal(Layer::Ip, "decode.erspan_truncated"),
                    }
                }
                _ => other,
            }
        }
        1 => {
            // Enhanced GRE: key field mandatory (payload length + call id), optional
            // sequence and acknowledgement (A flag = 0x0080) numbers.
            let has_a = flags & 0x0080 != 0;
            if proto != ETH_PPP || !has_k {
                return other;
            }
            let Some(plen) = be16(p, 4) else {
                return mal(Layer::Ip, "decode.gre_truncated");
            };
            let off = 8 + 4 * (usize::from(has_s) + usize::from(has_a));
            let Some(rest) = p.get(off..) else {
                return mal(Layer::Ip, "decode.gre_truncated");
            };
            if plen == 0 {
                // Acknowledgement only.
                return other;
            }
            let rest = rest.get(..usize::from(plen)).unwrap_or(rest);
            ppp(rest, ic)
        }
        _ => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::Layer;

    // ---- packet builders (no checksums: the decoder does not check them) ----

    pub(crate) fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
        ];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// One VLAN tag (TCI + inner ethertype); the tag's own TPID is the ethertype before it.
    pub(crate) fn vlan(vid: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&vid.to_be_bytes());
        v.extend_from_slice(&inner_type.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// IPv4 header (+ options) and payload. `frag` = raw flags/offset field.
    pub(crate) fn ip4_full(
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        ident: u16,
        frag: u16,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        assert!(options.len().is_multiple_of(4) && options.len() <= 40);
        let ihl = 20 + options.len();
        let total = (ihl + payload.len()) as u16;
        let mut v = vec![0x40 | (ihl / 4) as u8, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&ident.to_be_bytes());
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[64, proto, 0xde, 0xad]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(options);
        v.extend_from_slice(payload);
        v
    }

    /// The Ethernet/IPv4/UDP fast path gives exactly what the general walk gives, or
    /// declines: every value of each header byte it reads, on top of frames with and
    /// without trailing padding, short payloads and cuts at every length.
    #[test]
    fn fast_path_agrees_with_walk() {
        let mut bases = Vec::new();
        for (sp, dp, body) in [(4000u16, 5000u16, 20usize), (5060, 5060, 0), (1, 4789, 16)] {
            let f = eth(
                ETH_IPV4,
                &ip4(IPPROTO_UDP, &udp_hdr(sp, dp, &vec![0x80; body])),
            );
            let mut padded = f.clone();
            padded.extend_from_slice(&[0; 6]); // Ethernet minimum-size padding
            bases.push(f);
            bases.push(padded);
        }
        let mut fast = 0;
        let mut check = |f: &[u8]| {
            let walked = ethernet(f, Ctx::TOP);
            if let Some(d) = ethernet_ipv4_udp(f) {
                fast += 1;
                assert_eq!(d, walked, "{f:02x?}");
            }
            assert_eq!(decode_frame(linktype::ETHERNET, f), walked, "{f:02x?}");
        };
        for base in &bases {
            for at in [12, 13, 14, 16, 17, 20, 21, 23, 36, 37, 38, 39] {
                for v in 0..=255u8 {
                    let mut f = base.clone();
                    f[at] = v;
                    check(&f);
                }
            }
            for cut in 0..=base.len() {
                check(&base[..cut]);
            }
        }
        assert!(fast > 1000, "the fast path took only {fast} frames");
    }

    pub(crate) fn ip4(proto: u8, payload: &[u8]) -> Vec<u8> {
        ip4_full(
            proto,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            0x1234,
            0x4000,
            &[],
            payload,
        )
    }

    pub(crate) fn ip6_full(nh: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[nh, 64]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(payload);
        v
    }

    pub(crate) const V6A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    pub(crate) const V6B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    pub(crate) fn ip6(nh: u8, payload: &[u8]) -> Vec<u8> {
        ip6_full(nh, V6A, V6B, payload)
    }

    pub(crate) fn udp_hdr(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
        v.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    /// TCP segment; `flags` = raw flag byte.
    pub(crate) fn tcp_hdr(sp: u16, dp: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1]); // ack
        v.extend_from_slice(&[0x60, flags, 0xff, 0xff, 0, 0, 0, 0]); // doff 6 (one option word)
        v.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        v.extend_from_slice(payload);
        v
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn expect_udp<'a>(d: Decoded<'a>) -> (IpAddr, IpAddr, u16, u16, &'a [u8], bool) {
        match d {
            Decoded::Ip {
                src,
                dst,
                l4:
                    L4::Udp {
                        src_port,
                        dst_port,
                        payload,
                    },
                tunnelled,
            } => (src, dst, src_port, dst_port, payload, tunnelled),
            other => panic!("expected UDP, got {other:?}"),
        }
    }

    fn sip_udp_v4() -> Vec<u8> {
        ip4(17, &udp_hdr(5060, 5062, b"OPTIONS sip:x SIP/2.0\r\n\r\n"))
    }

    #[test]
    fn ethernet_ipv4_udp_with_padding() {
        // 60-byte minimum frame: the padding after the IP packet must not reach the payload.
        let mut f = eth(0x0800, &ip4(17, &udp_hdr(1000, 2000, b"hi")));
        f.resize(60, 0xEE);
        let (src, dst, sp, dp, payload, tun) = expect_udp(decode_frame(linktype::ETHERNET, &f));
        assert_eq!((src, dst), (v4([10, 0, 0, 1]), v4([10, 0, 0, 2])));
        assert_eq!((sp, dp), (1000, 2000));
        assert_eq!(payload, b"hi");
        assert!(!tun);
    }

    #[test]
    fn ipv4_options_and_bad_lengths() {
        let p = ip4_full(
            17,
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            7,
            0,
            &[1, 1, 1, 0],
            &udp_hdr(1, 2, b"abc"),
        );
        let (.., payload, _) = expect_udp(decode_frame(linktype::RAW, &p));
        assert_eq!(payload, b"abc");
        // IHL < 5.
        let mut bad = p.clone();
        bad[0] = 0x44;
        assert_eq!(
            decode_frame(linktype::RAW, &bad),
            mal(Layer::Ip, "decode.ipv4_header_length")
        );
        // Total length shorter than the header.
        let mut bad = p.clone();
        bad[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            decode_frame(linktype::RAW, &bad),
            mal(Layer::Ip, "decode.ipv4_total_length")
        );
        // Total length 0 (TSO): the captured bytes are used.
        let mut tso = p.clone();
        tso[2..4].copy_from_slice(&[0, 0]);
        let (.., payload, _) = expect_udp(decode_frame(linktype::RAW, &tso));
        assert_eq!(payload, b"abc");
    }

    #[test]
    fn udp_length_respected_and_snaplen() {
        // UDP length shorter than the IP payload: the UDP length wins.
        let mut u = udp_hdr(1, 2, b"abcdef");
        u[4..6].copy_from_slice(&11u16.to_be_bytes());
        let pkt = ip4(17, &u);
        let (.., payload, _) = expect_udp(decode_frame(linktype::IPV4, &pkt));
        assert_eq!(payload, b"abc");
        // UDP length bogus (< 8): IP length is used.
        u[4..6].copy_from_slice(&3u16.to_be_bytes());
        let pkt = ip4(17, &u);
        let (.., payload, _) = expect_udp(decode_frame(linktype::IPV4, &pkt));
        assert_eq!(payload, b"abcdef");
        // Snaplen cut the packet: deliver what is there.
        let full = eth(0x0800, &ip4(17, &udp_hdr(1, 2, b"0123456789")));
        let cut = &full[..full.len() - 4];
        let (.., payload, _) = expect_udp(decode_frame(linktype::ETHERNET, cut));
        assert_eq!(payload, b"012345");
    }

    #[test]
    fn vlan_qinq_and_0x9100() {
        let inner = sip_udp_v4();
        let one = eth(0x8100, &vlan(10, 0x0800, &inner));
        let two = eth(0x88A8, &vlan(100, 0x8100, &vlan(10, 0x0800, &inner)));
        let old = eth(0x9100, &vlan(5, 0x0800, &inner));
        for f in [one, two, old] {
            let (.., dp, payload, _) = expect_udp(decode_frame(linktype::ETHERNET, &f));
            assert_eq!(dp, 5062);
            assert!(payload.starts_with(b"OPTIONS"));
        }
        // A stack deeper than the cap is malformed, not a loop.
        let mut deep = inner.clone();
        let mut et = 0x0800;
        for _ in 0..20 {
            deep = vlan(1, et, &deep);
            et = 0x8100;
        }
        assert_eq!(
            decode_frame(linktype::ETHERNET, &eth(0x8100, &deep)),
            mal(Layer::Link, "decode.vlan_depth")
        );
    }

    #[test]
    fn non_ip_and_unsupported() {
        assert_eq!(
            decode_frame(linktype::ETHERNET, &eth(0x0806, &[0; 28])),
            Decoded::NonIp { ethertype: 0x0806 }
        );
        assert_eq!(
            decode_frame(linktype::ETHERNET, &eth(0x88CC, &[0; 28])),
            Decoded::NonIp { ethertype: 0x88CC }
        );
        assert_eq!(
            decode_frame(999, &[0; 40]),
            Decoded::UnsupportedLink { link: 999 }
        );
    }

    #[test]
    fn sll_and_sll2() {
        let ip = sip_udp_v4();
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        let (.., payload, _) = expect_udp(decode_frame(linktype::LINUX_SLL, &sll));
        assert!(payload.starts_with(b"OPTIONS"));
        let mut sll2 = vec![
            0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(&ip6(17, &udp_hdr(5060, 5060, b"v6")));
        let (src, .., payload, _) = expect_udp(decode_frame(linktype::LINUX_SLL2, &sll2));
        assert_eq!(src, IpAddr::V6(Ipv6Addr::from(V6A)));
        assert_eq!(payload, b"v6");
        // Netlink in SLL is not an ethertype.
        let mut nl = sll.clone();
        nl[2..4].copy_from_slice(&824u16.to_be_bytes());
        assert!(matches!(
            decode_frame(linktype::LINUX_SLL, &nl),
            Decoded::NonIp { .. }
        ));
    }

    #[test]
    fn raw_links_pick_by_version() {
        let v4p = sip_udp_v4();
        let v6p = ip6(17, &udp_hdr(1, 2, b"x"));
        for link in [linktype::RAW, linktype::RAW_BSD12, linktype::RAW_BSD14] {
            expect_udp(decode_frame(link, &v4p));
            expect_udp(decode_frame(link, &v6p));
            assert_eq!(
                decode_frame(link, &[0x50; 30]),
                mal(Layer::Ip, "decode.bad_ip_version")
            );
        }
        expect_udp(decode_frame(linktype::IPV4, &v4p));
        expect_udp(decode_frame(linktype::IPV6, &v6p));
        assert_eq!(
            decode_frame(linktype::IPV4, &v6p),
            mal(Layer::Ip, "decode.bad_ip_version")
        );
    }

    #[test]
    fn null_and_loop_both_byte_orders() {
        let v4p = sip_udp_v4();
        let v6p = ip6(17, &udp_hdr(1, 2, b"x"));
        for link in [linktype::NULL, linktype::LOOP] {
            for fam in [2u32] {
                for hdr in [fam.to_le_bytes(), fam.to_be_bytes()] {
                    let mut f = hdr.to_vec();
                    f.extend_from_slice(&v4p);
                    expect_udp(decode_frame(link, &f));
                }
            }
            for fam in [24u32, 28, 30] {
                for hdr in [fam.to_le_bytes(), fam.to_be_bytes()] {
                    let mut f = hdr.to_vec();
                    f.extend_from_slice(&v6p);
                    expect_udp(decode_frame(link, &f));
                }
            }
            let mut f = 7u32.to_le_bytes().to_vec();
            f.extend_from_slice(&v4p);
            assert_eq!(decode_frame(link, &f), Decoded::NonIp { ethertype: 7 });
        }
    }

    #[test]
    fn ppp_pppoe_ppp_ether() {
        let v4p = sip_udp_v4();
        // PPP with and without address/control, with a compressed protocol field.
        for hdr in [
            &[0xFF, 0x03, 0x00, 0x21][..],
            &[0x00, 0x21],
            &[0x21],
            &[0xFF, 0x03, 0x21],
        ] {
            let mut f = hdr.to_vec();
            f.extend_from_slice(&v4p);
            expect_udp(decode_frame(linktype::PPP, &f));
        }
        let mut f = vec![0xFF, 0x03, 0x00, 0x57];
        f.extend_from_slice(&ip6(17, &udp_hdr(1, 2, b"x")));
        expect_udp(decode_frame(linktype::PPP, &f));
        assert_eq!(
            decode_frame(linktype::PPP, &[0xFF, 0x03, 0xC0, 0x21, 1, 2]),
            Decoded::NonIp { ethertype: 0xC021 }
        );
        // PPPoE session over Ethernet, with Ethernet padding beyond the PPPoE length.
        let mut sess = vec![0x11, 0x00, 0x12, 0x34];
        sess.extend_from_slice(&((v4p.len() + 2) as u16).to_be_bytes());
        sess.extend_from_slice(&[0x00, 0x21]);
        sess.extend_from_slice(&v4p);
        let mut fr = eth(0x8864, &sess);
        fr.extend_from_slice(&[0; 10]);
        let (.., payload, _) = expect_udp(decode_frame(linktype::ETHERNET, &fr));
        assert!(payload.ends_with(b"\r\n\r\n"));
        // PPP_ETHER: the frame starts at the PPPoE header.
        expect_udp(decode_frame(linktype::PPP_ETHER, &sess));
        // Discovery stage.
        assert!(matches!(
            decode_frame(linktype::PPP_ETHER, &[0x11, 0x09, 0, 0, 0, 0]),
            Decoded::NonIp { .. }
        ));
    }

    #[test]
    fn mpls_stack() {
        let v4p = sip_udp_v4();
        let mut m = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
        m.extend_from_slice(&v4p);
        expect_udp(decode_frame(linktype::ETHERNET, &eth(0x8847, &m)));
    }

    #[test]
    fn ipv6_extension_headers() {
        let u = udp_hdr(5060, 5060, b"ext");
        // Hop-by-hop (8) -> routing (16) -> destination options (8) -> UDP.
        let mut p = vec![43, 0, 1, 4, 0, 0, 0, 0];
        p.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&u);
        let f = eth(0x86DD, &ip6(0, &p));
        let (.., payload, _) = expect_udp(decode_frame(linktype::ETHERNET, &f));
        assert_eq!(payload, b"ext");
        // Atomic fragment header (offset 0, M=0) is a whole packet.
        let mut a = vec![17, 0, 0, 0, 0, 0, 0, 9];
        a.extend_from_slice(&u);
        expect_udp(decode_frame(linktype::IPV6, &ip6(44, &a)));
        // Truncated extension header.
        let cut = ip6(0, &[17, 3, 0, 0]);
        assert_eq!(
            decode_frame(linktype::IPV6, &cut),
            mal(Layer::Ip, "decode.ipv6_ext_truncated")
        );
        // No next header.
        assert!(matches!(
            decode_frame(linktype::IPV6, &ip6(59, &[])),
            Decoded::Ip {
                l4: L4::Other { proto: 59 },
                ..
            }
        ));
    }

    #[test]
    fn fragments_v4_and_v6() {
        let f = ip4_full(
            17,
            [1, 2, 3, 4],
            [5, 6, 7, 8],
            0xBEEF,
            0x2000 | 3,
            &[],
            b"01234567",
        );
        match decode_frame(linktype::IPV4, &f) {
            Decoded::Fragment(fr) => {
                assert_eq!(fr.ident, 0xBEEF);
                assert_eq!(fr.offset, 24);
                assert!(fr.more);
                assert_eq!(fr.proto, 17);
                assert_eq!(fr.data, b"01234567");
            }
            o => panic!("{o:?}"),
        }
        // IPv6 fragment header: offset 2 (x8 = 16 bytes), M=0, ident 0x01020304.
        let mut fh = vec![17, 0, 0, 16, 1, 2, 3, 4];
        fh.extend_from_slice(b"tail");
        match decode_frame(linktype::IPV6, &ip6(44, &fh)) {
            Decoded::Fragment(fr) => {
                assert_eq!(fr.ident, 0x01020304);
                assert_eq!(fr.offset, 16);
                assert!(!fr.more);
                assert_eq!(fr.proto, 17);
                assert_eq!(fr.data, b"tail");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn tcp_fields_and_bad_offset() {
        let seg = tcp_hdr(5060, 40000, 0xFFFF_FFF0, 0x19, b"SIP/2.0 200 OK\r\n");
        match decode_frame(linktype::IPV4, &ip4(6, &seg)) {
            Decoded::Ip {
                l4:
                    L4::Tcp {
                        src_port,
                        dst_port,
                        seq,
                        flags,
                        payload,
                    },
                ..
            } => {
                assert_eq!((src_port, dst_port, seq), (5060, 40000, 0xFFFF_FFF0));
                assert!(flags.fin && flags.ack && !flags.syn && !flags.rst);
                assert_eq!(payload, b"SIP/2.0 200 OK\r\n");
            }
            o => panic!("{o:?}"),
        }
        let mut bad = seg.clone();
        bad[12] = 0x40;
        assert_eq!(
            decode_frame(linktype::IPV4, &ip4(6, &bad)),
            mal(Layer::Tcp, "decode.tcp_header_length")
        );
        let mut big = seg.clone();
        big[12] = 0xF0; // 60-byte header in a 40-byte segment
        assert_eq!(
            decode_frame(linktype::IPV4, &ip4(6, &big[..30])),
            mal(Layer::Tcp, "decode.tcp_truncated")
        );
    }

    #[test]
    fn icmp_and_other() {
        // Port unreachable quoting an IP/UDP header.
        let mut ic = vec![3, 3, 0, 0, 0, 0, 0, 0];
        ic.extend_from_slice(&sip_udp_v4()[..28]);
        assert!(matches!(
            decode_frame(linktype::IPV4, &ip4(1, &ic)),
            Decoded::Ip {
                l4: L4::Icmp {
                    v6: false,
                    icmp_type: 3,
                    code: 3
                },
                ..
            }
        ));
        assert!(matches!(
            decode_frame(linktype::IPV6, &ip6(58, &[1, 4, 0, 0, 0, 0, 0, 0])),
            Decoded::Ip {
                l4: L4::Icmp {
                    v6: true,
                    icmp_type: 1,
                    code: 4
                },
                ..
            }
        ));
        assert!(matches!(
            decode_frame(linktype::IPV4, &ip4(132, &[0; 12])),
            Decoded::Ip {
                l4: L4::Other { proto: 132 },
                tunnelled: false,
                ..
            }
        ));
    }

    #[test]
    fn ip_in_ip_all_four() {
        let in4 = ip4_full(
            17,
            [192, 168, 0, 1],
            [192, 168, 0, 2],
            1,
            0,
            &[],
            &udp_hdr(5060, 5060, b"in"),
        );
        let in6 = ip6(17, &udp_hdr(5060, 5060, b"in"));
        let cases = [
            ip4(4, &in4),  // 4in4
            ip4(41, &in6), // 6in4
            ip6(4, &in4),  // 4in6
            ip6(41, &in6), // 6in6
        ];
        for (i, c) in cases.iter().enumerate() {
            let (src, .., payload, tun) = expect_udp(decode_frame(linktype::RAW, c));
            assert!(tun, "case {i}");
            assert_eq!(payload, b"in");
            // The tuple is the inner one.
            if i % 2 == 0 {
                assert_eq!(src, v4([192, 168, 0, 1]));
            } else {
                assert_eq!(src, IpAddr::V6(Ipv6Addr::from(V6A)));
            }
        }
        // Nesting beyond the cap.
        let mut p = in4.clone();
        for _ in 0..10 {
            p = ip4(4, &p);
        }
        assert_eq!(
            decode_frame(linktype::RAW, &p),
            mal(Layer::Ip, "decode.tunnel_depth")
        );
    }

    fn gre_hdr(flags: u16, proto: u16, extra_words: usize) -> Vec<u8> {
        let mut g = flags.to_be_bytes().to_vec();
        g.extend_from_slice(&proto.to_be_bytes());
        g.extend(std::iter::repeat_n(0xAB, 4 * extra_words));
        g
    }

    #[test]
    fn gre_variants() {
        let in4 = ip4_full(
            17,
            [172, 16, 0, 1],
            [172, 16, 0, 2],
            1,
            0,
            &[],
            &udp_hdr(5060, 5060, b"gre"),
        );
        // Plain, with checksum+key+sequence.
        for (flags, words) in [(0u16, 0), (0x8000, 1), (0x2000, 1), (0xB000, 3)] {
            let mut g = gre_hdr(flags, 0x0800, words);
            g.extend_from_slice(&in4);
            let pkt = ip4(47, &g);
            let (src, .., payload, tun) = expect_udp(decode_frame(linktype::RAW, &pkt));
            assert!(tun);
            assert_eq!(src, v4([172, 16, 0, 1]));
            assert_eq!(payload, b"gre");
        }
        // IPv6 payload.
        let mut g = gre_hdr(0, 0x86DD, 0);
        g.extend_from_slice(&ip6(17, &udp_hdr(1, 2, b"g6")));
        expect_udp(decode_frame(linktype::RAW, &ip4(47, &g)));
        // Transparent Ethernet bridging.
        let mut g = gre_hdr(0x2000, 0x6558, 1);
        g.extend_from_slice(&eth(0x0800, &in4));
        expect_udp(decode_frame(linktype::RAW, &ip4(47, &g)));
        // ERSPAN type II (sequence bit set, 8-byte header).
        let mut g = gre_hdr(0x1000, 0x88BE, 1);
        g.extend_from_slice(&[0x10, 0x01, 0, 0, 0, 0, 0, 0]);
        g.extend_from_slice(&eth(0x0800, &in4));
        expect_udp(decode_frame(linktype::RAW, &ip4(47, &g)));
        // ERSPAN type III without sub-header.
        let mut g = gre_hdr(0x1000, 0x22EB, 1);
        g.extend_from_slice(&[0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        g.extend_from_slice(&eth(0x0800, &in4));
        expect_udp(decode_frame(linktype::RAW, &ip4(47, &g)));
        // PPTP enhanced GRE (version 1) with sequence number, carrying PPP.
        let mut ppp = vec![0xFF, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(&in4);
        let mut g = vec![0x30, 0x01, 0x88, 0x0B];
        g.extend_from_slice(&(ppp.len() as u16).to_be_bytes());
        g.extend_from_slice(&[0x00, 0x07, 0, 0, 0, 1]);
        g.extend_from_slice(&ppp);
        let pkt = ip4(47, &g);
        let (.., payload, tun) = expect_udp(decode_frame(linktype::RAW, &pkt));
        assert!(tun);
        assert_eq!(payload, b"gre");
        // Unknown GRE payload stays GRE.
        let g = gre_hdr(0, 0x1234, 0);
        assert!(matches!(
            decode_frame(linktype::RAW, &ip4(47, &g)),
            Decoded::Ip {
                l4: L4::Other { proto: 47 },
                tunnelled: false,
                ..
            }
        ));
    }

    #[test]
    fn vxlan_inner_ethernet() {
        let in4 = ip4_full(
            17,
            [172, 16, 0, 1],
            [172, 16, 0, 2],
            1,
            0,
            &[],
            &udp_hdr(5060, 5060, b"vx"),
        );
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2A, 0];
        vx.extend_from_slice(&eth(0x0800, &in4));
        let f = eth(0x0800, &ip4(17, &udp_hdr(54321, 4789, &vx)));
        let (src, .., payload, tun) = expect_udp(decode_frame(linktype::ETHERNET, &f));
        assert!(tun);
        assert_eq!(src, v4([172, 16, 0, 1]));
        assert_eq!(payload, b"vx");
        // Not VXLAN-looking (RTP-like first byte) on port 4789: plain UDP.
        let f = eth(
            0x0800,
            &ip4(17, &udp_hdr(1, 4789, &[0x80, 0, 0, 0, 0, 0, 0, 0, 1])),
        );
        let (.., dp, _, tun) = expect_udp(decode_frame(linktype::ETHERNET, &f));
        assert_eq!(dp, 4789);
        assert!(!tun);
    }

    /// Every prefix of a well-formed packet decodes without panicking, and a cut inside a
    /// header is reported as that layer's truncation.
    #[test]
    fn every_truncation_point() {
        let in4 = ip4(17, &udp_hdr(5060, 5060, b"payload"));
        let mut gre = gre_hdr(0xB000, 0x0800, 3);
        gre.extend_from_slice(&in4);
        let frames: Vec<(u32, Vec<u8>)> = vec![
            (
                linktype::ETHERNET,
                eth(0x0800, &ip4(17, &udp_hdr(1, 2, b"payload"))),
            ),
            (
                linktype::ETHERNET,
                eth(
                    0x88A8,
                    &vlan(
                        1,
                        0x8100,
                        &vlan(
                            2,
                            0x86DD,
                            &ip6(0, &{
                                let mut p = vec![6, 0, 0, 0, 0, 0, 0, 0];
                                p.extend_from_slice(&tcp_hdr(1, 2, 3, 0x18, b"data"));
                                p
                            }),
                        ),
                    ),
                ),
            ),
            (linktype::RAW, ip4(47, &gre)),
            (linktype::RAW, ip6(41, &ip6(17, &udp_hdr(1, 2, b"x")))),
            (linktype::LINUX_SLL2, {
                let mut v = vec![
                    0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
                ];
                v.extend_from_slice(&in4);
                v
            }),
            (linktype::PPP_ETHER, {
                let mut v = vec![0x11, 0, 0, 1, 0, (in4.len() + 2) as u8, 0, 0x21];
                v.extend_from_slice(&in4);
                v
            }),
        ];
        for (link, f) in &frames {
            assert!(
                !matches!(decode_frame(*link, f), Decoded::Malformed { .. }),
                "{link}"
            );
            for cut in 0..f.len() {
                match decode_frame(*link, &f[..cut]) {
                    Decoded::Malformed { reason, .. } => {
                        assert!(
                            reason.starts_with("decode.") && reason.ends_with("_truncated"),
                            "{reason}"
                        )
                    }
                    // Cut inside the payload only: still a packet.
                    Decoded::Ip { .. } => {}
                    o => panic!("link {link} cut {cut}: {o:?}"),
                }
            }
        }
    }

    /// Timing of the hot path (Ethernet/IPv4/UDP RTP). Run with
    /// `cargo test --release --lib decode::link::tests::bench_decode -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_decode() {
        let mut rtp = vec![0x80, 0x08, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        rtp.extend_from_slice(&[0xD5; 160]);
        let f = eth(0x0800, &ip4(17, &udp_hdr(10000, 20000, &rtp)));
        let n = 20_000_000u32;
        let t = std::time::Instant::now();
        let mut acc = 0usize;
        let mut done = 0u32;
        // The clock is read once per million packets: reading it costs as much as a decode.
        'outer: for _ in 0..n / 1_000_000 {
            for i in 0..1_000_000u32 {
                let d = decode_frame(
                    std::hint::black_box(linktype::ETHERNET),
                    std::hint::black_box(&f),
                );
                if let Decoded::Ip {
                    l4: L4::Udp { payload, .. },
                    ..
                } = d
                {
                    acc = acc.wrapping_add(payload.len() ^ i as usize);
                }
            }
            done += 1_000_000;
            if t.elapsed().as_secs() > 20 {
                break 'outer;
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(done);
        eprintln!("decode_frame eth/ipv4/udp: {ns:.2} ns/packet ({acc})");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]
            #[test]
            fn never_panics(link in proptest::sample::select(vec![0u32, 1, 9, 12, 14, 51, 101, 108, 113, 228, 229, 276, 7]),
                            data in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = decode_frame(link, &data);
            }

            /// Random bytes behind valid headers reach the deeper decoders.
            #[test]
            fn never_panics_behind_headers(tail in proptest::collection::vec(any::<u8>(), 0..120),
                                           which in 0u8..6) {
                let f = match which {
                    0 => eth(0x0800, &ip4(17, &tail)),
                    1 => eth(0x0800, &ip4(47, &tail)),
                    2 => eth(0x86DD, &ip6(0, &tail)),
                    3 => ip4(6, &tail),
                    4 => ip6(41, &tail),
                    _ => eth(0x0800, &ip4(17, &udp_hdr(1, 4789, &tail))),
                };
                let link = if which == 3 || which == 4 { linktype::RAW } else { linktype::ETHERNET };
                let _ = decode_frame(link, &f);
            }
        }
    }
}
