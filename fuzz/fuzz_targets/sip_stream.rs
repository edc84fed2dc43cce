//! SIP-over-TCP stream framing: never panics, never claims more bytes than the buffer
//! holds, always makes progress; consuming the whole buffer frame by frame terminates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::sip::wire::{self, StreamFrame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut rounds = 0usize;
    loop {
        rounds += 1;
        assert!(rounds <= data.len() + 1, "no progress");
        let n = match wire::stream_frame(rest) {
            StreamFrame::Incomplete => break,
            StreamFrame::Complete(n) => {
                if let Some(msg) = rest.get(..n) {
                    let _ = wire::parse(msg);
                }
                n
            }
            StreamFrame::Keepalive(n) | StreamFrame::Garbage(n) => n,
        };
        assert!(n > 0, "zero-length frame");
        assert!(n <= rest.len(), "frame {n} beyond buffer {}", rest.len());
        rest = &rest[n..];
        if rest.is_empty() {
            break;
        }
    }
});
