//! RTP fixed header view (RFC 3550 §5.1) and the RTP/RTCP heuristics.
//!
//! Owns: bounds-checked parsing of the fixed header, CSRC list, header extension and
//! padding, and the two "is this UDP payload RTP / RTCP?" tests that mirror Wireshark
//! 4.0's `rtp_udp` (`dissect_rtp_heur`) and `rtcp_udp` (`dissect_rtcp_heur`) heuristics.
//! Every length is checked against the datagram once, here; nothing downstream indexes
//! packet bytes.

/// The RTP fixed header (RFC 3550 §5.1), validated against the datagram length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub version: u8,
    pub padding: bool,
    pub extension: bool,
    pub csrc_count: u8,
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload after CSRCs and extension.
    pub payload_offset: usize,
    /// Payload length without padding.
    pub payload_len: usize,
}

impl RtpHeader {
    /// The payload bytes of `data` (the datagram this header was parsed from), without
    /// padding. Empty if `data` is not that datagram.
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let end = self.payload_offset.saturating_add(self.payload_len);
        data.get(self.payload_offset..end).unwrap_or(&[])
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// Offset after the fixed header, CSRC list and extension, or `None` if they overrun.
fn header_end(data: &[u8]) -> Option<usize> {
    let b0 = *data.first()?;
    let cc = usize::from(b0 & 0x0F);
    let mut off = 12usize.checked_add(cc.checked_mul(4)?)?;
    if b0 & 0x10 != 0 {
        let words = usize::from(be16(data, off.checked_add(2)?)?);
        off = off.checked_add(4)?.checked_add(words.checked_mul(4)?)?;
    }
    if off > data.len() { None } else { Some(off) }
}

/// Parse an RTP header; `None` if too short or not version 2, or if CSRC/extension/padding
/// lengths overrun the datagram. A padding count of 0 is accepted (nothing removed); a
/// count larger than what follows the header is rejected (Wireshark's heuristic rejects
/// it too).
pub fn parse_rtp(data: &[u8]) -> Option<RtpHeader> {
    if data.len() < 12 {
        return None;
    }
    let b0 = *data.first()?;
    let b1 = *data.get(1)?;
    if b0 >> 6 != 2 {
        return None;
    }
    let payload_offset = header_end(data)?;
    let padding = b0 & 0x20 != 0;
    let mut payload_len = data.len().checked_sub(payload_offset)?;
    if padding {
        let count = usize::from(*data.last()?);
        payload_len = payload_len.checked_sub(count)?;
    }
    Some(RtpHeader {
        version: 2,
        padding,
        extension: b0 & 0x10 != 0,
        csrc_count: b0 & 0x0F,
        marker: b1 & 0x80 != 0,
        pt: b1 & 0x7F,
        seq: be16(data, 2)?,
        timestamp: be32(data, 4)?,
        ssrc: be32(data, 8)?,
        payload_offset,
        payload_len,
    })
}

/// Parse as Wireshark does on a conversation SDP set up: like [`parse_rtp`], but a padding
/// count that overruns the payload leaves an empty payload instead of rejecting the packet
/// (Wireshark flags it and still counts it in the stream).
pub fn parse_rtp_lenient(data: &[u8]) -> Option<RtpHeader> {
    if let Some(h) = parse_rtp(data) {
        return Some(h);
    }
    let b0 = *data.first()?;
    if data.len() < 12 || b0 >> 6 != 2 {
        return None;
    }
    let payload_offset = header_end(data)?;
    let b1 = *data.get(1)?;
    Some(RtpHeader {
        version: 2,
        padding: b0 & 0x20 != 0,
        extension: b0 & 0x10 != 0,
        csrc_count: b0 & 0x0F,
        marker: b1 & 0x80 != 0,
        pt: b1 & 0x7F,
        seq: be16(data, 2)?,
        timestamp: be32(data, 4)?,
        ssrc: be32(data, 8)?,
        payload_offset,
        payload_len: 0,
    })
}

/// Would Wireshark's `rtp_udp` heuristic (`-o rtp.heuristic_rtp:TRUE`) take this UDP
/// payload for RTP *and tap it as RTP*?
///
/// Mirrors `dissect_rtp_heur` (4.0): version 2; payload type not 72–76; the CSRC list and
/// extension fit; a padding count, when the P bit is set, is non-zero and not larger than
/// what follows the header. Two deliberate refinements: (1) Wireshark's heuristic accepts
/// a version-0 datagram with "ZRTP" at offset 4, but that goes to the ZRTP dissector, not
/// the RTP tap, so it is `false` here; (2) a marker bit with payload type 64–95 is handed
/// by `dissect_rtp` to the RTCP dissector (RFC 5761 conflict range), so it is not RTP
/// either. Not modelled (the caller's business): UDP tries port-registered dissectors
/// (SIP on 5060, DNS, ...) before any heuristic, and SDP-announced ports are decoded as RTP
/// without the heuristic. Wireshark also accepts a datagram shorter than 12 bytes when the
/// reported length exceeds the captured one; we need the whole fixed header.
pub fn looks_like_rtp(data: &[u8]) -> bool {
    let (Some(&b0), Some(&b1)) = (data.first(), data.get(1)) else {
        return false;
    };
    if b0 >> 6 != 2 {
        return false;
    }
    let pt = b1 & 0x7F;
    if (72..=76).contains(&pt) {
        return false;
    }
    if b1 & 0x80 != 0 && (64..=95).contains(&pt) {
        return false;
    }
    let Some(off) = header_end(data) else {
        return false;
    };
    if b0 & 0x20 != 0 {
        let count = data.last().map_or(0, |&c| usize::from(c));
        if count == 0 || data.len().saturating_sub(off) < count {
            return false;
        }
    }
    true
}

/// Would Wireshark's RTCP heuristic take this UDP payload for RTCP? Payload-only part of
/// `dissect_rtcp_heur`: version 2, first packet type SR/RR/BYE/APP/PSFB, total length a
/// multiple of 4. Wireshark additionally requires an odd destination port; use
/// [`looks_like_rtcp_udp`] when the port is known.
pub fn looks_like_rtcp(data: &[u8]) -> bool {
    let (Some(&b0), Some(&pt)) = (data.first(), data.get(1)) else {
        return false;
    };
    if b0 >> 6 != 2 {
        return false;
    }
    // SR 200, RR 201, BYE 203, APP 204, PSFB 206 (RFC 5506 allows non-report first).
    if !matches!(pt, 200 | 201 | 203 | 204 | 206) {
        return false;
    }
    data.len().is_multiple_of(4)
}

/// [`looks_like_rtcp`] plus Wireshark's "sent to an odd-numbered port" condition.
pub fn looks_like_rtcp_udp(data: &[u8], dst_port: u16) -> bool {
    dst_port % 2 == 1 && looks_like_rtcp(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_parse_keeps_packets_whose_padding_overruns() {
        // P bit, padding count 0xAA larger than the payload: strict rejects, lenient keeps.
        let mut p = vec![
            0xA0, 0x00, 0x00, 0x01, 0, 0, 0, 1, 0xAA, 0xAA, 0xAA, 0xAA, 1, 2, 0xAA,
        ];
        assert!(parse_rtp(&p).is_none());
        let h = parse_rtp_lenient(&p).unwrap();
        assert_eq!((h.ssrc, h.payload_len), (0xAAAA_AAAA, 0));
        p[0] = 0x80;
        assert_eq!(parse_rtp_lenient(&p), parse_rtp(&p));
        assert!(parse_rtp_lenient(&p[..11]).is_none());
    }

    fn pkt(b0: u8, b1: u8, extra: &[u8]) -> Vec<u8> {
        let mut v = vec![b0, b1, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xDE, 0xAD, 0xBE, 0xEF];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn parses_plain_header() {
        let d = pkt(0x80, 0x80 | 8, &[1, 2, 3, 4]);
        let h = parse_rtp(&d).expect("valid");
        assert_eq!(h.pt, 8);
        assert!(h.marker);
        assert_eq!(h.seq, 0x1234);
        assert_eq!(h.timestamp, 320);
        assert_eq!(h.ssrc, 0xDEADBEEF);
        assert_eq!(h.payload_offset, 12);
        assert_eq!(h.payload_len, 4);
        assert_eq!(h.payload(&d), &[1, 2, 3, 4]);
    }

    #[test]
    fn csrc_extension_padding() {
        // cc=1, X, P: CSRC(4) + ext hdr(4) + 1 ext word(4) + payload 2 + padding 2.
        let d = pkt(
            0x80 | 0x20 | 0x10 | 1,
            0,
            &[0, 0, 0, 9, 0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 0xAA, 0xBB, 0, 2],
        );
        let h = parse_rtp(&d).expect("valid");
        assert_eq!(h.csrc_count, 1);
        assert!(h.extension && h.padding);
        assert_eq!(h.payload_offset, 24);
        assert_eq!(h.payload_len, 2);
        assert_eq!(h.payload(&d), &[0xAA, 0xBB]);
        assert!(looks_like_rtp(&d));
    }

    #[test]
    fn rejects_overruns() {
        assert!(parse_rtp(&[0x80, 0, 0, 1]).is_none());
        // version 1
        assert!(parse_rtp(&pkt(0x40, 0, &[])).is_none());
        // 2 CSRCs announced, none present
        assert!(parse_rtp(&pkt(0x82, 0, &[])).is_none());
        // extension of 100 words, none present
        assert!(parse_rtp(&pkt(0x90, 0, &[0, 0, 0, 100])).is_none());
        // extension header itself truncated
        assert!(parse_rtp(&pkt(0x90, 0, &[0, 0])).is_none());
        // padding count 9 > 3 bytes after header
        assert!(parse_rtp(&pkt(0xA0, 0, &[1, 2, 9])).is_none());
        assert!(!looks_like_rtp(&pkt(0xA0, 0, &[1, 2, 9])));
    }

    #[test]
    fn heuristic_rules() {
        assert!(looks_like_rtp(&pkt(0x80, 0, &[])));
        assert!(!looks_like_rtp(&pkt(0x80, 72, &[])));
        assert!(!looks_like_rtp(&pkt(0x80, 76, &[])));
        assert!(looks_like_rtp(&pkt(0x80, 77, &[])));
        // marker + 64..95 goes to RTCP in Wireshark
        assert!(!looks_like_rtp(&pkt(0x80, 0x80 | 78, &[])));
        assert!(looks_like_rtp(&pkt(0x80, 78, &[])));
        // padding count 0 is rejected by the heuristic but parse_rtp accepts it
        let z = pkt(0xA0, 0, &[5, 0]);
        assert!(!looks_like_rtp(&z));
        assert_eq!(parse_rtp(&z).map(|h| h.payload_len), Some(2));
        // version 0 (STUN/ZRTP) is not RTP
        assert!(!looks_like_rtp(&[0x00, 0x01, 0, 0, b'Z', b'R', b'T', b'P']));
        assert!(!looks_like_rtp(&[0x80]));
    }

    #[test]
    fn rtcp_heuristic() {
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert!(looks_like_rtcp(&rr));
        assert!(looks_like_rtcp_udp(&rr, 5005));
        assert!(!looks_like_rtcp_udp(&rr, 5004));
        assert!(!looks_like_rtcp(&rr[..6]));
        let sdes_first = [0x81, 202, 0, 1, 0, 0, 0, 1];
        assert!(!looks_like_rtcp(&sdes_first));
        assert!(!looks_like_rtcp(&[0x40, 200, 0, 0]));
    }
}
