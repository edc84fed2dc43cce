//! Payload type → codec name and clock rate, as Wireshark 4.0 names and rates them.
//!
//! Owns: the static payload-type short names (`rtp_payload_type_short_vals`, as printed in
//! the Payload column of `tshark -z rtp,streams`), the static clock-rate table
//! (`clock_map` of ui/tap-rtp-analysis.c) and the MIME-name clock table used for dynamic
//! types without an SDP rate (`mimetype_and_clock_map`).

use std::borrow::Cow;

/// Wireshark's short payload-type name for static types ("g711U", "g711A", "g729", ...).
/// `None` for dynamic types (96–127) and values above 127.
pub fn static_name(pt: u8) -> Option<&'static str> {
    Some(match pt {
        0 => "g711U",
        1 => "fs-1016",
        2 => "g721",
        3 => "GSM",
        4 => "g723",
        5 => "DVI4 8k",
        6 => "DVI4 16k",
        7 => "Exp. from Xerox PARC",
        8 => "g711A",
        9 => "g722",
        10 => "16-bit audio, stereo",
        11 => "16-bit audio, monaural",
        12 => "Qualcomm",
        13 => "CN",
        14 => "MPEG-I/II Audio",
        15 => "g728",
        16 => "DVI4 11k",
        17 => "DVI4 22k",
        18 => "g729",
        19 => "CN(old)",
        25 => "CellB",
        26 => "JPEG",
        28 => "NV",
        31 => "h261",
        32 => "MPEG-I/II Video",
        33 => "MPEG-II streams",
        34 => "h263",
        72..=76 => "Reserved for RTCP conflict avoidance",
        20..=95 => "Unassigned",
        _ => return None,
    })
}

/// The name tshark prints for a payload type: the static short name, else the SDP
/// encoding name, else the dissector Wireshark 4.0 binds to that dynamic type by default
/// preference (101 → "rtpevent", 99 → "rtp.rfc2198"), else "RTPType-N".
pub fn payload_name(pt: u8, encoding: Option<&str>) -> Cow<'static, str> {
    if let Some(n) = static_name(pt) {
        return Cow::Borrowed(n);
    }
    match (encoding, pt) {
        (Some(e), _) => Cow::Owned(e.to_string()),
        (None, 101) => Cow::Borrowed("rtpevent"),
        (None, 99) => Cow::Borrowed("rtp.rfc2198"),
        (None, _) => Cow::Owned(format!("RTPType-{pt}")),
    }
}

/// Static clock rates (Wireshark `clock_map`); 0 = not in the table.
pub fn static_clock_rate(pt: u8) -> u32 {
    match pt {
        0..=5 | 7 | 8 | 9 | 12 | 13 | 15 | 18 | 19 => 8000,
        6 => 16000,
        10 | 11 => 44100,
        14 => 90000,
        16 => 11025,
        17 => 22050,
        25 | 26 | 28 | 31..=34 => 90000,
        _ => 0,
    }
}

/// Wireshark's `mimetype_and_clock_map`, alphabetical (case-insensitive) as in the source.
const MIME_CLOCKS: &[(&str, u32)] = &[
    ("AMR", 8000),
    ("AMR-WB", 16000),
    ("BMPEG", 90000),
    ("BT656", 90000),
    ("DV", 90000),
    ("EVRC", 8000),
    ("EVRC0", 8000),
    ("EVRC1", 8000),
    ("EVRCB", 8000),
    ("EVRCB0", 8000),
    ("EVRCB1", 8000),
    ("EVRCWB", 16000),
    ("EVRCWB0", 16000),
    ("EVRCWB1", 16000),
    ("EVS", 16000),
    ("G7221", 16000),
    ("G726-16", 8000),
    ("G726-24", 8000),
    ("G726-32", 8000),
    ("G726-40", 8000),
    ("G729D", 8000),
    ("G729E", 8000),
    ("GSM-EFR", 8000),
    ("H263-1998", 90000),
    ("H263-2000", 90000),
    ("H264", 90000),
    ("MP1S", 90000),
    ("MP2P", 90000),
    ("MP4V-ES", 90000),
    ("mpa-robust", 90000),
    ("opus", 48000),
    ("pointer", 90000),
    ("raw", 90000),
    ("red", 1000),
    ("SMV", 8000),
    ("SMV0", 8000),
    ("t140", 1000),
    ("telephone-event", 8000),
];

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.as_bytes()
            .iter()
            .zip(prefix.as_bytes())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Rate from the MIME table: like Wireshark, searched in reverse order with a
/// case-insensitive *prefix* match of the table entry against `encoding` (so "AMR-WB"
/// wins over "AMR", and "H264-SVC" still gets 90000).
pub fn mime_clock_rate(encoding: &str) -> u32 {
    MIME_CLOCKS
        .iter()
        .rev()
        .find(|(name, _)| starts_with_ignore_case(encoding, name))
        .map_or(0, |&(_, r)| r)
}

/// Is this encoding name RFC 4733 telephone-event (prefix, case-insensitive, as Wireshark)?
pub fn is_telephone_event(encoding: &str) -> bool {
    starts_with_ignore_case(encoding, "telephone-event")
}

/// Clock rate used for jitter: static table, else the SDP rtpmap rate (`sdp_rate`), else
/// Wireshark's MIME table by encoding name; 0 = unknown (no jitter computed).
/// telephone-event always gives 0, as in Wireshark.
///
/// As in `rtppacket_analyse`: a static type (< 96) always uses the static table, even if
/// SDP maps it to another rate; a dynamic type without an encoding name gives 0 unless a
/// `sdp_rate` is given on its own (no Wireshark equivalent: SDP always carries a name).
pub fn clock_rate(pt: u8, encoding: Option<&str>, sdp_rate: Option<u32>) -> u32 {
    if pt < 96 {
        return static_clock_rate(pt);
    }
    match encoding {
        Some(e) if is_telephone_event(e) => 0,
        Some(e) => match sdp_rate {
            Some(r) if r != 0 => r,
            _ => mime_clock_rate(e),
        },
        None => sdp_rate.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_names_match_tshark_column() {
        assert_eq!(static_name(0), Some("g711U"));
        assert_eq!(static_name(8), Some("g711A"));
        assert_eq!(static_name(3), Some("GSM"));
        assert_eq!(static_name(7), Some("Exp. from Xerox PARC"));
        assert_eq!(static_name(22), Some("Unassigned"));
        assert_eq!(static_name(34), Some("h263"));
        assert_eq!(static_name(96), None);
        assert_eq!(payload_name(101, None), "rtpevent");
        assert_eq!(payload_name(107, None), "RTPType-107");
        assert_eq!(payload_name(111, Some("opus")), "opus");
    }

    #[test]
    fn rates() {
        assert_eq!(clock_rate(0, None, None), 8000);
        assert_eq!(clock_rate(9, None, None), 8000); // G.722's famous 8000
        assert_eq!(clock_rate(8, Some("PCMA"), Some(16000)), 8000); // static wins
        assert_eq!(clock_rate(11, None, None), 44100);
        assert_eq!(clock_rate(40, None, None), 0);
        assert_eq!(clock_rate(101, Some("telephone-event"), Some(8000)), 0);
        assert_eq!(clock_rate(101, Some("TELEPHONE-EVENT"), None), 0);
        assert_eq!(clock_rate(111, Some("opus"), Some(48000)), 48000);
        assert_eq!(clock_rate(111, Some("opus"), None), 48000);
        assert_eq!(clock_rate(97, Some("AMR-WB"), None), 16000);
        assert_eq!(clock_rate(97, Some("amr"), None), 8000);
        assert_eq!(clock_rate(97, Some("rtpevent"), None), 0);
        assert_eq!(clock_rate(97, None, None), 0);
        assert_eq!(clock_rate(97, Some("BV32"), Some(16000)), 16000);
    }
}
