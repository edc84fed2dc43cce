//! decode_frame on arbitrary bytes for every link type the decoder knows (the first byte
//! picks the link type, so one corpus covers them all), plus an unknown one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::linktype;
use sipscope::decode::{Decoded, L4, decode_frame};

const LINKS: [u32; 14] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::PPP,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    linktype::RAW_BSD12,
    linktype::RAW_BSD14,
    linktype::PPP_ETHER,
    147, // a user DLT: unsupported
    0xFFFF_FFFF,
];

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    match decode_frame(link, frame) {
        Decoded::Ip {
            l4: L4::Udp { payload, .. },
            ..
        }
        | Decoded::Ip {
            l4: L4::Tcp { payload, .. },
            ..
        } => {
            // Payloads borrow from the frame: never invented bytes.
            assert!(within(frame, payload));
        }
        Decoded::Fragment(f) => assert!(within(frame, f.data)),
        _ => {}
    }
});
