//! Packet builders: link layers (Ethernet with 802.1Q/QinQ tags, Linux SLL, raw IP),
//! IPv4 (header checksum, DF/MF/fragment offset, TTL, ident) and IPv6, UDP and TCP with
//! correct checksums, IPv4/IPv6 fragmentation of one datagram (any delivery order), and
//! IP-in-IP / GRE encapsulation. All functions build fresh byte vectors; nothing here
//! reads untrusted input.

use crate::capture::linktype;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88A8;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_IPV6_FRAG: u8 = 44;
pub const PROTO_GRE: u8 = 47;

/// TCP flag bits.
pub mod tcpflags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// The link layer a frame is wrapped in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II; `vlans` outermost first (two tags = QinQ, outer TPID 0x88A8).
    Ethernet {
        src: [u8; 6],
        dst: [u8; 6],
        vlans: Vec<u16>,
    },
    /// Linux cooked capture v1; `pkttype` 0 = to us, 4 = outgoing.
    Sll { pkttype: u16, addr: [u8; 6] },
    /// Raw IP (LINKTYPE_RAW).
    Raw,
}

/// A stable locally-administered MAC for an address, so frames look plausible and
/// conversations are consistent without configuring MACs per host.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let b = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

fn ethertype_of(ip_packet: &[u8]) -> u16 {
    match ip_packet.first().map(|b| b >> 4) {
        Some(6) => ETHERTYPE_IPV6,
        _ => ETHERTYPE_IPV4,
    }
}

impl Link {
    pub fn linktype(&self) -> u32 {
        match self {
            Link::Ethernet { .. } => linktype::ETHERNET,
            Link::Sll { .. } => linktype::LINUX_SLL,
            Link::Raw => linktype::RAW,
        }
    }

    /// Prepends this link header to an IP packet (EtherType from the IP version).
    pub fn wrap(&self, ip_packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ip_packet.len() + 24);
        self.wrap_into(ip_packet, &mut out);
        out
    }

    pub fn wrap_into(&self, ip_packet: &[u8], out: &mut Vec<u8>) {
        let et = ethertype_of(ip_packet);
        match self {
            Link::Ethernet { src, dst, vlans } => {
                out.extend_from_slice(dst);
                out.extend_from_slice(src);
                let n = vlans.len();
                for (i, v) in vlans.iter().enumerate() {
                    let tpid = if n > 1 && i == 0 {
                        ETHERTYPE_QINQ
                    } else {
                        ETHERTYPE_VLAN
                    };
                    out.extend_from_slice(&tpid.to_be_bytes());
                    out.extend_from_slice(&(v & 0x0FFF).to_be_bytes());
                }
                out.extend_from_slice(&et.to_be_bytes());
            }
            Link::Sll { pkttype, addr } => {
                out.extend_from_slice(&pkttype.to_be_bytes());
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(addr);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&et.to_be_bytes());
            }
            Link::Raw => {}
        }
        out.extend_from_slice(ip_packet);
    }
}

/// Ones'-complement sum of 16-bit big-endian words, added to `acc` (not folded).
pub fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut it = data.chunks_exact(2);
    for c in &mut it {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = it.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds and complements a partial sum into an Internet checksum.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
}

/// RFC 1071 checksum of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum16(data, 0))
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    let mut acc = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
        }
        _ => {
            acc = sum16(&v6(src).octets(), acc);
            acc = sum16(&v6(dst).octets(), acc);
        }
    }
    acc = acc.wrapping_add(u32::from(proto));
    acc = acc.wrapping_add(len >> 16).wrapping_add(len & 0xFFFF);
    acc
}

/// An address as IPv6 (IPv4 mapped), used when a caller mixes families.
fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(x) => x.to_ipv6_mapped(),
        IpAddr::V6(x) => x,
    }
}

/// UDP header + payload with checksum over the pseudo-header of `src`/`dst`.
pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&(u16::try_from(len).unwrap_or(u16::MAX)).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let acc = sum16(&out, pseudo_sum(src, dst, PROTO_UDP, len as u32));
    let mut c = fold(acc);
    if c == 0 {
        c = 0xFFFF; // 0 means "no checksum" in UDP
    }
    out[6..8].copy_from_slice(&c.to_be_bytes());
    out
}

/// TCP segment (20-byte header, or 24 with an MSS option on SYN) with checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let syn = flags & tcpflags::SYN != 0;
    let hlen = if syn { 24 } else { 20 };
    let mut out = Vec::with_capacity(hlen + payload.len());
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.push(((hlen / 4) as u8) << 4);
    out.push(flags);
    out.extend_from_slice(&window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    if syn {
        out.extend_from_slice(&[2, 4, 0x05, 0xB4]); // MSS 1460
    }
    out.extend_from_slice(payload);
    let len = out.len() as u32;
    let c = fold(sum16(&out, pseudo_sum(src, dst, PROTO_TCP, len)));
    out[16..18].copy_from_slice(&c.to_be_bytes());
    out
}

/// IPv4 header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Hdr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub ident: u16,
    pub tos: u8,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
}

impl Ipv4Hdr {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ident: u16) -> Self {
        Ipv4Hdr {
            src,
            dst,
            proto,
            ttl: 64,
            ident,
            tos: 0,
            df: false,
            mf: false,
            frag_offset: 0,
        }
    }
}

/// IPv4 packet with a correct header checksum.
pub fn ipv4(h: &Ipv4Hdr, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut out = Vec::with_capacity(total);
    out.push(0x45);
    out.push(h.tos);
    out.extend_from_slice(&(u16::try_from(total).unwrap_or(u16::MAX)).to_be_bytes());
    out.extend_from_slice(&h.ident.to_be_bytes());
    let ff = (u16::from(h.df) << 14) | (u16::from(h.mf) << 13) | (h.frag_offset & 0x1FFF);
    out.extend_from_slice(&ff.to_be_bytes());
    out.push(h.ttl);
    out.push(h.proto);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&h.src.octets());
    out.extend_from_slice(&h.dst.octets());
    let c = internet_checksum(&out);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// IPv6 packet (no extension headers added here).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + payload.len());
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&(u16::try_from(payload.len()).unwrap_or(u16::MAX)).to_be_bytes());
    out.push(next);
    out.push(hop_limit);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(payload);
    out
}

/// An IP packet of the right family around a transport payload. Mixed families are
/// carried as IPv6 with the IPv4 address mapped (callers should not do that).
pub fn ip(src: IpAddr, dst: IpAddr, proto: u8, ident: u16, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(&Ipv4Hdr::new(s, d, proto, ident), l4),
        _ => ipv6(v6(src), v6(dst), proto, 64, l4),
    }
}

/// A complete UDP/IP packet.
pub fn udp_ip(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    ident: u16,
    payload: &[u8],
) -> Vec<u8> {
    ip(
        src,
        dst,
        PROTO_UDP,
        ident,
        &udp(src, sport, dst, dport, payload),
    )
}

/// Splits an IPv4 datagram's transport bytes into fragments no larger than `mtu` bytes
/// of IP packet each (in order). `h.frag_offset`/`h.mf` are overwritten.
pub fn fragment_ipv4(h: &Ipv4Hdr, l4: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let chunk = (mtu.saturating_sub(20) / 8 * 8).max(8);
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < l4.len() || out.is_empty() {
        let end = (off + chunk).min(l4.len());
        let mut fh = *h;
        fh.frag_offset = (off / 8) as u16;
        fh.mf = end < l4.len();
        fh.df = false;
        out.push(ipv4(&fh, l4.get(off..end).unwrap_or(&[])));
        off = end;
        if chunk == 0 {
            break;
        }
    }
    out
}

/// Splits into IPv6 fragments (Fragment extension header, identification `ident`).
pub fn fragment_ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    ident: u32,
    l4: &[u8],
    mtu: usize,
) -> Vec<Vec<u8>> {
    let chunk = (mtu.saturating_sub(48) / 8 * 8).max(8);
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < l4.len() || out.is_empty() {
        let end = (off + chunk).min(l4.len());
        let mut p = Vec::with_capacity(8 + end - off);
        p.push(next);
        p.push(0);
        let offm = (((off / 8) as u16) << 3) | u16::from(end < l4.len());
        p.extend_from_slice(&offm.to_be_bytes());
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(l4.get(off..end).unwrap_or(&[]));
        out.push(ipv6(src, dst, PROTO_IPV6_FRAG, 64, &p));
        off = end;
    }
    out
}

/// Reorders items by `order` (indices into `items`); unknown or repeated indices are
/// ignored and items not named are appended in their original order.
pub fn permute<T: Clone>(items: &[T], order: &[usize]) -> Vec<T> {
    let mut used = vec![false; items.len()];
    let mut out = Vec::with_capacity(items.len());
    for &i in order {
        if let (Some(it), Some(u)) = (items.get(i), used.get_mut(i))
            && !*u
        {
            *u = true;
            out.push(it.clone());
        }
    }
    for (it, u) in items.iter().zip(&used) {
        if !*u {
            out.push(it.clone());
        }
    }
    out
}

/// IP-in-IP: `inner` (an IPv4 or IPv6 packet) inside an outer IP header.
pub fn ipip(outer_src: IpAddr, outer_dst: IpAddr, ident: u16, inner: &[u8]) -> Vec<u8> {
    let proto = if ethertype_of(inner) == ETHERTYPE_IPV6 {
        PROTO_IPV6
    } else {
        PROTO_IPIP
    };
    ip(outer_src, outer_dst, proto, ident, inner)
}

/// GRE (RFC 2784, no optional fields) carrying `inner`.
pub fn gre(outer_src: IpAddr, outer_dst: IpAddr, ident: u16, inner: &[u8]) -> Vec<u8> {
    let mut g = Vec::with_capacity(4 + inner.len());
    g.extend_from_slice(&[0, 0]);
    g.extend_from_slice(&ethertype_of(inner).to_be_bytes());
    g.extend_from_slice(inner);
    ip(outer_src, outer_dst, PROTO_GRE, ident, &g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2 → checksum 220d
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(&Ipv4Hdr::new(A, B, PROTO_UDP, 0x1234), b"abc");
        assert_eq!(internet_checksum(&p[..20]), 0);
        assert_eq!(p[2..4], [0, 23]);
        assert_eq!(p[4..6], [0x12, 0x34]);
    }

    #[test]
    fn udp_checksum_verifies_with_pseudo_header_v4_and_v6() {
        for (s, d) in [
            (IpAddr::V4(A), IpAddr::V4(B)),
            (
                IpAddr::V6("2001:db8::1".parse().unwrap()),
                IpAddr::V6("2001:db8::2".parse().unwrap()),
            ),
        ] {
            let u = udp(s, 5060, d, 5070, b"hello world");
            let acc = sum16(&u, pseudo_sum(s, d, PROTO_UDP, u.len() as u32));
            assert_eq!(fold(acc), 0, "checksum verifies");
            let pkt = udp_ip(s, 5060, d, 5070, 1, b"hello world");
            let sp = SlicedPacket::from_ip(&pkt).unwrap();
            match sp.transport {
                Some(TransportSlice::Udp(u)) => {
                    assert_eq!(u.source_port(), 5060);
                    assert_eq!(u.payload(), b"hello world");
                }
                _ => panic!("not udp"),
            }
        }
    }

    #[test]
    fn tcp_checksum_verifies() {
        let s = IpAddr::V4(A);
        let d = IpAddr::V4(B);
        for flags in [tcpflags::SYN, tcpflags::PSH | tcpflags::ACK] {
            let t = tcp(s, 1000, d, 5060, 7, 9, flags, 65535, b"data!");
            assert_eq!(
                fold(sum16(&t, pseudo_sum(s, d, PROTO_TCP, t.len() as u32))),
                0
            );
        }
    }

    #[test]
    fn link_headers() {
        let ipp = udp_ip(IpAddr::V4(A), 1, IpAddr::V4(B), 2, 0, b"x");
        let eth = Link::Ethernet {
            src: [1; 6],
            dst: [2; 6],
            vlans: vec![100, 200],
        };
        let f = eth.wrap(&ipp);
        assert_eq!(f[12..14], [0x88, 0xA8]);
        assert_eq!(f[16..18], [0x81, 0x00]);
        assert_eq!(f[20..22], [0x08, 0x00]);
        let sp = SlicedPacket::from_ethernet(&f).unwrap();
        assert!(matches!(sp.net, Some(NetSlice::Ipv4(_))));
        let sll = Link::Sll {
            pkttype: 4,
            addr: [3; 6],
        }
        .wrap(&ipp);
        assert_eq!(sll.len(), ipp.len() + 16);
        assert_eq!(sll[14..16], [0x08, 0x00]);
        assert_eq!(Link::Raw.wrap(&ipp), ipp);
    }

    #[test]
    fn ipv4_fragments_reassemble_in_any_order() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let l4 = udp(IpAddr::V4(A), 5060, IpAddr::V4(B), 5060, &payload);
        let fr = fragment_ipv4(&Ipv4Hdr::new(A, B, PROTO_UDP, 77), &l4, 1500);
        assert_eq!(fr.len(), 3);
        let shuffled = permute(&fr, &[2, 0, 1]);
        let mut re = vec![0u8; l4.len()];
        let mut got = 0;
        let mut last_seen = false;
        for f in &shuffled {
            assert!(f.len() <= 1500);
            assert_eq!(internet_checksum(&f[..20]), 0);
            let ff = u16::from_be_bytes([f[6], f[7]]);
            let off = usize::from(ff & 0x1FFF) * 8;
            let mf = ff & 0x2000 != 0;
            let data = &f[20..];
            re[off..off + data.len()].copy_from_slice(data);
            got += data.len();
            if !mf {
                last_seen = true;
                assert_eq!(off + data.len(), l4.len());
            }
        }
        assert!(last_seen);
        assert_eq!(got, l4.len());
        assert_eq!(re, l4);
    }

    #[test]
    fn ipv6_fragments_reassemble() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let l4 = udp(IpAddr::V6(s), 1, IpAddr::V6(d), 2, &[7u8; 2000]);
        let fr = fragment_ipv6(s, d, PROTO_UDP, 0xdead, &l4, 1280);
        assert_eq!(fr.len(), 2);
        let mut re = Vec::new();
        for f in &fr {
            assert_eq!(f[6], PROTO_IPV6_FRAG);
            assert_eq!(f[40], PROTO_UDP);
            assert_eq!(u32::from_be_bytes([f[44], f[45], f[46], f[47]]), 0xdead);
            re.extend_from_slice(&f[48..]);
        }
        assert_eq!(re, l4);
    }

    #[test]
    fn permute_handles_bad_orders() {
        assert_eq!(permute(&[1, 2, 3], &[2, 2, 9]), vec![3, 1, 2]);
    }

    #[test]
    fn encapsulations() {
        let inner = udp_ip(IpAddr::V4(A), 1, IpAddr::V4(B), 2, 0, b"z");
        let o = ipip(IpAddr::V4(B), IpAddr::V4(A), 5, &inner);
        assert_eq!(o[9], PROTO_IPIP);
        assert_eq!(&o[20..], &inner[..]);
        let g = gre(IpAddr::V4(B), IpAddr::V4(A), 5, &inner);
        assert_eq!(g[9], PROTO_GRE);
        assert_eq!(g[22..24], [0x08, 0x00]);
        assert_eq!(&g[24..], &inner[..]);
    }
}
