//! RTP header parsing, the RTP/RTCP heuristics, RTCP compound parsing and RFC 4733 event
//! tracking on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::rtp::{self, events::EventTracker, rtcp};
use sipscope::types::{FrameRef, Ts};

fuzz_target!(|data: &[u8]| {
    let _ = rtp::looks_like_rtp(data);
    let _ = rtp::looks_like_rtcp(data);
    let port = data
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let _ = rtp::looks_like_rtcp_udp(data, port);
    if let Some(h) = rtp::parse_rtp(data) {
        assert!(
            h.payload_offset.saturating_add(h.payload_len) <= data.len(),
            "{h:?}"
        );
        let p = h.payload(data);
        assert_eq!(p.len(), h.payload_len);
        let mut t = EventTracker::default();
        t.update(
            FrameRef::new(0, 1),
            Ts(0),
            h.timestamp,
            p,
            u32::from(h.pt) * 1000,
        );
    }
    let (pkts, _err) = rtcp::parse_compound(data);
    assert!(pkts.len() <= data.len() / 4 + 1);
});
