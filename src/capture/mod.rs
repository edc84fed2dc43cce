//! Frames in: pcap and pcapng files (read with pcap-parser through a buffered reader),
//! `.gz` input (inflated on its own thread), standard input (`-`), and several files merged
//! by timestamp into one stream of frames.
//!
//! Owns: file format detection, per-interface link type and timestamp resolution, frame
//! numbering (1-based, as Wireshark), and the per-file facts the report needs (format,
//! link types, snaplen, truncation point, interface drop counts). A damaged file is not an
//! error once its header was read: reading stops, the damage is recorded in [`FileInfo`],
//! and the frames before it are analysed. Only "cannot open / not a capture" is an `Err`.

use crate::types::{FrameRef, Ts};
use serde::Serialize;

mod reader;
pub use reader::{CaptureReader, MAX_FRAME_LEN, MergedReader, batch_buffer_bound};
#[cfg(feature = "live")]
pub mod live;

/// Anything the engine can pull frames from: files ([`MergedReader`]) or, with the `live`
/// feature, a network interface.
pub trait FrameSource: Send {
    /// Append up to `max_frames` frames; `Ok(false)` once nothing more will come.
    fn next_batch(&mut self, batch: &mut Batch, max_frames: usize) -> Result<bool, CaptureError>;
    /// What the report says about each input.
    fn infos(&self) -> Vec<FileInfo>;
    /// Bytes consumed so far (progress).
    fn bytes_read(&self) -> u64;
    /// Total bytes, when known (progress).
    fn total_bytes(&self) -> Option<u64>;
}

impl FrameSource for MergedReader {
    fn next_batch(&mut self, batch: &mut Batch, max_frames: usize) -> Result<bool, CaptureError> {
        MergedReader::next_batch(self, batch, max_frames)
    }
    fn infos(&self) -> Vec<FileInfo> {
        MergedReader::infos(self)
    }
    fn bytes_read(&self) -> u64 {
        MergedReader::bytes_read(self)
    }
    fn total_bytes(&self) -> Option<u64> {
        MergedReader::total_bytes(self)
    }
}

/// Link-layer header types (LINKTYPE_* values as stored in pcap/pcapng files).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// DLT_RAW as some BSDs write it into pcap files.
    pub const RAW_BSD12: u32 = 12;
    pub const RAW_BSD14: u32 = 14;
    pub const PPP_ETHER: u32 = 51;
}

/// Where one frame sits in a [`Batch`], and what the capture said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    pub id: FrameRef,
    pub ts: Ts,
    /// LINKTYPE_* of the interface the frame was captured on.
    pub link: u32,
    /// Length on the wire; larger than the captured length when the snaplen cut it.
    pub orig_len: u32,
    off: u32,
    len: u32,
}

/// A borrowed frame: metadata plus the captured bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub id: FrameRef,
    pub ts: Ts,
    pub link: u32,
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// Frames read in one go, their bytes packed in one buffer (one allocation per batch,
/// not per frame).
///
/// The buffer keeps its high-water length across `clear`: `used` bytes are this batch's,
/// the rest are stale but initialised, so a reader can `read` file bytes straight into it
/// (`Batch::spare`) without zeroing the space first. A plain pcap file is read that way:
/// its records stay where `read` put them and the frames point into them (no copy).
#[derive(Debug, Default, Clone)]
pub struct Batch {
    buf: Vec<u8>,
    used: usize,
    frames: Vec<FrameMeta>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn clear(&mut self) {
        self.used = 0;
        self.frames.clear();
    }
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.used
    }
    /// Bytes the batch keeps allocated for frame data (its high-water mark): at most
    /// [`batch_buffer_bound`] of the frames asked for, whatever the input claims.
    pub fn buffer_bytes(&self) -> usize {
        self.buf.len()
    }
    /// Append a frame (copies `data`).
    pub fn push(&mut self, id: FrameRef, ts: Ts, link: u32, orig_len: u32, data: &[u8]) {
        let off = self.used;
        self.append_raw(data);
        self.push_meta(id, ts, link, orig_len, off, data.len());
    }
    /// Describe a frame whose bytes are already in the buffer at `off..off + len`.
    fn push_meta(
        &mut self,
        id: FrameRef,
        ts: Ts,
        link: u32,
        orig_len: u32,
        off: usize,
        len: usize,
    ) {
        self.frames.push(FrameMeta {
            id,
            ts,
            link,
            orig_len,
            off: off as u32,
            len: len as u32,
        });
    }
    /// This batch's bytes (frames and, for a directly read file, the record headers).
    fn raw(&self) -> &[u8] {
        self.buf.get(..self.used).unwrap_or(&[])
    }
    /// This batch's bytes beside its frame list, to describe frames already in the bytes.
    fn raw_and_frames(&mut self) -> (&[u8], &mut Vec<FrameMeta>) {
        (self.buf.get(..self.used).unwrap_or(&[]), &mut self.frames)
    }
    /// Append bytes that are not a frame (yet): a record carried over from the last batch.
    fn append_raw(&mut self, data: &[u8]) {
        let off = self.used;
        let end = off.saturating_add(data.len());
        match self.buf.get_mut(off..end) {
            Some(dst) => dst.copy_from_slice(data),
            None => {
                self.buf.truncate(off);
                self.buf.extend_from_slice(data);
            }
        }
        self.used = end;
    }
    /// `want` writable bytes after the used ones, to `read` into; [`Batch::commit`] then
    /// adds what was read.
    fn spare(&mut self, want: usize) -> &mut [u8] {
        let end = self.used.saturating_add(want);
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf.get_mut(self.used..end).unwrap_or(&mut [])
    }
    fn commit(&mut self, n: usize) {
        self.used = self.used.saturating_add(n).min(self.buf.len());
    }
    /// Drop used bytes past `len` (a partial record handed back to the reader).
    fn truncate_raw(&mut self, len: usize) {
        self.used = self.used.min(len);
    }
    pub fn get(&self, i: usize) -> Option<Frame<'_>> {
        let m = self.frames.get(i)?;
        let data = self.buf.get(m.off as usize..(m.off + m.len) as usize)?;
        Some(Frame {
            id: m.id,
            ts: m.ts,
            link: m.link,
            orig_len: m.orig_len,
            data,
        })
    }
    pub fn iter(&self) -> impl Iterator<Item = Frame<'_>> + '_ {
        (0..self.frames.len()).filter_map(move |i| self.get(i))
    }
}

/// What the report says about one input file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileInfo {
    pub path: String,
    /// "pcap", "pcap-ns" (nanosecond pcap), or "pcapng".
    pub format: String,
    /// Input was gzip-compressed.
    pub gzip: bool,
    pub frames: u64,
    /// Every link type seen (LINKTYPE_* numbers), in order of first appearance.
    pub link_types: Vec<u32>,
    /// Snapshot length from the file header (pcap) or the largest IDB snaplen (pcapng); 0 = unlimited.
    pub snaplen: u32,
    /// Frames whose captured length is shorter than the original length.
    pub snaplen_cut_frames: u64,
    /// Earliest frame timestamp (capinfos' "First packet time": the minimum, which is not
    /// the first frame's time when timestamps go backwards). Frames without a timestamp
    /// (pcapng Simple Packet Blocks) do not count.
    pub first_ts: Option<Ts>,
    /// Latest frame timestamp (capinfos' "Last packet time": the maximum).
    pub last_ts: Option<Ts>,
    /// Set when the file ends in the middle of a record or has a damaged block.
    pub truncated: Option<Truncation>,
    /// Sum of pcapng Interface Statistics Block `isb_ifdrop` counters, when present. The
    /// counter is cumulative per interface, so the last ISB of each interface counts.
    pub interface_drops: Option<u64>,
    /// Number of pcapng packet comments (kept, not shown).
    pub comments: u64,
    /// Timestamps that went backwards relative to the previous frame in this file.
    pub ts_backwards: u64,
}

/// Where and why reading a file stopped early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truncation {
    /// Last frame read completely before the damage (0 if none).
    pub after_frame: u64,
    /// Byte offset in the (decompressed) file where reading stopped.
    pub byte_offset: u64,
    pub detail: String,
}

/// Why a capture could not be read at all. (Damage after the header is not an error.)
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    // The message already includes the I/O error; not making it the error's `source`
    // keeps `{:#}` (anyhow's chain) from printing it twice.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: is a directory, not a capture file")]
    IsDirectory { path: String },
    #[error("{path}: empty file, not a capture")]
    Empty { path: String },
    #[error("{path}: not a pcap or pcapng capture ({detail})")]
    NotACapture { path: String, detail: String },
}
