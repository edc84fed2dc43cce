//! The SIP parser on arbitrary bytes: never panics, every span lies within `raw`, and the
//! typed accessors the state machines use work on whatever it returns.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::sip::wire::{self, HeaderName, StartLine};

fuzz_target!(|data: &[u8]| {
    let _ = wire::looks_like_sip(data);
    let Some(m) = wire::parse(data) else {
        return;
    };
    let n = m.raw.len() as u32;
    let ok = |s: &std::ops::Range<u32>| s.start <= s.end && s.end <= n;
    assert!(ok(&m.start_line));
    assert!(ok(&m.body));
    let (StartLine::Request { uri: s, .. } | StartLine::Response { reason: s, .. }) = &m.start;
    assert!(ok(s));
    for h in &m.headers {
        assert!(ok(&h.name) && ok(&h.value) && ok(&h.line), "{h:?}");
    }
    let _ = m.call_id();
    let _ = m.header_value(HeaderName::CSeq);
    let _ = m.request_uri();
    let _ = m.reason();
    let _ = m.header_by_name("User-Agent");
    for h in m.headers_of(HeaderName::Via) {
        let _ = m.text(&h.value);
    }
    if let Some(sdp) = m.sdp_body() {
        // The SDP (the body, or a multipart's part) lies inside the body.
        let body = m.body_bytes();
        let (b0, s0) = (body.as_ptr() as usize, sdp.as_ptr() as usize);
        assert!(s0 >= b0 && s0 + sdp.len() <= b0 + body.len());
    }
});
