//! The pcap/pcapng reader on arbitrary bytes, through its `Read` entry point (no file),
//! with small batches so refills and buffer growth are exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::{Batch, CaptureReader, MAX_FRAME_LEN, batch_buffer_bound};

fuzz_target!(|data: &[u8]| {
    let cur = std::io::Cursor::new(data.to_vec());
    let Ok(mut r) = CaptureReader::from_reader("fuzz", Box::new(cur), 0) else {
        return;
    };
    let mut batch = Batch::new();
    // Every call either appends a frame or ends; the bound only guards against a reader
    // that loops without progress (which would itself be a bug: the assert catches it).
    let mut rounds = 0usize;
    while let Ok(true) = r.next_batch(&mut batch, 7) {
        // Memory follows the frames asked for, never a length the input claims.
        assert!(
            batch.buffer_bytes() <= batch_buffer_bound(7),
            "batch buffer {}",
            batch.buffer_bytes()
        );
        for f in batch.iter() {
            assert!(f.data.len() as u64 <= u64::from(MAX_FRAME_LEN));
        }
        batch.clear();
        rounds += 1;
        assert!(rounds <= data.len() + 2, "reader made no progress");
    }
    let info = r.info();
    assert!(info.snaplen_cut_frames <= info.frames);
});
