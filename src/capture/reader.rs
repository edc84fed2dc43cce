//! The pcap/pcapng reader and the multi-file merge.
//!
//! Owns: opening a path (or `-`), format detection by magic (including naming the common
//! non-captures), transparent gzip (inflated on its own thread, see [`gz`]), reading a
//! plain pcap straight into the batches ([`Direct`]), driving pcap-parser's streaming
//! reader (pcapng, modified pcap, a damaged rest) without its known infinite-loop traps,
//! per-interface link type / timestamp resolution / offset for pcapng, Wireshark-compatible
//! frame numbering, the [`FileInfo`] facts, and the timestamp-ordered k-way merge of
//! several files. After a valid header nothing is an error: damage stops the file and is recorded
//! in [`FileInfo::truncated`].

use super::{Batch, CaptureError, FileInfo, FrameMeta, Truncation};
use crate::types::{FrameRef, Ts};
use pcap_parser::pcapng::{Block, PcapNGOption};
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{OptionCode, PcapBlockOwned, PcapError};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod gz;
mod netmon;

/// Largest captured length accepted for one frame. Wireshark's limit for ordinary link
/// types (WTAP_MAX_PACKET_SIZE_STANDARD); a larger record means the file is damaged.
pub const MAX_FRAME_LEN: u32 = 256 * 1024;
/// Initial parser buffer.
const BUF_INITIAL: usize = 1 << 20;
/// The parser buffer never grows beyond this, whatever a block header claims.
const BUF_MAX: usize = 64 << 20;
/// Bytes read up front to recognise the format (and the gzip magic).
const PEEK_LEN: usize = 64 * 1024;
/// Interfaces per pcapng section; each costs memory, so a crafted file cannot declare
/// millions of them.
const MAX_INTERFACES: usize = 1 << 16;
/// Consecutive parser steps without progress before the file is declared damaged (the
/// pcap-parser refill loops described in its issues #3/#18/#20/#29).
const MAX_STALLS: u32 = 4;

const NS: i128 = 1_000_000_000;

/// One pcapng interface (IDB) of the current section.
#[derive(Debug, Clone)]
struct Iface {
    link: u32,
    /// Timestamp units per second.
    units: u64,
    /// if_tsoffset, seconds.
    offset: i64,
    snaplen: u32,
    /// Last `isb_ifdrop` seen for this interface (the counter is cumulative).
    last_drop: Option<u64>,
}

/// Everything except the parser itself (split so a block borrowed from the parser can be
/// handled while this state is mutated).
struct State {
    info: FileInfo,
    file_index: u16,
    /// Frames numbered so far (= frame.number of the last one).
    num: u64,
    prev_ts: Option<Ts>,
    /// Legacy pcap header facts.
    pcap_link: u32,
    pcap_ns: bool,
    pcap_be: bool,
    pcap_modified: bool,
    /// pcapng section state.
    ng: bool,
    ng_be: bool,
    ifaces: Vec<Iface>,
    snaplen_unlimited: bool,
    /// Running sum over interfaces of their last isb_ifdrop.
    drops: u128,
    buf_cap: usize,
}

/// What handling one block produced.
enum Handled {
    Frame,
    Other,
    Damage(String),
}

/// One input file (or standard input), read sequentially in batches.
pub struct CaptureReader {
    info_st: State,
    rdr: Option<Box<dyn PcapReaderIterator + Send>>,
    /// A plain pcap file read without the parser (see [`Direct`]); at most one of `rdr` and
    /// `direct` is set, neither once the file is done.
    direct: Option<Direct>,
    /// File offset of the parser's first byte, minus the 24-byte file header it starts
    /// with: non-zero once [`Direct`] handed the rest of a file to the parser.
    parser_base: u64,
    /// Raw (compressed, for gz) bytes read from the file so far.
    raw_read: Arc<AtomicU64>,
    /// File size when known (regular files).
    raw_total: Option<u64>,
    /// Error slot filled by the inflater thread, for the truncation detail.
    gz_error: Option<gz::ErrorSlot>,
    stalls: u32,
    /// Damage found while converting a NetMon file, reported when its frames are read.
    netmon_damage: Option<String>,
}

/// A reader that counts the bytes it hands out (progress reporting).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Source = Box<dyn Read + Send>;

/// A plain (non-modified) pcap file read straight into the batches: `read` puts the
/// records into the batch buffer and its frames point at them, so a byte is copied once
/// (by the kernel) instead of twice (into the parser's buffer, then into the batch). On
/// the benchmark capture the reader thread was the busier of the two, and the second copy
/// and the parser's per-record steps were a third of its time. Only clean records are
/// read this way: at the first record that is not (a captured length over
/// [`MAX_FRAME_LEN`], a file ending inside a record) the rest of the file goes to
/// pcap-parser as it would have from the start, so damage is found and described by one
/// path (`fallback`).
struct Direct {
    src: Source,
    /// The file header, put back in front of the rest for the parser on fallback.
    header: [u8; 24],
    /// Bytes read past the last complete record of the previous batch.
    carry: Vec<u8>,
    /// File offset of `carry[0]`: where the next record starts.
    offset: u64,
    /// Average record length in the last batch (header included), to size the reads so a
    /// batch ends close to its frame limit and little is carried over.
    avg: usize,
    eof: bool,
}

/// Bounds of one `read` into a batch in direct mode.
const DIRECT_READ_MIN: usize = 4 * 1024;
const DIRECT_READ_MAX: usize = 1 << 20;

/// The most a [`Batch`] asked for `max_frames` frames keeps allocated for frame data,
/// whatever lengths the input claims: every frame at [`MAX_FRAME_LEN`] with its record
/// header, one record carried over from the last batch and one direct read. The reader
/// tests and the `capture_reader` fuzz target assert it.
pub fn batch_buffer_bound(max_frames: usize) -> usize {
    let rec = MAX_FRAME_LEN as usize + 16;
    max_frames
        .saturating_add(1)
        .saturating_mul(rec)
        .saturating_add(DIRECT_READ_MAX)
}

/// Read until `max` bytes or end of input. An error after some bytes were read is
/// returned beside them: a damaged stream is still worth reading up to the damage.
fn read_prefix(r: &mut dyn Read, max: usize) -> (Vec<u8>, Option<io::Error>) {
    let mut buf = Vec::with_capacity(max.min(PEEK_LEN));
    let err = r.take(max as u64).read_to_end(&mut buf).err();
    (buf, err)
}

/// The formats we read, as detected from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pcap { ns: bool, be: bool, modified: bool },
    PcapNg,
}

fn u16_at(b: &[u8], off: usize, be: bool) -> Option<u16> {
    let a: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    })
}

fn u32_at(b: &[u8], off: usize, be: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

fn u64_opt(v: &[u8], be: bool) -> Option<u64> {
    let a: [u8; 8] = v.get(..8)?.try_into().ok()?;
    Some(if be {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    })
}

/// Recognise the capture format from its first bytes, or say what the file is instead.
fn detect(p: &[u8]) -> Result<Format, String> {
    let magic = p.get(..4).unwrap_or(p);
    let pcap = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false, false)),
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((false, true, false)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((true, false, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true, false)),
        [0x34, 0xcd, 0xb2, 0xa1] => Some((false, false, true)),
        _ => None,
    };
    if let Some((ns, be, modified)) = pcap {
        if p.len() < 24 {
            return Err(format!(
                "pcap file header truncated ({} of 24 bytes)",
                p.len()
            ));
        }
        let major = u16_at(p, 4, be).unwrap_or(0);
        let minor = u16_at(p, 6, be).unwrap_or(0);
        if major != 2 {
            return Err(format!(
                "pcap file with unsupported version {major}.{minor}"
            ));
        }
        return Ok(Format::Pcap { ns, be, modified });
    }
    if magic == [0xa1, 0xb2, 0xcd, 0x34] {
        return Err("big-endian Kuznetsov-patched pcap is not supported".into());
    }
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        return match p.get(8..12) {
            Some([0x4d, 0x3c, 0x2b, 0x1a]) | Some([0x1a, 0x2b, 0x3c, 0x4d]) => Ok(Format::PcapNg),
            Some(_) => Err("pcapng section header with a bad byte-order magic".into()),
            None => Err(format!(
                "pcapng section header truncated ({} bytes)",
                p.len()
            )),
        };
    }
    Err(describe_non_capture(p))
}

/// A helpful name for a file that is not pcap/pcapng.
fn describe_non_capture(p: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (
            b"GMBU",
            "Microsoft Network Monitor capture of a version other than 2.x (unsupported; convert it with `editcap -F pcapng`)",
        ),
        (
            b"RTSS",
            "Microsoft Network Monitor 1.x capture (unsupported; convert it with `editcap -F pcapng`)",
        ),
        (
            b"snoop\0\0\0",
            "Sun snoop capture (unsupported; convert it with `editcap -F pcapng`)",
        ),
        (
            b"XCP\0",
            "NetXRay / Windows Sniffer capture (unsupported; convert it with `editcap -F pcapng`)",
        ),
        (b"\x7fELF", "an ELF executable"),
        (b"PK\x03\x04", "a zip archive (unzip it first)"),
        (b"BZh", "bzip2-compressed data (decompress it first)"),
        (b"\xfd7zXZ\0", "xz-compressed data (decompress it first)"),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data (decompress it first)",
        ),
        (b"%PDF", "a PDF document"),
    ];
    for (m, what) in known {
        if p.starts_with(m) {
            return (*what).to_string();
        }
    }
    if p.len() < 4 {
        return format!("file too short ({} bytes)", p.len());
    }
    let head = p.get(..p.len().min(512)).unwrap_or(p);
    // A multi-byte character cut at the 512-byte mark still reads as text.
    let valid = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(head.get(..e.valid_up_to()).unwrap_or_default()).ok()
        }
        Err(_) => None,
    };
    let texty = valid.is_some_and(|t| {
        !t.is_empty()
            && t.chars()
                .all(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n'))
    });
    if texty {
        let start: String = String::from_utf8_lossy(head)
            .chars()
            .take(40)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        return format!("a text file, starting {:?}", start.trim_end());
    }
    let hex: Vec<String> = p.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!(
        "unknown format, magic {}; ERF and other formats without a magic number are not supported",
        hex.join(" ")
    )
}

impl CaptureReader {
    /// Open `path` (`-` = standard input). Gzip is detected by its magic bytes, not the name.
    /// `file_index` is 0 for a single-file analysis, else the 1-based index of the file.
    pub fn open(path: &str, file_index: u16) -> Result<Self, CaptureError> {
        let io_err = |source| CaptureError::Io {
            path: path.to_string(),
            error: source,
        };
        let raw_read = Arc::new(AtomicU64::new(0));
        let (raw, raw_total): (Source, Option<u64>) = if path == "-" {
            let c = Counting {
                inner: io::stdin(),
                count: Arc::clone(&raw_read),
            };
            (Box::new(c), None)
        } else {
            let meta = std::fs::metadata(path).map_err(io_err)?;
            if meta.is_dir() {
                return Err(CaptureError::IsDirectory {
                    path: path.to_string(),
                });
            }
            // FIFOs and process substitutions report 0 bytes: only a regular file is "empty".
            if meta.is_file() && meta.len() == 0 {
                return Err(CaptureError::Empty {
                    path: path.to_string(),
                });
            }
            let f = std::fs::File::open(path).map_err(io_err)?;
            let c = Counting {
                inner: f,
                count: Arc::clone(&raw_read),
            };
            (Box::new(c), meta.is_file().then_some(meta.len()))
        };
        Self::start(path, raw, raw_total, raw_read, file_index)
    }

    /// Read a capture from any byte stream (in-memory captures, sockets, tests). `name`
    /// stands for the path in [`FileInfo::path`] and in errors. Gzip is detected as for files.
    pub fn from_reader(
        name: &str,
        reader: Box<dyn Read + Send>,
        file_index: u16,
    ) -> Result<Self, CaptureError> {
        let raw_read = Arc::new(AtomicU64::new(0));
        let c = Counting {
            inner: reader,
            count: Arc::clone(&raw_read),
        };
        Self::start(name, Box::new(c), None, raw_read, file_index)
    }

    fn start(
        path: &str,
        mut raw: Source,
        raw_total: Option<u64>,
        raw_read: Arc<AtomicU64>,
        file_index: u16,
    ) -> Result<Self, CaptureError> {
        let io_err = |source| CaptureError::Io {
            path: path.to_string(),
            error: source,
        };
        let prefix = match read_prefix(&mut raw, PEEK_LEN) {
            (p, Some(e)) if p.is_empty() => return Err(io_err(e)),
            (p, _) => p,
        };
        if prefix.is_empty() {
            return Err(CaptureError::Empty {
                path: path.to_string(),
            });
        }
        let mut gz_error = None;
        let (src, prefix, gzip): (Source, Vec<u8>, bool) = if prefix.starts_with(&[0x1f, 0x8b]) {
            let (mut inflated, slot) = gz::spawn(Box::new(Cursor::new(prefix).chain(raw)));
            let p = match read_prefix(&mut inflated, PEEK_LEN) {
                (p, Some(e)) if p.is_empty() => {
                    return Err(CaptureError::NotACapture {
                        path: path.to_string(),
                        detail: format!("gzip-compressed, but the compressed data is damaged: {e}"),
                    });
                }
                (p, _) => p,
            };
            if p.is_empty() {
                return Err(CaptureError::Empty {
                    path: path.to_string(),
                });
            }
            gz_error = Some(slot);
            (inflated, p, true)
        } else {
            (raw, prefix, false)
        };
        let not_capture = |detail: String| CaptureError::NotACapture {
            path: path.to_string(),
            detail: if gzip {
                format!("gzip-compressed {detail}")
            } else {
                detail
            },
        };
        // NetMon 2.x: read whole (it needs random access), convert to an in-memory pcap.
        let mut netmon_damage: Option<(u64, String)> = None;
        let (src, prefix, netmon_file) = if prefix.starts_with(b"GMBU") && prefix.get(5) == Some(&2)
        {
            let mut all = prefix;
            let mut src = src;
            let (rest, err) =
                read_prefix(&mut src, netmon::MAX_NETMON_BYTES.saturating_sub(all.len()));
            all.extend_from_slice(&rest);
            let (pcap, damage) = netmon::to_pcap(&all).map_err(not_capture)?;
            if let Some(e) = err {
                netmon_damage = Some((0, format!("read error: {e}")));
            }
            if let Some(d) = damage {
                netmon_damage = Some((0, d));
            }
            let head = pcap.get(..PEEK_LEN.min(pcap.len())).unwrap_or(&[]).to_vec();
            let tail = pcap.get(head.len()..).unwrap_or(&[]).to_vec();
            let src: Source = Box::new(Cursor::new(tail));
            (src, head, true)
        } else {
            (src, prefix, false)
        };
        let format = detect(&prefix).map_err(not_capture)?;
        let mut st = State {
            info: FileInfo {
                path: path.to_string(),
                gzip,
                ..FileInfo::default()
            },
            file_index,
            num: 0,
            prev_ts: None,
            pcap_link: 0,
            pcap_ns: false,
            pcap_be: false,
            pcap_modified: false,
            ng: false,
            ng_be: false,
            ifaces: Vec::new(),
            snaplen_unlimited: false,
            drops: 0,
            buf_cap: BUF_INITIAL,
        };
        match format {
            Format::Pcap { ns, be, modified } => {
                st.info.format = if netmon_file {
                    "netmon2"
                } else if ns {
                    "pcap-ns"
                } else {
                    "pcap"
                }
                .to_string();
                st.pcap_ns = ns;
                st.pcap_be = be;
                st.pcap_modified = modified;
                st.info.snaplen = u32_at(&prefix, 16, be).unwrap_or(0);
                st.pcap_link = u32_at(&prefix, 20, be).unwrap_or(0);
                st.add_link(st.pcap_link);
            }
            Format::PcapNg => {
                st.info.format = "pcapng".to_string();
                st.ng = true;
                st.ng_be = prefix.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d][..]);
            }
        }
        // A plain pcap file with a whole header: read directly (see `Direct`).
        let (rdr, direct) = if matches!(
            format,
            Format::Pcap {
                modified: false,
                ..
            }
        ) && let Some(h) =
            prefix.get(..24).and_then(|h| <[u8; 24]>::try_from(h).ok())
        {
            let d = Direct {
                src,
                header: h,
                carry: prefix.get(24..).unwrap_or(&[]).to_vec(),
                offset: 24,
                avg: 256,
                eof: false,
            };
            (None, Some(d))
        } else {
            let chained: Source = Box::new(Cursor::new(prefix).chain(src));
            let rdr = pcap_parser::create_reader(BUF_INITIAL, chained).map_err(|e| {
                not_capture(match format {
                    Format::PcapNg => format!(
                        "pcapng section header block is damaged or too long ({})",
                        short_error(&e)
                    ),
                    Format::Pcap { .. } => {
                        format!("pcap file header not readable ({})", short_error(&e))
                    }
                })
            })?;
            (Some(rdr), None)
        };
        Ok(CaptureReader {
            info_st: st,
            rdr,
            direct,
            parser_base: 0,
            raw_read,
            raw_total,
            gz_error,
            stalls: 0,
            netmon_damage: netmon_damage.map(|(_, d)| d),
        })
    }

    /// Append up to `max_frames` frames to `batch`. Returns `Ok(false)` once the input is
    /// exhausted (or damaged: see [`FileInfo::truncated`]) and nothing was appended.
    pub fn next_batch(
        &mut self,
        batch: &mut Batch,
        max_frames: usize,
    ) -> Result<bool, CaptureError> {
        let mut added = 0usize;
        if self.direct.is_some() {
            self.next_direct(batch, max_frames, &mut added);
        }
        while added < max_frames {
            let Some(rdr) = self.rdr.as_mut() else {
                break;
            };
            let st = &mut self.info_st;
            // Hot path: a complete pcapng Enhanced Packet Block read straight from the
            // parser's buffer (the generic parser costs ~4x more per record); anything
            // unusual falls through to pcap-parser below. Plain pcap records reach the
            // parser only after `Direct` handed it a damaged rest, and modified-pcap
            // records always take the generic path.
            let fast = if st.ng {
                st.fast_epb(rdr.data(), batch)
            } else {
                None
            };
            if let Some((len, h)) = fast {
                match h {
                    Handled::Damage(d) => self.damage(d),
                    _ => {
                        rdr.consume_noshift(len);
                        self.stalls = 0;
                        added += 1;
                    }
                }
                continue;
            }
            // pcap-parser 0.17 subtracts 12 from a block's length after checking it only
            // against the block type's own minimum, which is 4 for a Process Information
            // Block: a length of 4..11 overflows (a panic where overflow checks are on,
            // debug builds and the fuzz targets; found by the capture_reader target). The
            // format's smallest block is 12 bytes, so a shorter one is damage, said here.
            if let Some(len) = st
                .ng
                .then(|| short_ng_block(rdr.data(), st.ng_be))
                .flatten()
            {
                self.damage(format!("damaged block (length {len}, under 12)"));
                continue;
            }
            let step = match rdr.next() {
                Ok((off, block)) => match st.handle(block, batch) {
                    Handled::Frame => Step::Consume(off, true),
                    Handled::Other => Step::Consume(off, false),
                    Handled::Damage(d) => Step::Damage(d),
                },
                Err(PcapError::Eof) => Step::Eof,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::UnexpectedEof) => Step::UnexpectedEof,
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(PcapError::ReadError) => Step::ReadError,
                Err(e) => Step::Damage(format!("damaged record ({})", short_error(&e))),
            };
            match step {
                Step::Consume(off, frame) => {
                    rdr.consume_noshift(off);
                    self.stalls = 0;
                    if frame {
                        added += 1;
                    }
                }
                Step::Eof => {
                    if let Some(d) = self.netmon_damage.take() {
                        self.damage(d);
                    }
                    self.end_of_input()
                }
                Step::Refill => {
                    let before = rdr.data().len();
                    if rdr.refill().is_err() {
                        self.read_error();
                        continue;
                    }
                    if rdr.data().len() == before && !rdr.reader_exhausted() {
                        // Nothing was read although the parser wants more: the buffer is
                        // full. Growing is the only way forward.
                        self.grow();
                    }
                }
                Step::Grow => self.grow(),
                Step::UnexpectedEof => {
                    let left = rdr.data().len();
                    if left == 0 {
                        self.end_of_input();
                    } else {
                        let detail = match self.gz_detail() {
                            Some(g) => format!("gzip stream damaged: {g}"),
                            None => format!(
                                "file ends in the middle of a record ({left} bytes of it present)"
                            ),
                        };
                        self.damage(detail);
                    }
                }
                Step::ReadError => self.read_error(),
                Step::Damage(d) => self.damage(d),
            }
        }
        Ok(added > 0 || ((self.rdr.is_some() || self.direct.is_some()) && max_frames == 0))
    }

    /// Direct mode (see [`Direct`]): complete records from the carry and from `read`s into
    /// the batch, until `max_frames` or the end of the file; what is left of a record goes
    /// back to the carry. Leaves `self.direct` set while the file goes on this way.
    fn next_direct(&mut self, batch: &mut Batch, max_frames: usize, added: &mut usize) {
        enum End {
            Full,
            Eof,
            Unusual,
            ReadError,
        }
        let Some(d) = self.direct.as_mut() else {
            return;
        };
        let st = &mut self.info_st;
        let (be, ns, link) = (st.pcap_be, st.pcap_ns, st.pcap_link);
        let start = batch.bytes();
        batch.append_raw(&d.carry);
        d.carry.clear();
        let first = *added;
        let mut pos = start;
        let end = 'fill: loop {
            let room = max_frames.saturating_sub(*added);
            let (raw, frames) = batch.raw_and_frames();
            let (next, n, unusual) = match (be, ns) {
                (false, false) => scan_records::<false, false>(raw, pos, room, st, frames, link),
                (false, true) => scan_records::<false, true>(raw, pos, room, st, frames, link),
                (true, false) => scan_records::<true, false>(raw, pos, room, st, frames, link),
                (true, true) => scan_records::<true, true>(raw, pos, room, st, frames, link),
            };
            pos = next;
            *added += n;
            if unusual {
                break 'fill End::Unusual;
            }
            if *added >= max_frames {
                break End::Full;
            }
            if d.eof {
                break End::Eof;
            }
            // Enough for the record at `pos`, and about what the frames still wanted take.
            // A partial header can already show a captured length: one over the frame cap
            // is only read up to its whole header (the loop above then hands it to the
            // parser as unusual), so a crafted length never becomes an allocation.
            let have = batch.bytes().saturating_sub(pos);
            let rec_need = match batch.raw().get(pos..).and_then(|r| u32_at(r, 8, be)) {
                Some(cap) if cap <= MAX_FRAME_LEN => {
                    (cap as usize).saturating_add(16).saturating_sub(have)
                }
                _ => 16usize.saturating_sub(have),
            };
            // A little under the estimate: record sizes vary, and what a read brings past
            // the batch's last frame is copied again into the next batch; the few frames
            // the estimate falls short by come with a second, small read.
            let want = (max_frames.saturating_sub(*added))
                .saturating_mul(d.avg)
                .saturating_mul(31)
                / 32;
            let want = want.clamp(DIRECT_READ_MIN, DIRECT_READ_MAX).max(rec_need);
            match d.src.read(batch.spare(want)) {
                Ok(0) => d.eof = true,
                Ok(n) => batch.commit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break End::ReadError,
            }
        };
        // The bytes after the last complete record wait for the next batch.
        d.carry
            .extend_from_slice(batch.raw().get(pos..).unwrap_or(&[]));
        batch.truncate_raw(pos);
        d.offset = d.offset.saturating_add((pos - start) as u64);
        if let Some(n) = added.checked_sub(first).filter(|&n| n > 0) {
            d.avg = ((pos - start) / n).max(16);
        }
        match end {
            End::Full => {}
            End::Eof if d.carry.is_empty() => {
                self.direct = None;
                if let Some(dmg) = self.netmon_damage.take() {
                    self.damage(dmg);
                }
                self.end_of_input();
            }
            End::Eof | End::Unusual => self.fallback(),
            End::ReadError => self.read_error(),
        }
    }

    /// Hand the rest of a directly read file to pcap-parser: the file header, the carried
    /// bytes and the unread rest, as if the parser had read the file from the start.
    fn fallback(&mut self) {
        let Some(d) = self.direct.take() else {
            return;
        };
        let rest: Source = Box::new(
            Cursor::new(d.header)
                .chain(Cursor::new(d.carry))
                .chain(d.src),
        );
        match pcap_parser::create_reader(BUF_INITIAL, rest) {
            Ok(r) => {
                self.rdr = Some(r);
                self.parser_base = d.offset.saturating_sub(24);
            }
            // The header was readable when the file was opened, so this is a read error
            // of the rest.
            Err(e) => self.damage_at(d.offset, format!("damaged record ({})", short_error(&e))),
        }
    }

    pub fn info(&self) -> &FileInfo {
        &self.info_st.info
    }

    /// Bytes consumed so far from the underlying file (compressed bytes for .gz).
    pub fn bytes_read(&self) -> u64 {
        self.raw_read.load(Ordering::Relaxed)
    }

    /// Size of the underlying file when known (None for standard input and pipes).
    pub fn total_bytes(&self) -> Option<u64> {
        self.raw_total
    }

    fn gz_detail(&self) -> Option<String> {
        self.gz_error.as_ref().and_then(gz::take_error)
    }

    /// The input ended on a record boundary. For gzip that is only a clean end when the
    /// inflater says so: a cut .gz whose inflated prefix happens to end between records
    /// (or whose error the header peek consumed) must still be reported as truncated.
    fn end_of_input(&mut self) {
        match self.gz_detail() {
            Some(g) => self.damage(format!("gzip stream damaged: {g}")),
            None => {
                self.rdr = None;
                self.direct = None;
            }
        }
    }

    fn read_error(&mut self) {
        let d = match self.gz_detail() {
            Some(g) => format!("gzip stream damaged: {g}"),
            None => "read error".to_string(),
        };
        self.damage(d);
    }

    /// Stop reading this file, recording where and why.
    fn damage(&mut self, detail: String) {
        let byte_offset = match (&self.rdr, &self.direct) {
            (Some(r), _) => (r.consumed() as u64).saturating_add(self.parser_base),
            (None, Some(d)) => d.offset,
            (None, None) => 0,
        };
        self.damage_at(byte_offset, detail);
    }

    /// [`CaptureReader::damage`] at a known file offset.
    fn damage_at(&mut self, byte_offset: u64, detail: String) {
        let st = &mut self.info_st;
        if st.info.truncated.is_none() {
            st.info.truncated = Some(Truncation {
                after_frame: st.num,
                byte_offset,
                detail,
            });
        }
        self.rdr = None;
        self.direct = None;
    }

    /// The record at the head of the buffer does not fit: check what it claims before
    /// growing the buffer for it, so a crafted length never becomes an allocation.
    fn grow(&mut self) {
        self.stalls = self.stalls.saturating_add(1);
        let Some(rdr) = self.rdr.as_mut() else {
            return;
        };
        let st = &self.info_st;
        let d = rdr.data();
        let need: Result<usize, String> = if st.info.format == "pcapng" {
            let be = st.ng_be;
            match u32_at(d, 4, be) {
                None => Ok(st.buf_cap.saturating_mul(2)),
                Some(len) if len as usize > BUF_MAX => {
                    Err(format!("block claims a length of {len} bytes"))
                }
                Some(len) => {
                    let epb = u32_at(d, 0, be) == Some(6);
                    match u32_at(d, 20, be) {
                        Some(cap) if epb && cap > MAX_FRAME_LEN => Err(format!(
                            "frame {} claims a captured length of {cap} bytes",
                            st.num.saturating_add(1)
                        )),
                        _ => Ok(len as usize),
                    }
                }
            }
        } else {
            match u32_at(d, 8, st.pcap_be) {
                None => Ok(st.buf_cap.saturating_mul(2)),
                Some(cap) if cap > MAX_FRAME_LEN => Err(format!(
                    "frame {} claims a captured length of {cap} bytes",
                    st.num.saturating_add(1)
                )),
                Some(cap) => Ok(cap as usize + 24),
            }
        };
        match need {
            Err(detail) => self.damage(detail),
            Ok(_) if self.stalls > MAX_STALLS => self.damage("reader made no progress".to_string()),
            Ok(need) => {
                let cap = self.info_st.buf_cap;
                let new = need
                    .saturating_add(4096)
                    .max(cap.saturating_mul(2))
                    .min(BUF_MAX);
                if new <= cap || !rdr.grow(new) {
                    self.damage(format!(
                        "record of {need} bytes does not fit the {cap}-byte buffer"
                    ));
                    return;
                }
                self.info_st.buf_cap = new;
                if rdr.refill().is_err() {
                    self.read_error();
                }
            }
        }
    }
}

enum Step {
    Consume(usize, bool),
    Eof,
    Refill,
    Grow,
    UnexpectedEof,
    ReadError,
    Damage(String),
}

/// pcap-parser's Display of a nom error prints the whole remaining input: keep the kind.
fn short_error<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => format!("parse error: {k:?}"),
        PcapError::Eof => "end of file".into(),
        PcapError::UnexpectedEof => "unexpected end of file".into(),
        PcapError::ReadError => "read error".into(),
        PcapError::BufferTooSmall => "record too large".into(),
        PcapError::Incomplete(n) => format!("incomplete, {n} more bytes needed"),
        PcapError::HeaderNotRecognized => "header not recognized".into(),
    }
}

/// A pcap record's timestamp (`frac` in µs, or ns for a nanosecond file).
fn pcap_ts(sec: u32, frac: u32, ns: bool) -> Ts {
    let frac = if ns {
        i64::from(frac)
    } else {
        i64::from(frac).saturating_mul(1000)
    };
    Ts(i64::from(sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(frac))
}

/// The length of the pcapng block at the start of `data` when it is under the format's
/// minimum of 12 bytes (block type, length, trailing length). A section header is left to
/// the parser: its byte order is its own, and the parser checks its minimum (28) first.
fn short_ng_block(data: &[u8], be: bool) -> Option<u32> {
    let block_type = u32_at(data, 0, false)?;
    if block_type == 0x0A0D_0D0A {
        return None;
    }
    u32_at(data, 4, be).filter(|&len| len < 12)
}

/// The complete, usual records of a plain pcap in `raw[pos..]`, up to `room` of them,
/// described in `frames` and numbered in `st` (what [`State::number`] does, kept in
/// locals for the run): the direct reader's inner loop, one instance per byte order and
/// timestamp unit so neither is tested per record. Returns where it stopped, the frames
/// added, and whether it stopped at a record whose captured length is over the frame cap
/// (`raw[pos..]` then starts with that record's header).
fn scan_records<const BE: bool, const NANO: bool>(
    raw: &[u8],
    mut pos: usize,
    room: usize,
    st: &mut State,
    frames: &mut Vec<FrameMeta>,
    link: u32,
) -> (usize, usize, bool) {
    let word = |b: [u8; 4]| {
        if BE {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut num = st.num;
    // Sentinels no pcap time reaches (at most 2^32 s, about 4.3e18 ns).
    let mut prev = st.prev_ts.map_or(i64::MIN, |t| t.0);
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    let (mut cut, mut backwards) = (0u64, 0u64);
    let mut added = 0usize;
    let mut unusual = false;
    while added < room {
        let Some(h) = raw.get(pos..).and_then(|r| r.first_chunk::<16>()) else {
            break;
        };
        let [
            s0,
            s1,
            s2,
            s3,
            f0,
            f1,
            f2,
            f3,
            c0,
            c1,
            c2,
            c3,
            o0,
            o1,
            o2,
            o3,
        ] = *h;
        let caplen = word([c0, c1, c2, c3]);
        if caplen > MAX_FRAME_LEN {
            unusual = true;
            break;
        }
        // Both below 2^32 + 2^18: no overflow on 64-bit targets.
        let data = pos + 16;
        let rec_end = data + caplen as usize;
        if rec_end > raw.len() {
            break;
        }
        let origlen = word([o0, o1, o2, o3]);
        let ts = pcap_ts(word([s0, s1, s2, s3]), word([f0, f1, f2, f3]), NANO).0;
        num += 1;
        cut += u64::from(caplen < origlen);
        backwards += u64::from(ts < prev);
        prev = ts;
        first = first.min(ts);
        last = last.max(ts);
        frames.push(FrameMeta {
            id: FrameRef::new(st.file_index, num),
            ts: Ts(ts),
            link,
            orig_len: origlen,
            off: data as u32,
            len: caplen,
        });
        pos = rec_end;
        added += 1;
    }
    if added > 0 {
        st.num = num;
        st.info.frames = num;
        st.info.snaplen_cut_frames = st.info.snaplen_cut_frames.saturating_add(cut);
        st.info.ts_backwards = st.info.ts_backwards.saturating_add(backwards);
        st.prev_ts = Some(Ts(prev));
        st.info.first_ts = Some(Ts(st.info.first_ts.map_or(first, |f| f.0.min(first))));
        st.info.last_ts = Some(Ts(st.info.last_ts.map_or(last, |l| l.0.max(last))));
    }
    (pos, added, unusual)
}

/// Decimal or binary units per second from if_tsresol (None when out of range).
fn ts_units(resol: u8) -> Option<u64> {
    if resol & 0x80 == 0 {
        10u64.checked_pow(u32::from(resol))
    } else {
        1u64.checked_shl(u32::from(resol & 0x7f))
    }
}

/// pcapng timestamp → ns since the epoch (floor of the fractional part, as Wireshark).
fn ng_ts(high: u32, low: u32, units: u64, offset: i64) -> Ts {
    let t = (u64::from(high) << 32) | u64::from(low);
    // Fast path for the usual decimal resolutions (µs, ns, ...): an exact integer scale,
    // no 128-bit division per frame.
    if units != 0 && units <= NS as u64 && (NS as u64).is_multiple_of(units) {
        let fast = t
            .checked_mul(NS as u64 / units)
            .and_then(|n| i64::try_from(n).ok())
            .and_then(|n| n.checked_add(offset.checked_mul(NS as i64)?));
        if let Some(ns) = fast {
            return Ts(ns);
        }
    }
    let t = u128::from(t);
    let units = u128::from(units.max(1));
    let secs = (t / units) as i128;
    let frac = ((t % units) * (NS as u128) / units) as i128;
    let ns = (secs + i128::from(offset)) * NS + frac;
    Ts(ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

impl State {
    fn add_link(&mut self, link: u32) {
        // Few distinct link types exist; the linear check stays short because only new
        // values are pushed.
        if !self.info.link_types.contains(&link) {
            self.info.link_types.push(link);
        }
    }

    fn damage_too_big(&self, caplen: u32) -> Handled {
        Handled::Damage(format!(
            "frame {} claims a captured length of {caplen} bytes (more than {MAX_FRAME_LEN})",
            self.num.saturating_add(1)
        ))
    }

    /// Number and store one frame. `ts` is None for blocks without a timestamp (SPB).
    fn frame(&mut self, batch: &mut Batch, ts: Option<Ts>, link: u32, orig_len: u32, data: &[u8]) {
        let (id, ts) = self.number(ts, data.len(), orig_len);
        batch.push(id, ts, link, orig_len, data);
    }

    /// Number the next frame and count what the file facts need; its id and timestamp.
    fn number(&mut self, ts: Option<Ts>, caplen: usize, orig_len: u32) -> (FrameRef, Ts) {
        self.num = self.num.saturating_add(1);
        self.info.frames = self.num;
        if (caplen as u64) < u64::from(orig_len) {
            self.info.snaplen_cut_frames = self.info.snaplen_cut_frames.saturating_add(1);
        }
        let ts = match ts {
            Some(ts) => {
                if self.prev_ts.is_some_and(|p| ts < p) {
                    self.info.ts_backwards = self.info.ts_backwards.saturating_add(1);
                }
                self.prev_ts = Some(ts);
                // capinfos reports the earliest and the latest time, not the first and last.
                self.info.first_ts = Some(self.info.first_ts.map_or(ts, |f| f.min(ts)));
                self.info.last_ts = Some(self.info.last_ts.map_or(ts, |l| l.max(ts)));
                ts
            }
            None => self.prev_ts.unwrap_or_default(),
        };
        (FrameRef::new(self.file_index, self.num), ts)
    }

    fn handle(&mut self, block: PcapBlockOwned<'_>, batch: &mut Batch) -> Handled {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.pcap_be = h.is_bigendian();
                self.pcap_ns = h.is_nanosecond_precision();
                Handled::Other
            }
            PcapBlockOwned::Legacy(b) => {
                if b.caplen > MAX_FRAME_LEN {
                    return self.damage_too_big(b.caplen);
                }
                let ts = pcap_ts(b.ts_sec, b.ts_usec, self.pcap_ns);
                let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
                let link = self.pcap_link;
                self.frame(batch, Some(ts), link, b.origlen, data);
                Handled::Frame
            }
            PcapBlockOwned::NG(b) => self.handle_ng(b, batch),
        }
    }

    fn handle_ng(&mut self, block: Block<'_>, batch: &mut Batch) -> Handled {
        match block {
            Block::SectionHeader(shb) => {
                // A new section starts afresh: interface ids restart at 0.
                self.ng_be = shb.big_endian();
                self.ifaces.clear();
                Handled::Other
            }
            Block::InterfaceDescription(idb) => {
                if self.ifaces.len() >= MAX_INTERFACES {
                    return Handled::Damage(format!(
                        "more than {MAX_INTERFACES} interfaces in one section"
                    ));
                }
                let be = self.ng_be;
                let mut units = 1_000_000u64;
                let mut offset = 0i64;
                for o in &idb.options {
                    let v = o.value();
                    match o.code {
                        OptionCode::IfTsresol => {
                            if let Some(u) = v.first().and_then(|&r| ts_units(r)) {
                                units = u;
                            }
                        }
                        OptionCode::IfTsoffset => {
                            if let Some(x) = u64_opt(v, be) {
                                offset = x as i64;
                            }
                        }
                        _ => {}
                    }
                }
                let link = idb.linktype.0 as u32;
                if idb.snaplen == 0 {
                    self.snaplen_unlimited = true;
                }
                self.info.snaplen = if self.snaplen_unlimited {
                    0
                } else {
                    self.info.snaplen.max(idb.snaplen)
                };
                self.add_link(link);
                self.ifaces.push(Iface {
                    link,
                    units,
                    offset,
                    snaplen: idb.snaplen,
                    last_drop: None,
                });
                Handled::Other
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = self.ifaces.get(epb.if_id as usize) else {
                    return self.bad_iface(epb.if_id);
                };
                if epb.caplen > MAX_FRAME_LEN {
                    return self.damage_too_big(epb.caplen);
                }
                let (link, units, offset) = (iface.link, iface.units, iface.offset);
                let ts = ng_ts(epb.ts_high, epb.ts_low, units, offset);
                self.count_comments(&epb.options);
                self.frame(batch, Some(ts), link, epb.origlen, epb.packet_data());
                Handled::Frame
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = self.ifaces.first() else {
                    return self.bad_iface(0);
                };
                let link = iface.link;
                let mut data = spb.packet_data();
                if iface.snaplen != 0 {
                    data = data.get(..iface.snaplen as usize).unwrap_or(data);
                }
                if data.len() > MAX_FRAME_LEN as usize {
                    return self.damage_too_big(data.len() as u32);
                }
                self.frame(batch, None, link, spb.origlen, data);
                Handled::Frame
            }
            Block::InterfaceStatistics(isb) => {
                let be = self.ng_be;
                let drop = isb
                    .options
                    .iter()
                    .find(|o| o.code == OptionCode::IsbIfDrop)
                    .and_then(|o| u64_opt(o.value(), be));
                if let (Some(v), Some(iface)) = (drop, self.ifaces.get_mut(isb.if_id as usize)) {
                    // Counters are cumulative per interface: replace, don't add.
                    let old = iface.last_drop.replace(v).unwrap_or(0);
                    self.drops = self
                        .drops
                        .saturating_sub(u128::from(old))
                        .saturating_add(u128::from(v));
                    self.info.interface_drops = Some(u64::try_from(self.drops).unwrap_or(u64::MAX));
                }
                Handled::Other
            }
            Block::Unknown(ub) => {
                let native = if self.ng_be {
                    ub.block_type.swap_bytes()
                } else {
                    ub.block_type
                };
                if native == 2 {
                    self.obsolete_packet(ub.data, batch)
                } else {
                    Handled::Other
                }
            }
            _ => Handled::Other,
        }
    }

    /// An Enhanced Packet Block at the head of `d`, parsed without pcap-parser's generic
    /// block machinery (which costs several times more per frame). Returns the block
    /// length and the outcome, or None when anything is unusual (not an EPB, not complete
    /// in the buffer, inconsistent lengths): pcap-parser then handles the block.
    fn fast_epb(&mut self, d: &[u8], batch: &mut Batch) -> Option<(usize, Handled)> {
        let be = self.ng_be;
        if u32_at(d, 0, be)? != 6 {
            return None;
        }
        let len = u32_at(d, 4, be)? as usize;
        if len < 32
            || !len.is_multiple_of(4)
            || len > d.len()
            || u32_at(d, len - 4, be)? as usize != len
        {
            return None;
        }
        let if_id = u32_at(d, 8, be)?;
        let (hi, lo) = (u32_at(d, 12, be)?, u32_at(d, 16, be)?);
        let caplen = u32_at(d, 20, be)?;
        let origlen = u32_at(d, 24, be)?;
        if caplen > MAX_FRAME_LEN {
            return None;
        }
        let data_end = 28usize.checked_add(caplen as usize)?;
        let padded_end = 28usize.checked_add((caplen as usize).div_ceil(4) * 4)?;
        if padded_end > len - 4 {
            return None;
        }
        let data = d.get(28..data_end)?;
        let Some(iface) = self.ifaces.get(if_id as usize) else {
            return Some((len, self.bad_iface(if_id)));
        };
        let (link, units, offset) = (iface.link, iface.units, iface.offset);
        let opts = d.get(padded_end..len - 4).unwrap_or_default();
        if !opts.is_empty() {
            let c = count_raw_comments(opts, be);
            self.info.comments = self.info.comments.saturating_add(c);
        }
        self.frame(
            batch,
            Some(ng_ts(hi, lo, units, offset)),
            link,
            origlen,
            data,
        );
        Some((len, Handled::Frame))
    }

    fn bad_iface(&self, id: u32) -> Handled {
        Handled::Damage(format!(
            "packet block refers to interface {id}, but the section declares {}",
            self.ifaces.len()
        ))
    }

    fn count_comments(&mut self, opts: &[PcapNGOption<'_>]) {
        let n = opts
            .iter()
            .filter(|o| o.code == OptionCode::Comment)
            .count() as u64;
        self.info.comments = self.info.comments.saturating_add(n);
    }

    /// The obsolete Packet Block (type 2): if_id u16, drops u16, ts high/low, caplen,
    /// origlen, data, options. pcap-parser hands it over as an unknown block.
    fn obsolete_packet(&mut self, body: &[u8], batch: &mut Batch) -> Handled {
        let be = self.ng_be;
        let (Some(if_id), Some(hi), Some(lo), Some(caplen), Some(origlen)) = (
            u16_at(body, 0, be),
            u32_at(body, 4, be),
            u32_at(body, 8, be),
            u32_at(body, 12, be),
            u32_at(body, 16, be),
        ) else {
            return Handled::Damage("packet block too short".into());
        };
        let Some(iface) = self.ifaces.get(usize::from(if_id)) else {
            return self.bad_iface(u32::from(if_id));
        };
        if caplen > MAX_FRAME_LEN {
            return self.damage_too_big(caplen);
        }
        let Some(data) = body.get(20..20 + caplen as usize) else {
            return Handled::Damage("packet block shorter than its captured length".into());
        };
        let (link, units, offset) = (iface.link, iface.units, iface.offset);
        // Options follow the 32-bit padded data.
        let opt_start = 20 + (caplen as usize).div_ceil(4) * 4;
        let comments = count_raw_comments(body.get(opt_start..).unwrap_or_default(), be);
        self.info.comments = self.info.comments.saturating_add(comments);
        self.frame(
            batch,
            Some(ng_ts(hi, lo, units, offset)),
            link,
            origlen,
            data,
        );
        Handled::Frame
    }
}

/// Count opt_comment options in a raw pcapng option list.
fn count_raw_comments(mut opts: &[u8], be: bool) -> u64 {
    let mut n = 0u64;
    while let (Some(code), Some(len)) = (u16_at(opts, 0, be), u16_at(opts, 2, be)) {
        if code == 0 {
            break;
        }
        if code == 1 {
            n += 1;
        }
        let step = 4 + usize::from(len).div_ceil(4) * 4;
        match opts.get(step..) {
            Some(rest) => opts = rest,
            None => break,
        }
    }
    n
}

/// Frames read from one file but not yet handed out by the merge.
struct Pending {
    batch: Batch,
    next: usize,
    done: bool,
}

/// Frames pulled from each file per refill of its pending batch.
const MERGE_CHUNK: usize = 1024;

/// Several files merged by timestamp (ties: earlier file first), numbered per file.
pub struct MergedReader {
    readers: Vec<CaptureReader>,
    pending: Vec<Pending>,
    /// (earliest pending ts, file position) of every file with frames pending.
    heap: BinaryHeap<Reverse<(Ts, usize)>>,
    primed: bool,
}

impl MergedReader {
    /// One path: frames are numbered `FrameRef { file: 0, num }`. Several: `file` is the
    /// 1-based position of the path on the command line.
    pub fn open(paths: &[String]) -> Result<Self, CaptureError> {
        let multi = paths.len() > 1;
        let mut readers = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let idx = if multi {
                u16::try_from(i + 1).unwrap_or(u16::MAX)
            } else {
                0
            };
            readers.push(CaptureReader::open(p, idx)?);
        }
        let pending = readers
            .iter()
            .map(|_| Pending {
                batch: Batch::new(),
                next: 0,
                done: false,
            })
            .collect();
        Ok(MergedReader {
            readers,
            pending,
            heap: BinaryHeap::new(),
            primed: false,
        })
    }

    /// Make sure file `i` has a frame pending (or is done); push it on the heap.
    fn refill(&mut self, i: usize) -> Result<(), CaptureError> {
        let (Some(p), Some(r)) = (self.pending.get_mut(i), self.readers.get_mut(i)) else {
            return Ok(());
        };
        if p.next >= p.batch.len() && !p.done {
            p.batch.clear();
            p.next = 0;
            let more = r.next_batch(&mut p.batch, MERGE_CHUNK)?;
            p.done = !more || p.batch.is_empty();
        }
        if let Some(f) = p.batch.get(p.next) {
            self.heap.push(Reverse((f.ts, i)));
        }
        Ok(())
    }

    pub fn next_batch(
        &mut self,
        batch: &mut Batch,
        max_frames: usize,
    ) -> Result<bool, CaptureError> {
        if self.readers.len() == 1 {
            // No merge needed: read straight into the caller's batch.
            return match self.readers.first_mut() {
                Some(r) => r.next_batch(batch, max_frames),
                None => Ok(false),
            };
        }
        if !self.primed {
            self.primed = true;
            for i in 0..self.readers.len() {
                self.refill(i)?;
            }
        }
        let mut added = 0usize;
        while added < max_frames {
            let Some(Reverse((_, i))) = self.heap.pop() else {
                break;
            };
            if let Some(p) = self.pending.get_mut(i) {
                if let Some(f) = p.batch.get(p.next) {
                    batch.push(f.id, f.ts, f.link, f.orig_len, f.data);
                    added += 1;
                }
                p.next += 1;
            }
            self.refill(i)?;
        }
        Ok(added > 0 || (max_frames == 0 && !self.heap.is_empty()))
    }

    pub fn infos(&self) -> Vec<FileInfo> {
        self.readers.iter().map(|r| r.info().clone()).collect()
    }

    /// Bytes consumed so far from the underlying files (compressed bytes for .gz), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.readers
            .iter()
            .map(CaptureReader::bytes_read)
            .fold(0u64, u64::saturating_add)
    }

    /// Total size of the input files when known (None for standard input).
    pub fn total_bytes(&self) -> Option<u64> {
        self.readers
            .iter()
            .map(CaptureReader::total_bytes)
            .try_fold(0u64, |acc, t| t.map(|t| acc.saturating_add(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::linktype;
    use std::io::Write;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    // ---- literal capture builders -------------------------------------------------

    fn w16(v: &mut Vec<u8>, x: u16, be: bool) {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
    }
    fn w32(v: &mut Vec<u8>, x: u32, be: bool) {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
    }
    fn w64(v: &mut Vec<u8>, x: u64, be: bool) {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
    }

    /// (ts_sec, ts_frac, captured bytes, orig_len)
    type Rec<'a> = (u32, u32, &'a [u8], u32);

    fn pcap(be: bool, ns: bool, link: u32, snaplen: u32, recs: &[Rec<'_>]) -> Vec<u8> {
        let mut v = Vec::new();
        w32(&mut v, if ns { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
        w16(&mut v, 2, be);
        w16(&mut v, 4, be);
        w32(&mut v, 0, be);
        w32(&mut v, 0, be);
        w32(&mut v, snaplen, be);
        w32(&mut v, link, be);
        for (s, f, d, o) in recs {
            w32(&mut v, *s, be);
            w32(&mut v, *f, be);
            w32(&mut v, d.len() as u32, be);
            w32(&mut v, *o, be);
            v.extend_from_slice(d);
        }
        v
    }

    fn block(v: &mut Vec<u8>, be: bool, ty: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        w32(v, ty, be);
        w32(v, len as u32, be);
        v.extend_from_slice(body);
        v.resize(v.len() + (body.len().div_ceil(4) * 4 - body.len()), 0);
        w32(v, len as u32, be);
    }

    fn opt(v: &mut Vec<u8>, be: bool, code: u16, val: &[u8]) {
        w16(v, code, be);
        w16(v, val.len() as u16, be);
        v.extend_from_slice(val);
        v.resize(v.len() + (val.len().div_ceil(4) * 4 - val.len()), 0);
    }

    fn shb(v: &mut Vec<u8>, be: bool) {
        let mut b = Vec::new();
        w32(&mut b, 0x1a2b_3c4d, be);
        w16(&mut b, 1, be);
        w16(&mut b, 0, be);
        w64(&mut b, u64::MAX, be);
        block(v, be, 0x0a0d_0d0a, &b);
    }

    fn idb(
        v: &mut Vec<u8>,
        be: bool,
        link: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) {
        let mut b = Vec::new();
        w16(&mut b, link, be);
        w16(&mut b, 0, be);
        w32(&mut b, snaplen, be);
        if let Some(r) = tsresol {
            opt(&mut b, be, 9, &[r]);
        }
        if let Some(o) = tsoffset {
            let mut x = Vec::new();
            w64(&mut x, o as u64, be);
            opt(&mut b, be, 14, &x);
        }
        if tsresol.is_some() || tsoffset.is_some() {
            opt(&mut b, be, 0, &[]);
        }
        block(v, be, 1, &b);
    }

    fn epb(
        v: &mut Vec<u8>,
        be: bool,
        if_id: u32,
        ts: u64,
        data: &[u8],
        orig: u32,
        comment: Option<&str>,
    ) {
        let mut b = Vec::new();
        w32(&mut b, if_id, be);
        w32(&mut b, (ts >> 32) as u32, be);
        w32(&mut b, ts as u32, be);
        w32(&mut b, data.len() as u32, be);
        w32(&mut b, orig, be);
        b.extend_from_slice(data);
        b.resize(b.len() + (data.len().div_ceil(4) * 4 - data.len()), 0);
        if let Some(c) = comment {
            opt(&mut b, be, 1, c.as_bytes());
            opt(&mut b, be, 0, &[]);
        }
        block(v, be, 6, &b);
    }

    fn isb(v: &mut Vec<u8>, be: bool, if_id: u32, ifdrop: u64) {
        let mut b = Vec::new();
        w32(&mut b, if_id, be);
        w32(&mut b, 0, be);
        w32(&mut b, 0, be);
        let mut x = Vec::new();
        w64(&mut x, ifdrop, be);
        opt(&mut b, be, 5, &x);
        opt(&mut b, be, 0, &[]);
        block(v, be, 5, &b);
    }

    static SEQ: AtomicUsize = AtomicUsize::new(0);

    /// A temporary file removed on drop.
    struct Tmp(std::path::PathBuf);
    impl Tmp {
        fn new(bytes: &[u8]) -> Tmp {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("sipscope-cap-{}-{n}", std::process::id()));
            std::fs::write(&p, bytes).unwrap();
            Tmp(p)
        }
        fn path(&self) -> String {
            self.0.to_string_lossy().into_owned()
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Read everything, with a bound on iterations so a reader bug cannot hang the test.
    fn read_all(r: &mut CaptureReader) -> Vec<ReadFrame> {
        read_all_in(r, 7).0
    }

    type ReadFrame = (FrameRef, Ts, u32, u32, Vec<u8>);

    /// Every frame `r` gives with batches of `max` frames, and its file facts; fails when
    /// the reader does not terminate.
    fn read_all_in(r: &mut CaptureReader, max: usize) -> (Vec<ReadFrame>, String) {
        let mut out = Vec::new();
        let mut batch = Batch::new();
        let start = Instant::now();
        for _ in 0..100_000 {
            batch.clear();
            let more = r.next_batch(&mut batch, max).unwrap();
            assert!(
                batch.buffer_bytes() <= batch_buffer_bound(max),
                "batch buffer of {} bytes for {max} frames",
                batch.buffer_bytes()
            );
            if !more {
                return (out, format!("{:?}", r.info()));
            }
            assert!(!batch.is_empty());
            out.extend(
                batch
                    .iter()
                    .map(|f| (f.id, f.ts, f.link, f.orig_len, f.data.to_vec())),
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "reader does not terminate"
            );
        }
        panic!("reader does not terminate");
    }

    #[test]
    fn a_partial_record_header_claiming_a_huge_length_is_not_an_allocation() {
        // The file ends 12 to 15 bytes into a record header: its captured length is
        // readable before the header is whole. Reading must not size a read by it.
        let d: &[u8] = &[1; 10];
        for be in [false, true] {
            for cut in 12..16 {
                let mut bytes = pcap(be, false, linktype::ETHERNET, 65535, &[(1, 0, d, 10)]);
                let mut h = Vec::new();
                w32(&mut h, 2, be);
                w32(&mut h, 0, be);
                w32(&mut h, 0x831e_8083, be); // caplen, ~2.2 GB
                w32(&mut h, 0x831e_8083, be);
                bytes.extend_from_slice(&h[..cut]);
                for max in [1, 7, 4096] {
                    let mut r = open_bytes(&bytes);
                    let (frames, _) = read_all_in(&mut r, max);
                    assert_eq!(frames.len(), 1, "be {be} cut {cut}");
                    let tr = r.info().truncated.clone().unwrap();
                    assert_eq!(tr.after_frame, 1);
                    assert_eq!(tr.byte_offset, 24 + 26, "be {be} cut {cut}");
                }
            }
        }
    }

    fn open_bytes(bytes: &[u8]) -> CaptureReader {
        CaptureReader::from_reader("mem", Box::new(Cursor::new(bytes.to_vec())), 0).unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    // ---- pcap ---------------------------------------------------------------------

    #[test]
    fn pcap_all_magics() {
        let d1: &[u8] = &[1, 2, 3, 4, 5];
        let d2: &[u8] = &[9; 60];
        for be in [false, true] {
            for ns in [false, true] {
                let bytes = pcap(
                    be,
                    ns,
                    linktype::ETHERNET,
                    65535,
                    &[(1_000, 250, d1, 5), (1_001, 7, d2, 100)],
                );
                let mut r = open_bytes(&bytes);
                let fr = read_all(&mut r);
                assert_eq!(fr.len(), 2, "be={be} ns={ns}");
                let unit = if ns { 1 } else { 1000 };
                assert_eq!(fr[0].0, FrameRef::new(0, 1));
                assert_eq!(fr[1].0, FrameRef::new(0, 2));
                assert_eq!(fr[0].1, Ts(1_000 * 1_000_000_000 + 250 * unit));
                assert_eq!(fr[1].1, Ts(1_001 * 1_000_000_000 + 7 * unit));
                assert_eq!(fr[0].4, d1);
                assert_eq!(fr[1].4, d2);
                assert_eq!(fr[1].3, 100);
                assert_eq!(fr[0].2, linktype::ETHERNET);
                let i = r.info();
                assert_eq!(i.format, if ns { "pcap-ns" } else { "pcap" });
                assert_eq!(i.frames, 2);
                assert_eq!(i.link_types, vec![linktype::ETHERNET]);
                assert_eq!(i.snaplen, 65535);
                assert_eq!(i.snaplen_cut_frames, 1);
                assert_eq!(i.first_ts, Some(fr[0].1));
                assert_eq!(i.last_ts, Some(fr[1].1));
                assert!(i.truncated.is_none());
                assert!(!i.gzip);
            }
        }
    }

    #[test]
    fn pcap_backwards_timestamps_and_min_max() {
        let d: &[u8] = &[0; 20];
        let bytes = pcap(
            false,
            false,
            linktype::RAW,
            0,
            &[(10, 0, d, 20), (5, 0, d, 20), (7, 0, d, 20), (20, 0, d, 20)],
        );
        let mut r = open_bytes(&bytes);
        assert_eq!(read_all(&mut r).len(), 4);
        let i = r.info();
        assert_eq!(i.ts_backwards, 1);
        assert_eq!(i.first_ts, Some(Ts(5_000_000_000)));
        assert_eq!(i.last_ts, Some(Ts(20_000_000_000)));
    }

    #[test]
    fn pcap_truncated_mid_record() {
        let d: &[u8] = &[7; 40];
        let full = pcap(
            false,
            false,
            linktype::ETHERNET,
            65535,
            &[(1, 0, d, 40), (2, 0, d, 40), (3, 0, d, 40)],
        );
        // Cut the third record in the middle of its data.
        let cut = &full[..full.len() - 15];
        let t = Tmp::new(cut);
        let mut r = CaptureReader::open(&t.path(), 0).unwrap();
        assert_eq!(read_all(&mut r).len(), 2);
        let tr = r.info().truncated.clone().expect("truncation recorded");
        assert_eq!(tr.after_frame, 2);
        assert_eq!(tr.byte_offset, 24 + 2 * 56);
        assert!(tr.detail.contains("middle of a record"), "{}", tr.detail);
        // Cut inside a record header.
        let cut = &full[..24 + 56 + 10];
        let mut r = open_bytes(cut);
        assert_eq!(read_all(&mut r).len(), 1);
        assert_eq!(r.info().truncated.as_ref().map(|t| t.after_frame), Some(1));
        // Header only: no frames, not truncated.
        let mut r = open_bytes(&full[..24]);
        assert!(read_all(&mut r).is_empty());
        assert!(r.info().truncated.is_none());
    }

    #[test]
    fn absurd_lengths_are_damage_not_allocations() {
        let d: &[u8] = &[1; 10];
        let mut bytes = pcap(false, false, linktype::ETHERNET, 65535, &[(1, 0, d, 10)]);
        w32(&mut bytes, 2, false);
        w32(&mut bytes, 0, false);
        w32(&mut bytes, 0xffff_fff0, false); // caplen
        w32(&mut bytes, 0xffff_fff0, false);
        bytes.extend_from_slice(&[0; 100]);
        let mut r = open_bytes(&bytes);
        assert_eq!(read_all(&mut r).len(), 1);
        let tr = r.info().truncated.clone().unwrap();
        assert!(tr.detail.contains("captured length"), "{}", tr.detail);
        assert_eq!(tr.after_frame, 1);

        // A frame just over the limit, fully present: still damage.
        let big = vec![0u8; MAX_FRAME_LEN as usize + 1];
        let bytes = pcap(
            false,
            false,
            linktype::ETHERNET,
            0,
            &[(1, 0, d, 10), (2, 0, &big, big.len() as u32)],
        );
        let mut r = open_bytes(&bytes);
        assert_eq!(read_all(&mut r).len(), 1);
        assert!(r.info().truncated.is_some());

        // pcapng block claiming 4 GiB.
        let mut ng = Vec::new();
        shb(&mut ng, false);
        idb(&mut ng, false, 1, 0, None, None);
        w32(&mut ng, 0x0bad, false);
        w32(&mut ng, 0xffff_fff0, false);
        ng.extend_from_slice(&[0; 64]);
        let mut r = open_bytes(&ng);
        assert!(read_all(&mut r).is_empty());
        assert!(
            r.info()
                .truncated
                .as_ref()
                .unwrap()
                .detail
                .contains("length")
        );
    }

    #[test]
    fn large_block_grows_buffer() {
        // A 3 MiB unknown block (bigger than the initial buffer) followed by a packet.
        let mut ng = Vec::new();
        shb(&mut ng, false);
        idb(&mut ng, false, 1, 0, None, None);
        block(&mut ng, false, 0x0bad, &vec![0u8; 3 << 20]);
        epb(&mut ng, false, 0, 5_000_000, &[1, 2, 3], 3, None);
        let mut r = open_bytes(&ng);
        let fr = read_all(&mut r);
        assert_eq!(fr.len(), 1);
        assert_eq!(fr[0].4, vec![1, 2, 3]);
        assert!(r.info().truncated.is_none(), "{:?}", r.info().truncated);
    }

    /// Hands out one byte per read: every record needs several refills.
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn trickling_input_is_read_completely() {
        let d: &[u8] = &[3; 33];
        let bytes = pcap(
            false,
            false,
            linktype::ETHERNET,
            65535,
            &[(1, 0, d, 33), (2, 0, d, 33), (3, 0, d, 33)],
        );
        let mut r =
            CaptureReader::from_reader("trickle", Box::new(Trickle(Cursor::new(bytes.clone()))), 0)
                .unwrap();
        assert_eq!(read_all(&mut r).len(), 3);
        assert!(r.info().truncated.is_none());
        // Truncated trickle.
        let cut = bytes[..bytes.len() - 3].to_vec();
        let mut r =
            CaptureReader::from_reader("trickle", Box::new(Trickle(Cursor::new(cut))), 0).unwrap();
        assert_eq!(read_all(&mut r).len(), 2);
        assert!(r.info().truncated.is_some());
    }

    // ---- pcapng -------------------------------------------------------------------

    fn two_iface_ng(be: bool) -> Vec<u8> {
        let mut v = Vec::new();
        shb(&mut v, be);
        idb(&mut v, be, 1, 65535, None, None); // Ethernet, µs
        idb(&mut v, be, 101, 0, Some(9), Some(100)); // raw IP, ns, +100 s
        epb(&mut v, be, 0, 1_500_000_123_456, &[0xaa; 14], 14, None);
        epb(
            &mut v,
            be,
            1,
            1_400_000_000_123_456_789,
            &[0x45; 20],
            60,
            Some("hello"),
        );
        isb(&mut v, be, 0, 5);
        isb(&mut v, be, 1, 2);
        isb(&mut v, be, 0, 7); // cumulative: replaces the 5
        v
    }

    #[test]
    fn pcapng_two_interfaces_both_endiannesses() {
        for be in [false, true] {
            let mut r = open_bytes(&two_iface_ng(be));
            let fr = read_all(&mut r);
            assert_eq!(fr.len(), 2, "be={be}");
            assert_eq!(fr[0].2, linktype::ETHERNET);
            assert_eq!(fr[0].1, Ts(1_500_000_123_456_000));
            assert_eq!(fr[1].2, linktype::RAW);
            assert_eq!(fr[1].1, Ts(1_400_000_000_123_456_789 + 100_000_000_000));
            assert_eq!(fr[1].3, 60);
            let i = r.info();
            assert_eq!(i.format, "pcapng");
            assert_eq!(i.link_types, vec![linktype::ETHERNET, linktype::RAW]);
            assert_eq!(i.snaplen, 0, "one interface is unlimited");
            assert_eq!(i.comments, 1);
            assert_eq!(i.interface_drops, Some(9));
            assert_eq!(i.snaplen_cut_frames, 1);
            assert_eq!(i.frames, 2);
            assert!(i.truncated.is_none(), "{:?}", i.truncated);
        }
    }

    #[test]
    fn pcapng_binary_resolution_and_sections() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 1500, Some(0x80 | 10), None); // 1/1024 s
        epb(&mut v, false, 0, 10 * 1024 + 512, &[1], 1, None);
        // New section: interface 0 is now raw IP with the default µs resolution.
        shb(&mut v, false);
        idb(&mut v, false, 101, 9000, None, None);
        epb(&mut v, false, 0, 2_000_000, &[2], 1, None);
        // Simple Packet Block on interface 0 of the current section: no timestamp.
        let mut spb = Vec::new();
        w32(&mut spb, 3, false);
        spb.extend_from_slice(&[5, 6, 7]);
        block(&mut v, false, 3, &spb);
        // Obsolete Packet Block with a comment.
        let mut pb = Vec::new();
        w16(&mut pb, 0, false);
        w16(&mut pb, 0, false);
        w32(&mut pb, 0, false);
        w32(&mut pb, 3_000_000, false);
        w32(&mut pb, 2, false);
        w32(&mut pb, 2, false);
        pb.extend_from_slice(&[8, 9, 0, 0]);
        opt(&mut pb, false, 1, b"old");
        opt(&mut pb, false, 0, &[]);
        block(&mut v, false, 2, &pb);
        let mut r = open_bytes(&v);
        let fr = read_all(&mut r);
        assert_eq!(fr.len(), 4);
        assert_eq!(fr[0].1, Ts(10_500_000_000));
        assert_eq!(fr[0].2, linktype::ETHERNET);
        assert_eq!(fr[1].2, linktype::RAW);
        assert_eq!(fr[1].1, Ts(2_000_000_000));
        assert_eq!(fr[2].4, vec![5, 6, 7]);
        assert_eq!(fr[2].2, linktype::RAW);
        assert_eq!(fr[3].4, vec![8, 9]);
        assert_eq!(fr[3].1, Ts(3_000_000_000));
        assert_eq!(
            fr.iter().map(|f| f.0.num).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let i = r.info();
        assert_eq!(i.snaplen, 9000);
        assert_eq!(i.comments, 1);
        assert_eq!(i.link_types, vec![linktype::ETHERNET, linktype::RAW]);
        assert_eq!(i.interface_drops, None);
        // The SPB has no time: it does not move first/last.
        assert_eq!(i.first_ts, Some(Ts(2_000_000_000)));
        assert_eq!(i.last_ts, Some(Ts(10_500_000_000)));
    }

    #[test]
    fn pcapng_unknown_interface_is_damage() {
        let mut v = Vec::new();
        shb(&mut v, false);
        idb(&mut v, false, 1, 0, None, None);
        epb(&mut v, false, 0, 1, &[1], 1, None);
        epb(&mut v, false, 3, 2, &[1], 1, None);
        epb(&mut v, false, 0, 3, &[1], 1, None);
        let mut r = open_bytes(&v);
        assert_eq!(read_all(&mut r).len(), 1);
        let tr = r.info().truncated.clone().unwrap();
        assert_eq!(tr.after_frame, 1);
        assert!(tr.detail.contains("interface 3"), "{}", tr.detail);
    }

    #[test]
    fn a_pcapng_block_shorter_than_12_bytes_is_damage() {
        // A Process Information Block claiming 4..11 bytes made pcap-parser 0.17 subtract
        // 12 from its length (a panic with overflow checks on: the capture_reader fuzz
        // target's crash). Both byte orders, with frames before it.
        for be in [false, true] {
            for len in 4u32..12 {
                let mut v = Vec::new();
                shb(&mut v, be);
                idb(&mut v, be, 1, 0, None, None);
                epb(&mut v, be, 0, 1, &[1, 2, 3], 3, None);
                let at = v.len();
                w32(&mut v, 0x8000_0001, be);
                w32(&mut v, len, be);
                v.extend_from_slice(&[0; 24]);
                for batch in [1, 7, 4096] {
                    let mut r = open_bytes(&v);
                    let (frames, _) = read_all_in(&mut r, batch);
                    assert_eq!(frames.len(), 1, "be {be} len {len}");
                    let tr = r.info().truncated.clone().expect("damage recorded");
                    assert_eq!((tr.after_frame, tr.byte_offset), (1, at as u64));
                    assert!(tr.detail.contains("under 12"), "{}", tr.detail);
                }
            }
        }
    }

    #[test]
    fn pcapng_truncated_mid_block() {
        let full = two_iface_ng(false);
        let mut r = open_bytes(&full[..full.len() - 30]);
        assert_eq!(read_all(&mut r).len(), 2);
        assert!(r.info().truncated.is_some());
    }

    #[test]
    fn readers_can_move_to_other_threads() {
        fn send<T: Send>() {}
        send::<CaptureReader>();
        send::<MergedReader>();
    }

    #[test]
    fn ng_timestamp_arithmetic() {
        // Binary fractions are floored, as tshark 4.0 shows them (checked: 1/1024 s
        // prints as 0.000976562).
        assert_eq!(ng_ts(0, 1, 1024, 0), Ts(976_562));
        assert_eq!(ng_ts(0, 3, 1024, 0), Ts(2_929_687));
        // Picoseconds, and a negative offset.
        assert_eq!(
            ng_ts(349, 1_056_413_696, 1_000_000_000_000, -1),
            Ts(500_000_000)
        );
        // Far beyond i64 nanoseconds: clamped, no overflow.
        assert_eq!(ng_ts(u32::MAX, u32::MAX, 1, i64::MAX), Ts(i64::MAX));
        assert_eq!(ts_units(6), Some(1_000_000));
        assert_eq!(ts_units(0x80 | 20), Some(1 << 20));
        assert_eq!(ts_units(20), None);
    }

    /// Throughput check (run with `--ignored --nocapture`, in release for real numbers).
    #[test]
    #[ignore]
    fn throughput_small_frames() {
        let d: &[u8] = &[0x55; 60];
        let n = 2_000_000u32;
        let mut bytes = pcap(false, false, 1, 65535, &[]);
        bytes.reserve(n as usize * 76);
        for i in 0..n {
            for x in [i / 1000, (i % 1000) * 1000, 60, 60] {
                w32(&mut bytes, x, false);
            }
            bytes.extend_from_slice(d);
        }
        let mut ng = Vec::new();
        shb(&mut ng, false);
        idb(&mut ng, false, 1, 0, None, None);
        for i in 0..u64::from(n) {
            epb(&mut ng, false, 0, i * 20_000, d, 60, None);
        }
        for (name, data) in [("pcap", bytes), ("pcapng", ng)] {
            let mut r = open_bytes(&data);
            let mut batch = Batch::new();
            let t = Instant::now();
            let mut total = 0usize;
            for _ in 0..10_000_000 {
                batch.clear();
                if !r.next_batch(&mut batch, 4096).unwrap() {
                    break;
                }
                total += batch.len();
            }
            let el = t.elapsed().as_secs_f64();
            assert_eq!(total, n as usize);
            eprintln!(
                "{name}: {total} frames in {el:.3} s = {:.1} M frames/s",
                total as f64 / el / 1e6
            );
        }
    }

    // ---- gzip -----------------------------------------------------------------

    #[test]
    fn gzip_is_transparent_including_multi_member() {
        let d: &[u8] = &[4; 100];
        let recs: Vec<Rec<'_>> = (0..500u32).map(|i| (i, 0, d, 100)).collect();
        let plain = pcap(false, false, linktype::ETHERNET, 65535, &recs);
        let gz = gzip(&plain);
        let t = Tmp::new(&gz);
        let mut r = CaptureReader::open(&t.path(), 0).unwrap();
        assert_eq!(read_all(&mut r).len(), 500);
        assert!(r.info().gzip);
        assert!(r.info().truncated.is_none());
        assert_eq!(r.bytes_read(), gz.len() as u64);
        assert_eq!(r.total_bytes(), Some(gz.len() as u64));

        // Two gzip members concatenated = one stream.
        let mid = 24 + 250 * 116;
        let mut two = gzip(&plain[..mid]);
        two.extend(gzip(&plain[mid..]));
        let mut r = open_bytes(&two);
        assert_eq!(read_all(&mut r).len(), 500);
        assert!(r.info().truncated.is_none());

        // Truncated gzip: frames before the cut, damage recorded.
        let mut r = open_bytes(&gz[..gz.len() / 2]);
        let n = read_all(&mut r).len();
        assert!(n > 0 && n < 500, "{n}");
        let tr = r.info().truncated.clone().unwrap();
        assert!(
            tr.detail.contains("gzip") || tr.detail.contains("middle"),
            "{}",
            tr.detail
        );
    }

    // ---- errors -------------------------------------------------------------------

    fn not_capture(bytes: &[u8]) -> String {
        match CaptureReader::from_reader("x", Box::new(Cursor::new(bytes.to_vec())), 0) {
            Err(CaptureError::NotACapture { detail, .. }) => detail,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted {bytes:?}"),
        }
    }

    #[test]
    fn not_a_capture_is_named() {
        assert!(
            not_capture(b"GMBU\x00\x02\x00\x00\x00\x00\x00\x00")
                .contains("NetMon header truncated")
        );
        assert!(not_capture(b"GMBU\x00\x03\x00\x00\x00\x00\x00\x00").contains("Network Monitor"));
        assert!(not_capture(b"snoop\0\0\0\0\0\0\x02\0\0\0\x04").contains("snoop"));
        assert!(not_capture(b"INVITE sip:bob@example.com SIP/2.0\r\n").contains("text file"));
        assert!(
            not_capture(&[0x00, 0x11, 0x22, 0x33, 0x44, 0xff, 0x00, 0x01])
                .contains("unknown format")
        );
        let mut bad = pcap(false, false, 1, 0, &[]);
        bad[4] = 9; // version 9.4
        assert!(not_capture(&bad).contains("version 9"));
        assert!(not_capture(&pcap(false, false, 1, 0, &[])[..10]).contains("truncated"));
        assert!(
            not_capture(&gzip(b"hello world, this is text\n"))
                .contains("gzip-compressed a text file")
        );
        assert!(
            not_capture(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4]).contains("byte-order")
        );
    }

    #[test]
    fn open_errors() {
        let dir = std::env::temp_dir();
        assert!(matches!(
            CaptureReader::open(&dir.to_string_lossy(), 0),
            Err(CaptureError::IsDirectory { .. })
        ));
        let empty = Tmp::new(b"");
        assert!(matches!(
            CaptureReader::open(&empty.path(), 0),
            Err(CaptureError::Empty { .. })
        ));
        assert!(matches!(
            CaptureReader::open("/nonexistent/sipscope/x.pcap", 0),
            Err(CaptureError::Io { .. })
        ));
        assert!(matches!(
            CaptureReader::from_reader("x", Box::new(io::empty()), 0),
            Err(CaptureError::Empty { .. })
        ));
    }

    // ---- merge --------------------------------------------------------------------

    #[test]
    fn merge_interleaves_by_time_ties_to_first_file() {
        let d: &[u8] = &[1];
        let a = Tmp::new(&pcap(
            false,
            false,
            1,
            0,
            &[(1, 0, d, 1), (3, 0, d, 1), (5, 0, d, 1), (6, 0, d, 1)],
        ));
        let mut ng = Vec::new();
        shb(&mut ng, false);
        idb(&mut ng, false, 101, 0, None, None);
        for s in [2u64, 3, 4, 7] {
            epb(&mut ng, false, 0, s * 1_000_000, &[2], 1, None);
        }
        let b = Tmp::new(&gzip(&ng));
        let mut m = MergedReader::open(&[a.path(), b.path()]).unwrap();
        let mut out = Vec::new();
        let mut batch = Batch::new();
        for _ in 0..100 {
            batch.clear();
            if !m.next_batch(&mut batch, 3).unwrap() {
                break;
            }
            out.extend(batch.iter().map(|f| (f.id, f.ts.0 / 1_000_000_000, f.link)));
        }
        let ids: Vec<String> = out.iter().map(|(id, _, _)| id.to_string()).collect();
        assert_eq!(
            ids,
            vec!["1:1", "2:1", "1:2", "2:2", "2:3", "1:3", "1:4", "2:4"]
        );
        let secs: Vec<i64> = out.iter().map(|x| x.1).collect();
        assert_eq!(secs, vec![1, 2, 3, 3, 4, 5, 6, 7]);
        assert_eq!(out[1].2, linktype::RAW);
        let infos = m.infos();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].frames, 4);
        assert_eq!(infos[1].frames, 4);
        assert!(infos[1].gzip);
        let total = m.total_bytes().unwrap();
        assert_eq!(
            total,
            std::fs::metadata(&a.0).unwrap().len() + std::fs::metadata(&b.0).unwrap().len()
        );
        assert_eq!(m.bytes_read(), total);

        // One file: numbering with file 0, no merge.
        let mut m = MergedReader::open(&[a.path()]).unwrap();
        batch.clear();
        assert!(m.next_batch(&mut batch, 100).unwrap());
        assert_eq!(batch.get(0).unwrap().id, FrameRef::new(0, 1));
        assert_eq!(batch.len(), 4);
        batch.clear();
        assert!(!m.next_batch(&mut batch, 100).unwrap());
    }

    // ---- robustness ---------------------------------------------------------------

    /// Reads at most `chunk` bytes per call: records arrive cut at arbitrary places.
    struct Chunky(Cursor<Vec<u8>>, usize);
    impl Read for Chunky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1.max(1));
            self.0.read(&mut buf[..n])
        }
    }

    /// A plain pcap read directly (`Direct`) and the same bytes read by pcap-parser from
    /// the start give the same frames, numbers, times and file facts, damage included.
    fn direct_matches_parser(bytes: &[u8], chunk: usize, max: usize) {
        let mk = || {
            CaptureReader::from_reader(
                "mem",
                Box::new(Chunky(Cursor::new(bytes.to_vec()), chunk)),
                0,
            )
        };
        let (Ok(mut direct), Ok(mut parser)) = (mk(), mk()) else {
            return;
        };
        assert!(direct.direct.is_some(), "a plain pcap is read directly");
        parser.fallback();
        assert!(parser.rdr.is_some() && parser.direct.is_none());
        let a = read_all_in(&mut direct, max);
        let b = read_all_in(&mut parser, max);
        assert_eq!(a.0.len(), b.0.len(), "frames");
        assert!(a.0 == b.0, "frame contents differ");
        assert_eq!(a.1, b.1, "file facts");
    }

    #[test]
    fn direct_reading_matches_the_parser_on_clean_and_damaged_files() {
        // Records of every size up to a few KiB, big and little endian, µs and ns, over
        // more than one read; then cut inside a header, inside data, after a record, and
        // with a captured length beyond the limit in the middle.
        for (be, ns) in [(false, false), (true, false), (false, true), (true, true)] {
            let data: Vec<Vec<u8>> = (0..3000u32)
                .map(|i| vec![(i % 251) as u8; ((i * 37) % 1600) as usize])
                .collect();
            let recs: Vec<Rec<'_>> = data
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        i as u32,
                        (i as u32 * 7919) % 1_000_000,
                        d.as_slice(),
                        d.len() as u32 + (i as u32 % 3),
                    )
                })
                .collect();
            let full = pcap(be, ns, linktype::ETHERNET, 65535, &recs);
            let huge = {
                let mut v = full.clone();
                // Record 1500's caplen field.
                let mut off = 24;
                for d in data.iter().take(1500) {
                    off += 16 + d.len();
                }
                let bad = if be {
                    0x7fff_ffffu32.to_be_bytes()
                } else {
                    0x7fff_ffffu32.to_le_bytes()
                };
                v[off + 8..off + 12].copy_from_slice(&bad);
                v
            };
            for bytes in [
                full.clone(),
                full[..full.len() - 5].to_vec(),
                full[..full.len() - 1200].to_vec(),
                full[..30].to_vec(),
                full[..24].to_vec(),
                huge,
            ] {
                for (chunk, max) in [
                    (usize::MAX, 4096),
                    (usize::MAX, 7),
                    (1000, 1),
                    (70_000, 333),
                ] {
                    direct_matches_parser(&bytes, chunk, max);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_tail_never_panics(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), ng in proptest::prelude::any::<bool>(), be in proptest::prelude::any::<bool>()) {
            let mut bytes = if ng {
                let mut v = Vec::new();
                shb(&mut v, be);
                idb(&mut v, be, 1, 0, None, None);
                v
            } else {
                pcap(be, false, 1, 65535, &[])
            };
            bytes.extend_from_slice(&tail);
            let mut r = open_bytes(&bytes);
            let n = read_all(&mut r).len() as u64;
            proptest::prop_assert_eq!(n, r.info().frames);
        }

        #[test]
        fn direct_reading_matches_the_parser(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000), be in proptest::prelude::any::<bool>(), chunk in 1usize..5000, max in 1usize..50) {
            // A few clean records, then arbitrary bytes (lengths, cuts, garbage).
            let d: &[u8] = &[9; 100];
            let mut bytes = pcap(be, false, 1, 65535, &[(1, 0, d, 100), (2, 0, d, 100)]);
            bytes.extend_from_slice(&tail);
            direct_matches_parser(&bytes, chunk, max);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(mut r) = CaptureReader::from_reader("x", Box::new(Cursor::new(data)), 0) {
                let _ = read_all(&mut r);
            }
        }
    }

    // ---- the real corpus ------------------------------------------------------------

    /// "2005-07-04 09:32:20.839312" (UTC) for a Ts, with `digits` fractional digits.
    fn fmt_utc(ts: Ts, digits: usize) -> String {
        let secs = ts.0.div_euclid(1_000_000_000);
        let nanos = ts.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let frac = format!("{nanos:09}");
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{}",
            tod / 3600,
            tod / 60 % 60,
            tod % 60,
            &frac[..digits.min(9)]
        )
    }

    #[test]
    fn fmt_utc_known_dates() {
        assert_eq!(fmt_utc(Ts(0), 6), "1970-01-01 00:00:00.000000");
        assert_eq!(
            fmt_utc(Ts(1_120_469_540_839_312_000), 6),
            "2005-07-04 09:32:20.839312"
        );
        assert_eq!(
            fmt_utc(Ts(951_782_400_000_000_001), 9),
            "2000-02-29 00:00:00.000000001"
        );
    }

    fn capinfos_field<'a>(txt: &'a str, key: &str) -> Option<&'a str> {
        txt.lines().find_map(|l| l.strip_prefix(key)).map(str::trim)
    }

    #[test]
    fn corpus_frame_counts_and_times_match_capinfos() {
        let root = std::path::Path::new("../shared/pcaps");
        if !root.is_dir() {
            eprintln!("SKIP corpus test: {} not found", root.display());
            return;
        }
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if let Some(name) = p.file_name().and_then(|n| n.to_str())
                    && !name.ends_with(".tshark.txt")
                    && !name.ends_with(".md")
                {
                    files.push(p);
                }
            }
        }
        files.sort();
        let (mut checked, mut unsupported) = (0, Vec::new());
        let start = Instant::now();
        for p in files.iter().take(1000) {
            let txt_path = format!("{}.tshark.txt", p.display());
            let Ok(txt) = std::fs::read_to_string(&txt_path) else {
                continue;
            };
            // capinfos abbreviates large counts ("11 k"); the counts section has the exact one.
            let want: u64 = capinfos_field(&txt, "Number of packets:")
                .and_then(|s| s.parse().ok())
                .or_else(|| capinfos_field(&txt, "packets:").and_then(|s| s.parse().ok()))
                .unwrap_or_else(|| panic!("{txt_path}: no packet count"));
            let ftype = capinfos_field(&txt, "File type:").unwrap_or("");
            let path = p.to_string_lossy().into_owned();
            let mut r = match CaptureReader::open(&path, 0) {
                Ok(r) => r,
                Err(CaptureError::NotACapture { detail, .. }) => {
                    assert!(!ftype.contains("pcap"), "{path}: {detail}");
                    unsupported.push(format!("{path} ({ftype}): {detail}"));
                    continue;
                }
                Err(e) => panic!("{path}: {e}"),
            };
            let n = read_all(&mut r).len() as u64;
            let i = r.info();
            assert_eq!(n, want, "{path}: frames ({:?})", i.truncated);
            assert_eq!(i.frames, want, "{path}");
            for (key, got) in [
                ("First packet time:", i.first_ts),
                ("Last packet time:", i.last_ts),
            ] {
                if let Some(t) = capinfos_field(&txt, key).filter(|t| t.contains('.')) {
                    let digits = t.rsplit('.').next().map_or(0, str::len);
                    let got = got.map(|g| fmt_utc(g, digits));
                    assert_eq!(got.as_deref(), Some(t), "{path}: {key}");
                }
            }
            checked += 1;
            assert!(start.elapsed() < Duration::from_secs(120));
        }
        for u in &unsupported {
            eprintln!("unsupported (expected): {u}");
        }
        assert!(checked > 0);
        eprintln!(
            "corpus: {checked} captures matched capinfos, {} unsupported",
            unsupported.len()
        );
    }
}
