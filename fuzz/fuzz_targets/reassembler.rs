//! The reassembler fed a sequence of frames cut from the input (2-byte big-endian length
//! prefix per frame, raw IP link type), with a tiny clock step per frame, small caps so
//! eviction paths run, and periodic expiry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::linktype;
use sipscope::decode::{Reassembler, ReassemblyLimits, decode_frame};
use sipscope::types::{FrameRef, Ts};

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(ReassemblyLimits {
        max_fragment_packets: 8,
        fragment_timeout_ms: 50,
        max_tcp_streams: 4,
        max_tcp_buffer: 4096,
        tcp_idle_timeout_ms: 100,
    });
    let mut rest = data;
    let mut n = 0u64;
    let mut delivered = 0usize;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 2048;
        let step = i64::from(rest[2]);
        rest = &rest[3..];
        let take = len.min(rest.len());
        let (frame, tail) = rest.split_at(take);
        rest = tail;
        n += 1;
        let ts = Ts(n as i64 * 1_000_000 + step * 1_000_000);
        let d = decode_frame(linktype::RAW, frame);
        r.push(FrameRef::new(0, n), ts, d, &mut |dg| {
            delivered = delivered.saturating_add(dg.payload.len());
        });
        if n % 16 == 0 {
            r.expire(ts);
        }
        let (frags, streams) = r.pending();
        assert!(
            frags <= 64 && streams <= 4,
            "caps exceeded: {frags} {streams}"
        );
    }
    r.expire(Ts(i64::MAX / 2));
    let _ = r.stats();
});
