//! Gzip input: inflation runs on its own thread and feeds the parser through a bounded
//! channel, so decompression overlaps analysis. Concatenated gzip members are read as one
//! stream (MultiGzDecoder). Buffers go back to the inflater for reuse, so a multi-GB
//! input costs a handful of chunk allocations, not one per chunk.

use crossbeam_channel::{Receiver, Sender, bounded};
use flate2::read::MultiGzDecoder;
use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex};

/// Decompressed bytes per message.
const CHUNK: usize = 256 * 1024;
/// Messages in flight: bounds the memory the inflater can run ahead by.
const IN_FLIGHT: usize = 4;

/// Where the inflater leaves the reason it stopped early (damaged or truncated stream).
pub(super) type ErrorSlot = Arc<Mutex<Option<String>>>;

pub(super) fn take_error(slot: &ErrorSlot) -> Option<String> {
    slot.lock().ok().and_then(|g| g.clone())
}

/// The reading end: implements `Read` over the chunks the inflater sends.
pub(super) struct Inflated {
    rx: Receiver<Result<Vec<u8>, String>>,
    back: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    err: ErrorSlot,
    finished: bool,
}

impl Read for Inflated {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.cur.get(self.pos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(out.len());
                if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.pos += n;
                return Ok(n);
            }
            if self.finished || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let old = std::mem::replace(&mut self.cur, chunk);
                    self.pos = 0;
                    // The inflater may have stopped already; the buffer is then dropped.
                    let _ = self.back.try_send(old);
                }
                Ok(Err(msg)) => {
                    self.finished = true;
                    if let Ok(mut g) = self.err.lock() {
                        *g = Some(msg.clone());
                    }
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
                // Sender gone without an error: clean end of the stream.
                Err(_) => {
                    self.finished = true;
                    return Ok(0);
                }
            }
        }
    }
}

/// Start inflating `src` (whose first bytes are the gzip magic). When the thread cannot be
/// started, inflation happens inline in the reader instead.
pub(super) fn spawn(src: Box<dyn Read + Send>) -> (Box<dyn Read + Send>, ErrorSlot) {
    let err: ErrorSlot = Arc::new(Mutex::new(None));
    let (tx, rx) = bounded::<Result<Vec<u8>, String>>(IN_FLIGHT);
    let (back, back_rx) = bounded::<Vec<u8>>(IN_FLIGHT + 2);
    // The source moves into the thread; if spawning fails, it comes back through here.
    let (src_tx, src_rx) = bounded::<Box<dyn Read + Send>>(1);
    let _ = src_tx.send(src);
    let worker_src = src_rx.clone();
    let spawned = std::thread::Builder::new()
        .name("sipscope-gunzip".into())
        .spawn(move || {
            if let Ok(src) = worker_src.try_recv() {
                inflate(src, &tx, &back_rx);
            }
        });
    match spawned {
        Ok(_) => (
            Box::new(Inflated {
                rx,
                back,
                cur: Vec::new(),
                pos: 0,
                err: Arc::clone(&err),
                finished: false,
            }),
            err,
        ),
        Err(_) => match src_rx.try_recv() {
            Ok(src) => (
                Box::new(MultiGzDecoder::new(BufReader::with_capacity(CHUNK, src))),
                err,
            ),
            Err(_) => (Box::new(io::empty()), err),
        },
    }
}

fn inflate(
    src: Box<dyn Read + Send>,
    tx: &Sender<Result<Vec<u8>, String>>,
    back: &Receiver<Vec<u8>>,
) {
    let mut dec = MultiGzDecoder::new(BufReader::with_capacity(CHUNK, src));
    loop {
        let mut buf = back.try_recv().unwrap_or_default();
        buf.clear();
        buf.resize(CHUNK, 0);
        let mut n = 0usize;
        let mut failure = None;
        while n < CHUNK {
            let Some(space) = buf.get_mut(n..) else {
                break;
            };
            match dec.read(space) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(if e.kind() == io::ErrorKind::UnexpectedEof {
                        "compressed stream is truncated".to_string()
                    } else {
                        e.to_string()
                    });
                    break;
                }
            }
        }
        buf.truncate(n);
        let eof = n < CHUNK;
        if n > 0 && tx.send(Ok(buf)).is_err() {
            return; // reader dropped
        }
        if let Some(msg) = failure {
            let _ = tx.send(Err(msg));
            return;
        }
        if eof {
            return;
        }
    }
}
