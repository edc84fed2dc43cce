//! RTCP compound packets (RFC 3550 §6): SR, RR, SDES (CNAME), BYE, APP, XR (RFC 3611,
//! VoIP Metrics block type 7), plus the RFC 3550 §6.4.1 round-trip-time helper.
//!
//! Owns: bounds-checked parsing of a compound datagram. Every packet's length field is
//! validated against the datagram; report blocks, SDES chunks and XR blocks are checked
//! against their packet. Parsing stops at the first malformed packet and returns what
//! parsed before it plus a stable anomaly id.

use serde::{Deserialize, Serialize};

/// One report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost as a ratio 0..1.
    pub fraction_lost: f64,
    /// Cumulative lost (24-bit signed).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

/// XR VoIP Metrics block (RFC 3611 §4.7), the fields we report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XrVoip {
    pub ssrc: u32,
    pub loss_rate: u8,
    pub discard_rate: u8,
    pub round_trip_delay_ms: u16,
    pub end_system_delay_ms: u16,
    pub r_factor: u8,
    pub mos_lq: u8,
    pub mos_cq: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RtcpPacket {
    Sr {
        ssrc: u32,
        ntp_msw: u32,
        ntp_lsw: u32,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
        reports: Vec<ReportBlock>,
    },
    Rr {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    Sdes {
        /// (ssrc, CNAME) pairs.
        chunks: Vec<(u32, Option<String>)>,
    },
    Bye {
        ssrcs: Vec<u32>,
    },
    App {
        ssrc: u32,
    },
    Xr {
        ssrc: u32,
        voip: Vec<XrVoip>,
    },
    Other {
        pt: u8,
    },
}

/// Anomaly ids (layer rtp).
pub const BAD_VERSION: &str = "rtcp.bad_version";
pub const TRUNCATED: &str = "rtcp.truncated";
pub const BAD_LENGTH: &str = "rtcp.bad_length";
pub const BAD_PADDING: &str = "rtcp.bad_padding";
pub const BLOCK_OVERRUN: &str = "rtcp.block_overrun";

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *d.get(at)?,
        *d.get(at.checked_add(1)?)?,
    ]))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

fn report_blocks(body: &[u8], at: usize, count: usize) -> Option<Vec<ReportBlock>> {
    let mut v = Vec::with_capacity(count);
    for i in 0..count {
        let o = at.checked_add(i.checked_mul(24)?)?;
        let b = body.get(o..o.checked_add(24)?)?;
        let lost_raw = be32(b, 4)?;
        // 24-bit two's complement.
        let cum = ((lost_raw & 0x00FF_FFFF) << 8) as i32 >> 8;
        v.push(ReportBlock {
            ssrc: be32(b, 0)?,
            fraction_lost: f64::from(lost_raw >> 24) / 256.0,
            cumulative_lost: cum,
            highest_seq: be32(b, 8)?,
            jitter: be32(b, 12)?,
            lsr: be32(b, 16)?,
            dlsr: be32(b, 20)?,
        });
    }
    Some(v)
}

fn sdes(body: &[u8], count: usize) -> Option<Vec<(u32, Option<String>)>> {
    let mut chunks = Vec::with_capacity(count.min(31));
    let mut o = 0usize;
    for _ in 0..count {
        let ssrc = be32(body, o)?;
        o = o.checked_add(4)?;
        let mut cname = None;
        loop {
            let t = *body.get(o)?;
            if t == 0 {
                // End of item list, then pad to the next 32-bit boundary.
                o = o.checked_add(1)?;
                o = o.checked_add((4 - o % 4) % 4)?;
                break;
            }
            let len = usize::from(*body.get(o.checked_add(1)?)?);
            let start = o.checked_add(2)?;
            let text = body.get(start..start.checked_add(len)?)?;
            if t == 1 && cname.is_none() {
                cname = Some(crate::types::sanitize_text(&String::from_utf8_lossy(text)));
            }
            o = start.checked_add(len)?;
        }
        if o > body.len() {
            return None;
        }
        chunks.push((ssrc, cname));
    }
    Some(chunks)
}

fn xr(body: &[u8]) -> Option<(u32, Vec<XrVoip>)> {
    let ssrc = be32(body, 0)?;
    let mut voip = Vec::new();
    let mut o = 4usize;
    while o < body.len() {
        let bt = *body.get(o)?;
        let words = usize::from(be16(body, o.checked_add(2)?)?);
        let start = o.checked_add(4)?;
        let end = start.checked_add(words.checked_mul(4)?)?;
        let b = body.get(start..end)?;
        if bt == 7 {
            if b.len() < 32 {
                return None;
            }
            voip.push(XrVoip {
                ssrc: be32(b, 0)?,
                loss_rate: *b.get(4)?,
                discard_rate: *b.get(5)?,
                round_trip_delay_ms: be16(b, 12)?,
                end_system_delay_ms: be16(b, 14)?,
                r_factor: *b.get(20)?,
                mos_lq: *b.get(22)?,
                mos_cq: *b.get(23)?,
            });
        }
        o = end;
    }
    Some((ssrc, voip))
}

/// Parse a compound RTCP packet. Returns what parsed before the first malformed part,
/// and an anomaly id when something was malformed.
pub fn parse_compound(data: &[u8]) -> (Vec<RtcpPacket>, Option<&'static str>) {
    let mut out = Vec::new();
    let mut off = 0usize;
    // Each packet is ≥ 4 bytes, so this terminates after ≤ len/4 iterations.
    while off < data.len() {
        let Some(rest) = data.get(off..) else { break };
        let (Some(&b0), Some(&pt), Some(words)) = (rest.first(), rest.get(1), be16(rest, 2)) else {
            return (out, Some(TRUNCATED));
        };
        if b0 >> 6 != 2 {
            return (out, Some(BAD_VERSION));
        }
        let len = (usize::from(words) + 1) * 4;
        let Some(pkt) = rest.get(..len) else {
            return (out, Some(BAD_LENGTH));
        };
        let last = off + len == data.len();
        let mut body = pkt.get(4..).unwrap_or(&[]);
        if b0 & 0x20 != 0 {
            // Padding is only allowed on the last packet of the compound (RFC 3550 §6.4.1).
            let pad = usize::from(*pkt.last().unwrap_or(&0));
            if !last || pad == 0 || pad > body.len() {
                return (out, Some(BAD_PADDING));
            }
            body = body.get(..body.len() - pad).unwrap_or(&[]);
        }
        let count = usize::from(b0 & 0x1F);
        let parsed = match pt {
            200 => (|| {
                let ssrc = be32(body, 0)?;
                Some(RtcpPacket::Sr {
                    ssrc,
                    ntp_msw: be32(body, 4)?,
                    ntp_lsw: be32(body, 8)?,
                    rtp_ts: be32(body, 12)?,
                    packets: be32(body, 16)?,
                    octets: be32(body, 20)?,
                    reports: report_blocks(body, 24, count)?,
                })
            })(),
            201 => (|| {
                Some(RtcpPacket::Rr {
                    ssrc: be32(body, 0)?,
                    reports: report_blocks(body, 4, count)?,
                })
            })(),
            202 => sdes(body, count).map(|chunks| RtcpPacket::Sdes { chunks }),
            203 => (|| {
                let mut ssrcs = Vec::with_capacity(count);
                for i in 0..count {
                    ssrcs.push(be32(body, i.checked_mul(4)?)?);
                }
                Some(RtcpPacket::Bye { ssrcs })
            })(),
            204 => be32(body, 0).map(|ssrc| RtcpPacket::App { ssrc }),
            207 => xr(body).map(|(ssrc, voip)| RtcpPacket::Xr { ssrc, voip }),
            _ => Some(RtcpPacket::Other { pt }),
        };
        match parsed {
            Some(p) => out.push(p),
            None => return (out, Some(BLOCK_OVERRUN)),
        }
        off += len;
    }
    (out, None)
}

/// Round-trip time from a report block (RFC 3550 §6.4.1): `A − LSR − DLSR` in 1/65536 s,
/// where `A` is the middle 32 bits of the NTP time the report arrived. `None` when no SR
/// was received yet (LSR 0) or the result is negative (clock trouble).
pub fn rtt_ms(lsr: u32, dlsr: u32, arrival_ntp_middle32: u32) -> Option<f64> {
    if lsr == 0 {
        return None;
    }
    let rtt = i64::from(arrival_ntp_middle32) - i64::from(lsr) - i64::from(dlsr);
    // Allow the 32-bit middle word to have wrapped between LSR and arrival.
    let rtt = if rtt < -(1i64 << 31) {
        rtt + (1i64 << 32)
    } else {
        rtt
    };
    (rtt >= 0).then(|| rtt as f64 * 1000.0 / 65536.0)
}

/// Middle 32 bits of the NTP timestamp of a Unix time in nanoseconds (for [`rtt_ms`]).
pub fn ntp_middle32(unix_ns: i64) -> u32 {
    let secs = unix_ns.div_euclid(1_000_000_000) + 2_208_988_800;
    let frac = (unix_ns.rem_euclid(1_000_000_000) as u64 * 65536) / 1_000_000_000;
    (((secs as u64) << 16) | frac) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sr_with_block() -> Vec<u8> {
        let mut v = vec![0x81, 200, 0, 12];
        v.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        // report block: ssrc, fraction 64/256, cum lost -2, seq, jitter, lsr, dlsr
        v.extend_from_slice(&0x2222_2222u32.to_be_bytes());
        v.extend_from_slice(&[64, 0xFF, 0xFF, 0xFE]);
        v.extend_from_slice(&[0, 1, 0, 10, 0, 0, 0, 80, 0, 0, 0, 7, 0, 0, 0, 9]);
        v
    }

    #[test]
    fn parses_sr_sdes_bye() {
        let mut d = sr_with_block();
        // SDES: one chunk, CNAME "ab", END, pad
        d.extend_from_slice(&[
            0x81, 202, 0, 3, 0x11, 0x11, 0x11, 0x11, 1, 2, b'a', b'b', 0, 0, 0, 0,
        ]);
        // BYE with 1 ssrc
        d.extend_from_slice(&[0x81, 203, 0, 1, 0x11, 0x11, 0x11, 0x11]);
        let (pkts, err) = parse_compound(&d);
        assert_eq!(err, None);
        assert_eq!(pkts.len(), 3);
        match &pkts[0] {
            RtcpPacket::Sr {
                ssrc,
                packets,
                octets,
                reports,
                ..
            } => {
                assert_eq!(*ssrc, 0x1111_1111);
                assert_eq!((*packets, *octets), (4, 5));
                assert_eq!(reports.len(), 1);
                assert_eq!(reports[0].cumulative_lost, -2);
                assert!((reports[0].fraction_lost - 0.25).abs() < 1e-12);
                assert_eq!(reports[0].highest_seq, 0x0001_000A);
                assert_eq!((reports[0].lsr, reports[0].dlsr), (7, 9));
            }
            p => panic!("not SR: {p:?}"),
        }
        assert_eq!(
            pkts[1],
            RtcpPacket::Sdes {
                chunks: vec![(0x1111_1111, Some("ab".into()))]
            }
        );
        assert_eq!(
            pkts[2],
            RtcpPacket::Bye {
                ssrcs: vec![0x1111_1111]
            }
        );
    }

    #[test]
    fn xr_voip_metrics() {
        let mut d = vec![0x80, 207, 0, 10, 0, 0, 0, 1, 7, 0, 0, 8];
        let mut b = vec![0u8; 32];
        b[..4].copy_from_slice(&[0, 0, 0, 2]);
        b[4] = 12; // loss rate
        b[12..14].copy_from_slice(&150u16.to_be_bytes());
        b[20] = 88;
        b[22] = 41;
        b[23] = 43;
        d.extend_from_slice(&b);
        let (pkts, err) = parse_compound(&d);
        assert_eq!(err, None);
        let RtcpPacket::Xr { ssrc, voip } = &pkts[0] else {
            panic!("{pkts:?}")
        };
        assert_eq!(*ssrc, 1);
        assert_eq!(voip[0].loss_rate, 12);
        assert_eq!(voip[0].round_trip_delay_ms, 150);
        assert_eq!(
            (voip[0].r_factor, voip[0].mos_lq, voip[0].mos_cq),
            (88, 41, 43)
        );
    }

    #[test]
    fn malformed_parts() {
        let d = sr_with_block();
        // length field larger than the datagram
        let mut bad = d.clone();
        bad[3] = 40;
        assert_eq!(parse_compound(&bad), (vec![], Some(BAD_LENGTH)));
        // report count 2 but room for one block
        let mut bad = d.clone();
        bad[0] = 0x82;
        assert_eq!(parse_compound(&bad).1, Some(BLOCK_OVERRUN));
        // good SR then a version-1 packet: SR kept
        let mut bad = d.clone();
        bad.extend_from_slice(&[0x40, 201, 0, 1, 0, 0, 0, 0]);
        let (p, e) = parse_compound(&bad);
        assert_eq!((p.len(), e), (1, Some(BAD_VERSION)));
        // padding on a non-last packet
        let mut bad = d.clone();
        bad[0] |= 0x20;
        bad.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 0]);
        assert_eq!(parse_compound(&bad).1, Some(BAD_PADDING));
        assert_eq!(parse_compound(&[0x80, 201]).1, Some(TRUNCATED));
    }

    #[test]
    fn rtt() {
        // A = LSR + DLSR + 0.5 s
        assert_eq!(rtt_ms(0x1000_0000, 0x0001_0000, 0x1001_8000), Some(500.0));
        assert_eq!(rtt_ms(0, 5, 10), None);
        assert_eq!(rtt_ms(100, 100, 150), None);
        // wrap of the middle word
        assert_eq!(rtt_ms(0xFFFF_8000, 0, 0x0000_0000), Some(500.0));
        let m = ntp_middle32(1_000_000_000 * 1_700_000_000 + 500_000_000);
        assert_eq!(m & 0xFFFF, 0x8000);
    }

    /// The compound RTCP datagrams in nDPI's capture parse without anomalies.
    #[test]
    fn real_compound_capture() {
        let p = std::path::Path::new(
            "../shared/pcaps/ntop__nDPI/tests__cfgs__default__pcap__rtcp_multiple_pkts_in_the_same_datagram.pcap",
        );
        let Ok(bytes) = std::fs::read(p) else {
            eprintln!("SKIP: {} not found", p.display());
            return;
        };
        let mut n = 0;
        for (_, _, payload) in super::super::tshark_check::udp_payloads(&bytes)
            .into_iter()
            .take(1000)
        {
            let (pkts, err) = parse_compound(&payload);
            assert_eq!(err, None, "{pkts:?}");
            assert!(pkts.len() >= 2);
            n += 1;
        }
        assert_eq!(n, 5);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (pkts, _) = parse_compound(&data);
            prop_assert!(pkts.len() <= data.len() / 4 + 1);
            let _ = super::super::parse_rtp(&data);
            let _ = super::super::looks_like_rtp(&data);
            let _ = super::super::looks_like_rtcp(&data);
        }
    }
}
