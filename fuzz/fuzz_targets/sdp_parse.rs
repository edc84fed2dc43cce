//! The SDP parser and the accessors the correlator uses, on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sdp = sipscope::sdp::parse(data);
    let _ = sdp.audio();
    // Bounded: a huge m= count is fine for parse, but the per-pt loop below is 128×.
    for m in sdp.media.iter().take(64) {
        let _ = sdp.media_addr(m);
        let _ = sdp.media_connection(m);
        let _ = sdp.media_direction(m);
        let _ = m.is_disabled();
        let _ = m.is_t38();
        let _ = m.payload_types();
        let _ = m.telephone_event_pt();
        for pt in 0..=127u8 {
            let _ = m.codec(pt);
        }
    }
});
