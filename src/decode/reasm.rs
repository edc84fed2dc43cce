//! IP fragment and TCP stream reassembly, capped and timed out on capture time.
//!
//! Owns all decode-time state: the fragment table (IPv4 and IPv6, keyed by source,
//! destination, identification and protocol) and the per-direction TCP stream table.
//! Both tables are hash maps with a seeded hasher and have a size cap; ageing and
//! eviction use lazy queues (one entry per touch, stale entries skipped and compacted),
//! so every operation is amortised O(1) or O(log n) whatever the input.
//!
//! Choices (documented because the numbers depend on them):
//! - Overlapping fragments: the FIRST data received for a byte wins (as Wireshark does);
//!   each fragment that overlaps data already held counts once in `fragment_overlaps`.
//! - A reassembled packet is reported at the fragment that completed it; `fragments` holds
//!   the first frame seen for that packet, that completing frame, and the fragment count.
//! - TCP: the first segment seen in a direction (SYN or mid-stream) sets the expected
//!   sequence number. FIN/RST are always delivered as their own empty chunk, after any data
//!   of the same segment, so the SIP layer has one place to drop its buffer.

use super::link::decode_ip_payload;
use super::{Datagram, Decoded, Fragment, Held, L4, ReassemblyStats, TcpChunk, TcpFlags};
use crate::types::{Endpoint, FiveTuple, FrameRef, Transport, Ts};
use foldhash::fast::RandomState;
use smallvec::SmallVec;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

/// Largest reassembled IP payload accepted (bytes after the IP header). IPv4's 13-bit offset
/// allows a little more, which is exactly the "ping of death" shape: refused.
const MAX_REASSEMBLED: u32 = 65_535;
/// Fragments one packet may arrive in. Real traffic needs a few dozen at most (64 KiB over a
/// 1280-byte IPv6 MTU is 52); the cap keeps the per-fragment range bookkeeping O(1).
const MAX_FRAGMENTS_PER_PACKET: u16 = 256;
/// Bookkeeping cost charged per buffered out-of-order TCP segment on top of its bytes, so a
/// flood of 1-byte segments cannot hold far more memory than `max_tcp_buffer` says.
const TCP_SEGMENT_OVERHEAD: usize = 64;
/// A segment further than this from the expected position (either way) resynchronises the
/// stream instead of being treated as a retransmission or buffered.
const TCP_RESYNC_WINDOW: i64 = 1 << 30;
/// Lazy queues are compacted when they hold this many more entries than live state.
const QUEUE_SLACK: usize = 4096;

/// Caps and timeouts for the reassembly tables.
#[derive(Debug, Clone, Copy)]
pub struct ReassemblyLimits {
    pub max_fragment_packets: usize,
    pub fragment_timeout_ms: i64,
    pub max_tcp_streams: usize,
    /// Per direction: bytes buffered out of order before the stream skips ahead (gap).
    pub max_tcp_buffer: usize,
    pub tcp_idle_timeout_ms: i64,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_fragment_packets: 4096,
            fragment_timeout_ms: 30_000,
            max_tcp_streams: 16_384,
            max_tcp_buffer: 256 * 1024,
            tcp_idle_timeout_ms: 600_000,
        }
    }
}

type FragInfo = Option<(FrameRef, FrameRef, u16)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    ident: u32,
    proto: u8,
}

struct FragEntry {
    /// Unique id, so a queue entry for a packet that has since completed is recognised.
    generation: u64,
    created: Ts,
    first_frame: FrameRef,
    frames: u16,
    /// Data held, as disjoint pieces (offset, bytes) in arrival order: memory follows the
    /// bytes received, not the offsets claimed (a lone fragment at offset 65000 is cheap).
    pieces: SmallVec<[(u32, Vec<u8>); 4]>,
    /// Byte ranges held, sorted, disjoint and non-adjacent (merged).
    have: SmallVec<[(u32, u32); 4]>,
    /// Payload length, known once the last fragment (more = false) arrived.
    total: Option<u32>,
}

impl FragEntry {
    /// Copy the parts of `[off, off+data.len())` not held yet (first data wins).
    /// Returns whether the fragment overlapped data already held.
    fn insert(&mut self, off: u32, data: &[u8]) -> bool {
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let end = off.saturating_add(len);
        if end <= off {
            return false;
        }
        let mut overlap = false;
        let mut pos = off;
        // Copy the gaps between held ranges.
        let mut gaps: SmallVec<[(u32, u32); 4]> = SmallVec::new();
        for &(a, b) in &self.have {
            if b <= pos {
                continue;
            }
            if a >= end {
                break;
            }
            overlap = true;
            if a > pos {
                gaps.push((pos, a));
            }
            pos = pos.max(b);
            if pos >= end {
                break;
            }
        }
        if pos < end {
            gaps.push((pos, end));
        }
        for (a, b) in gaps {
            let (sa, sb) = ((a - off) as usize, (b - off) as usize);
            if let Some(src) = data.get(sa..sb) {
                self.pieces.push((a, src.to_vec()));
            }
        }
        // Merge [off, end) into the range list.
        let mut merged: SmallVec<[(u32, u32); 4]> = SmallVec::with_capacity(self.have.len() + 1);
        let (mut ns, mut ne) = (off, end);
        let mut placed = false;
        for &(a, b) in &self.have {
            if b < ns {
                merged.push((a, b));
            } else if a > ne {
                if !placed {
                    merged.push((ns, ne));
                    placed = true;
                }
                merged.push((a, b));
            } else {
                ns = ns.min(a);
                ne = ne.max(b);
            }
        }
        if !placed {
            merged.push((ns, ne));
        }
        self.have = merged;
        overlap
    }

    /// The packet payload, `total` bytes long (pieces past the end are cut off).
    fn assemble(&self, total: usize) -> Vec<u8> {
        let mut buf = vec![0u8; total];
        for (off, data) in &self.pieces {
            let off = *off as usize;
            let n = data.len().min(total.saturating_sub(off));
            if let (Some(dst), Some(src)) = (buf.get_mut(off..off + n), data.get(..n)) {
                dst.copy_from_slice(src);
            }
        }
        buf
    }

    fn complete(&self) -> bool {
        match (self.total, self.have.first()) {
            (Some(t), Some(&(0, e))) => e >= t,
            _ => false,
        }
    }
}

/// One direction of a TCP connection.
struct Stream {
    /// Last touch, to find the queue entry that is current.
    stamp: u64,
    last_ts: Ts,
    /// Next expected sequence number, and the same position unwrapped to 64 bits (so
    /// ordering in the buffer survives u32 wrap-around).
    next_seq: u32,
    next_abs: i64,
    /// Out-of-order segments by unwrapped start position.
    ooo: BTreeMap<i64, Vec<u8>>,
    ooo_cost: usize,
}

impl Stream {
    fn new(next_seq: u32, ts: Ts) -> Self {
        Stream {
            stamp: 0,
            last_ts: ts,
            next_seq,
            next_abs: 0,
            ooo: BTreeMap::new(),
            ooo_cost: 0,
        }
    }
    /// Position of `seq` relative to the expected one, assuming it is within 2 GiB.
    fn unwrap(&self, seq: u32) -> i64 {
        self.next_abs + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }
    fn advance_to(&mut self, abs: i64) {
        if abs > self.next_abs {
            self.next_seq = self.next_seq.wrapping_add((abs - self.next_abs) as u32);
            self.next_abs = abs;
        }
    }
}

/// Emits TCP chunks for one stream direction.
struct Emit<'o> {
    out: &'o mut dyn FnMut(Datagram<'_>),
    frame: FrameRef,
    ts: Ts,
    tuple: FiveTuple,
    syn: bool,
    /// Fragment facts, attached to the chunk made of this very segment's bytes.
    frag: FragInfo,
    emitted: bool,
    /// A resynchronisation skipped bytes: the next chunk carries `gap_before`.
    gap_pending: bool,
}

impl Emit<'_> {
    fn chunk(&mut self, payload: &[u8], chunk: TcpChunk, own: bool) {
        self.emitted = true;
        let gap_before = chunk.gap_before || std::mem::take(&mut self.gap_pending);
        (self.out)(Datagram {
            frame: self.frame,
            ts: self.ts,
            tuple: self.tuple,
            payload,
            fragments: if own { self.frag } else { None },
            tcp: Some(TcpChunk {
                syn: chunk.syn || (own && self.syn),
                gap_before,
                ..chunk
            }),
        });
    }
}

/// Owns fragment buffers and TCP stream state.
pub struct Reassembler {
    limits: ReassemblyLimits,
    stats: ReassemblyStats,
    frags: HashMap<FragKey, FragEntry, RandomState>,
    /// Fragment packets in creation order: (generation, created, key).
    frag_order: VecDeque<(u64, Ts, FragKey)>,
    next_gen: u64,
    streams: HashMap<FiveTuple, Stream, RandomState>,
    /// One entry per stream touch: (stamp, key). The entry whose stamp matches the stream's
    /// is its current one; the front-most current entry is the least recently used stream.
    stream_lru: VecDeque<(u64, FiveTuple)>,
    next_stamp: u64,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            stats: ReassemblyStats::default(),
            frags: HashMap::with_hasher(RandomState::default()),
            frag_order: VecDeque::new(),
            next_gen: 0,
            streams: HashMap::with_hasher(RandomState::default()),
            stream_lru: VecDeque::new(),
            next_stamp: 0,
        }
    }

    /// Feed one decoded frame. Every datagram it completes is passed to `out` (zero, one,
    /// or several: a TCP segment that fills a hole releases the buffered ones after it).
    /// Returns what happened to the frame when it produced nothing.
    ///
    /// A fragment that is refused (too large, too many fragments) also returns
    /// `FragmentPending` and counts in `fragment_frames_dropped`. A completed packet whose
    /// transport is not UDP/TCP, or whose transport header is broken (counted in
    /// `reassembled_malformed`), returns `None`.
    pub fn push(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        decoded: Decoded<'_>,
        out: &mut dyn FnMut(Datagram<'_>),
    ) -> Option<Held> {
        self.dispatch(frame, ts, decoded, out, None, 0)
    }

    fn dispatch(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        decoded: Decoded<'_>,
        out: &mut dyn FnMut(Datagram<'_>),
        frag: FragInfo,
        depth: u8,
    ) -> Option<Held> {
        match decoded {
            Decoded::Ip {
                src,
                dst,
                l4:
                    L4::Udp {
                        src_port,
                        dst_port,
                        payload,
                    },
                ..
            } => {
                out(Datagram {
                    frame,
                    ts,
                    tuple: FiveTuple {
                        src: Endpoint {
                            ip: src,
                            port: src_port,
                        },
                        dst: Endpoint {
                            ip: dst,
                            port: dst_port,
                        },
                        transport: Transport::Udp,
                    },
                    payload,
                    fragments: frag,
                    tcp: None,
                });
                None
            }
            Decoded::Ip {
                src,
                dst,
                l4:
                    L4::Tcp {
                        src_port,
                        dst_port,
                        seq,
                        flags,
                        payload,
                    },
                ..
            } => {
                let tuple = FiveTuple {
                    src: Endpoint {
                        ip: src,
                        port: src_port,
                    },
                    dst: Endpoint {
                        ip: dst,
                        port: dst_port,
                    },
                    transport: Transport::Tcp,
                };
                self.tcp(frame, ts, tuple, seq, flags, payload, out, frag)
            }
            // An inner packet fragmented again inside a reassembled one: one more level.
            Decoded::Fragment(f) if depth <= 1 => self.fragment(frame, ts, f, out, depth),
            Decoded::Fragment(_) => {
                self.stats.fragment_frames_dropped += 1;
                Some(Held::FragmentPending)
            }
            Decoded::Malformed { .. } if depth > 0 => {
                self.stats.reassembled_malformed += 1;
                None
            }
            _ => None,
        }
    }

    // ---------------------------------------------------------------- fragments

    fn fragment(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        f: Fragment<'_>,
        out: &mut dyn FnMut(Datagram<'_>),
        depth: u8,
    ) -> Option<Held> {
        let key = FragKey {
            src: f.src,
            dst: f.dst,
            ident: f.ident,
            proto: f.proto,
        };
        let end = u32::try_from(f.data.len())
            .ok()
            .and_then(|l| f.offset.checked_add(l));
        let Some(end) = end.filter(|&e| e <= MAX_REASSEMBLED) else {
            self.stats.fragment_frames_dropped += 1;
            return Some(Held::FragmentPending);
        };
        let timeout = ms_to_ns(self.limits.fragment_timeout_ms);
        // A packet with the same key but started too long ago is a different packet (the
        // ident wrapped, or the old one never completed).
        if let Some(e) = self.frags.get(&key)
            && ts.0.saturating_sub(e.created.0) > timeout
        {
            let frames = e.frames;
            self.frags.remove(&key);
            self.stats.fragment_frames_expired += u64::from(frames);
        }
        if !self.frags.contains_key(&key) {
            while self.frags.len() >= self.limits.max_fragment_packets.max(1) {
                if !self.evict_oldest_fragment() {
                    break;
                }
            }
            let generation = self.next_gen;
            self.next_gen += 1;
            self.frags.insert(
                key,
                FragEntry {
                    generation,
                    created: ts,
                    first_frame: frame,
                    frames: 0,
                    pieces: SmallVec::new(),
                    have: SmallVec::new(),
                    total: None,
                },
            );
            self.frag_order.push_back((generation, ts, key));
            self.compact_frag_order();
        }
        let Some(e) = self.frags.get_mut(&key) else {
            return Some(Held::FragmentPending);
        };
        if e.frames >= MAX_FRAGMENTS_PER_PACKET {
            // Refuse the whole packet: a legitimate sender never needs this many.
            let frames = u64::from(e.frames) + 1;
            self.frags.remove(&key);
            self.stats.fragment_frames_dropped += frames;
            return Some(Held::FragmentPending);
        }
        e.frames += 1;
        let mut overlap = e.insert(f.offset, f.data);
        if !f.more {
            match e.total {
                None => e.total = Some(end),
                // A second, different end: first one wins, like the data.
                Some(t) if t != end => overlap = true,
                Some(_) => {}
            }
        }
        if overlap {
            self.stats.fragment_overlaps += 1;
        }
        if !e.complete() {
            return Some(Held::FragmentPending);
        }
        let Some(e) = self.frags.remove(&key) else {
            return Some(Held::FragmentPending);
        };
        self.stats.fragments_reassembled += 1;
        let buf = e.assemble(e.total.unwrap_or(0) as usize);
        let info = Some((e.first_frame, frame, e.frames));
        let decoded = decode_ip_payload(key.src, key.dst, key.proto, &buf);
        self.dispatch(frame, ts, decoded, out, info, depth + 1)
    }

    /// Drop the oldest pending fragment packet; false when there is none.
    fn evict_oldest_fragment(&mut self) -> bool {
        while let Some((generation, _, key)) = self.frag_order.pop_front() {
            if self
                .frags
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                if let Some(e) = self.frags.remove(&key) {
                    self.stats.fragment_frames_evicted += u64::from(e.frames);
                }
                return true;
            }
        }
        false
    }

    fn compact_frag_order(&mut self) {
        if self.frag_order.len() > 2 * self.frags.len() + QUEUE_SLACK {
            let frags = &self.frags;
            self.frag_order
                .retain(|(g, _, k)| frags.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    // ---------------------------------------------------------------- TCP

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        tuple: FiveTuple,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        out: &mut dyn FnMut(Datagram<'_>),
        frag: FragInfo,
    ) -> Option<Held> {
        let mut em = Emit {
            out,
            frame,
            ts,
            tuple,
            syn: flags.syn,
            frag,
            emitted: false,
            gap_pending: false,
        };
        let data_seq = if flags.syn { seq.wrapping_add(1) } else { seq };
        let exists = self.streams.contains_key(&tuple);
        if !exists && flags.rst && payload.is_empty() {
            // Nothing to tear down: still tell the SIP layer.
            em.chunk(
                &[],
                TcpChunk {
                    rst: true,
                    ..TcpChunk::default()
                },
                false,
            );
            return None;
        }
        if !exists {
            while self.streams.len() >= self.limits.max_tcp_streams.max(1) {
                if !self.evict_lru_stream() {
                    break;
                }
            }
            self.streams.insert(tuple, Stream::new(data_seq, ts));
            self.stats.tcp_streams += 1;
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.stream_lru.push_back((stamp, tuple));
        self.compact_stream_lru();
        let max_buf = self.limits.max_tcp_buffer;
        let stats = &mut self.stats;
        let Some(s) = self.streams.get_mut(&tuple) else {
            return Some(Held::TcpControl);
        };
        s.stamp = stamp;
        s.last_ts = ts;
        if exists && flags.syn && data_seq != s.next_seq {
            // A new connection on the same ports (new ISN): start over.
            *s = Stream::new(data_seq, ts);
            s.stamp = stamp;
        }

        let mut start = s.unwrap(data_seq);
        if !flags.rst
            && (!payload.is_empty() || flags.fin)
            && (start - s.next_abs).abs() > TCP_RESYNC_WINDOW
        {
            // Too far from anything plausible (a missed SYN on a reused port, or bytes lost
            // by the gigabyte): follow the new position instead of calling it all old.
            if !s.ooo.is_empty() {
                flush_with_gaps(s, &mut em, stats, false);
            }
            start = s.next_abs;
            s.next_seq = data_seq;
            stats.tcp_gaps += 1;
            em.gap_pending = true;
        }
        let len = i64::try_from(payload.len()).unwrap_or(i64::MAX);
        let end = start.saturating_add(len);
        let mut held = Held::TcpControl;
        if !payload.is_empty() {
            if end <= s.next_abs {
                stats.tcp_retransmitted_segments += 1;
                held = Held::TcpRetransmission;
            } else if start <= s.next_abs {
                let skip = usize::try_from(s.next_abs - start).unwrap_or(usize::MAX);
                let new = payload.get(skip..).unwrap_or_default();
                em.chunk(new, TcpChunk::default(), true);
                s.advance_to(end);
                drain(s, &mut em);
            } else {
                stats.tcp_out_of_order_segments += 1;
                held = Held::TcpOutOfOrder;
                let cost = payload.len().saturating_add(TCP_SEGMENT_OVERHEAD);
                match s.ooo.get(&start) {
                    Some(old) if old.len() >= payload.len() => {}
                    old => {
                        let old_cost = old.map_or(0, |o| o.len() + TCP_SEGMENT_OVERHEAD);
                        s.ooo_cost = s.ooo_cost.saturating_sub(old_cost).saturating_add(cost);
                        s.ooo.insert(start, payload.to_vec());
                    }
                }
                if s.ooo_cost > max_buf {
                    // Stop waiting for the hole: what is buffered goes out after a gap.
                    flush_with_gaps(s, &mut em, stats, true);
                }
            }
        }
        if flags.fin || flags.rst {
            if !s.ooo.is_empty() {
                flush_with_gaps(s, &mut em, stats, false);
            }
            let mut chunk = TcpChunk {
                fin: flags.fin,
                rst: flags.rst,
                ..TcpChunk::default()
            };
            if flags.rst {
                em.chunk(&[], chunk, false);
                self.streams.remove(&tuple);
            } else if end >= s.next_abs {
                // The FIN takes the sequence number after its segment's data.
                if end > s.next_abs {
                    chunk.gap_before = true;
                    stats.tcp_gaps += 1;
                }
                s.advance_to(end.saturating_add(1));
                em.chunk(&[], chunk, false);
            } else if payload.is_empty() {
                stats.tcp_retransmitted_segments += 1;
                held = Held::TcpRetransmission;
            }
        }
        if em.emitted { None } else { Some(held) }
    }

    fn evict_lru_stream(&mut self) -> bool {
        while let Some((stamp, key)) = self.stream_lru.pop_front() {
            if self.streams.get(&key).is_some_and(|s| s.stamp == stamp) {
                self.streams.remove(&key);
                self.stats.tcp_streams_evicted += 1;
                return true;
            }
        }
        false
    }

    fn compact_stream_lru(&mut self) {
        if self.stream_lru.len() > 2 * self.streams.len() + QUEUE_SLACK {
            let streams = &self.streams;
            self.stream_lru
                .retain(|(st, k)| streams.get(k).is_some_and(|s| s.stamp == *st));
        }
    }

    /// Expire state idle since before `now` (capture clock): fragment packets started more
    /// than `fragment_timeout_ms` ago, TCP streams untouched for `tcp_idle_timeout_ms`.
    /// Cheap when nothing is due (it looks at queue fronts only), so it can be called often.
    pub fn expire(&mut self, now: Ts) {
        let ftimeout = ms_to_ns(self.limits.fragment_timeout_ms);
        while let Some(&(generation, created, key)) = self.frag_order.front() {
            let live = self
                .frags
                .get(&key)
                .is_some_and(|e| e.generation == generation);
            if live {
                if now.0.saturating_sub(created.0) <= ftimeout {
                    break;
                }
                if let Some(e) = self.frags.remove(&key) {
                    self.stats.fragment_frames_expired += u64::from(e.frames);
                }
            }
            self.frag_order.pop_front();
        }
        let ttimeout = ms_to_ns(self.limits.tcp_idle_timeout_ms);
        while let Some(&(stamp, key)) = self.stream_lru.front() {
            if let Some(s) = self.streams.get(&key)
                && s.stamp == stamp
            {
                if now.0.saturating_sub(s.last_ts.0) <= ttimeout {
                    break;
                }
                self.streams.remove(&key);
            }
            self.stream_lru.pop_front();
        }
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Fragment packets and TCP stream directions currently held (for tests and reports).
    pub fn pending(&self) -> (usize, usize) {
        (self.frags.len(), self.streams.len())
    }
}

fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

/// Deliver buffered segments that the expected position has reached.
fn drain(s: &mut Stream, em: &mut Emit<'_>) {
    while let Some(entry) = s.ooo.first_entry() {
        let start = *entry.key();
        if start > s.next_abs {
            break;
        }
        let data = entry.remove();
        s.ooo_cost = s.ooo_cost.saturating_sub(data.len() + TCP_SEGMENT_OVERHEAD);
        let end = start.saturating_add(i64::try_from(data.len()).unwrap_or(i64::MAX));
        if end <= s.next_abs {
            continue;
        }
        let skip = usize::try_from(s.next_abs - start).unwrap_or(usize::MAX);
        em.chunk(
            data.get(skip..).unwrap_or_default(),
            TcpChunk::default(),
            false,
        );
        s.advance_to(end);
    }
}

/// Give up on the holes: deliver everything buffered in order, flagging each jump.
/// `cap` = the buffer cap forced it (the skipped bytes count as dropped).
fn flush_with_gaps(s: &mut Stream, em: &mut Emit<'_>, stats: &mut ReassemblyStats, cap: bool) {
    while let Some((start, data)) = s.ooo.pop_first() {
        s.ooo_cost = s.ooo_cost.saturating_sub(data.len() + TCP_SEGMENT_OVERHEAD);
        let end = start.saturating_add(i64::try_from(data.len()).unwrap_or(i64::MAX));
        if end <= s.next_abs {
            continue;
        }
        let mut gap = false;
        if start > s.next_abs {
            gap = true;
            stats.tcp_gaps += 1;
            if cap {
                stats.tcp_bytes_dropped += u64::try_from(start - s.next_abs).unwrap_or(0);
            }
            s.advance_to(start);
        }
        let skip = usize::try_from(s.next_abs - start).unwrap_or(usize::MAX);
        em.chunk(
            data.get(skip..).unwrap_or_default(),
            TcpChunk {
                gap_before: gap,
                ..TcpChunk::default()
            },
            false,
        );
        s.advance_to(end);
    }
    s.ooo_cost = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_frame;
    use crate::decode::link::tests::{V6A, ip4_full, ip6, udp_hdr};
    use std::net::Ipv4Addr;

    fn fr(n: u64) -> FrameRef {
        FrameRef::new(0, n)
    }
    fn ms(n: i64) -> Ts {
        Ts(n * 1_000_000)
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Got {
        frame: u64,
        payload: Vec<u8>,
        frags: Option<(u64, u64, u16)>,
        tcp: Option<TcpChunk>,
        tuple: FiveTuple,
    }

    fn push(
        r: &mut Reassembler,
        n: u64,
        t: Ts,
        d: Decoded<'_>,
        got: &mut Vec<Got>,
    ) -> Option<Held> {
        r.push(fr(n), t, d, &mut |dg: Datagram<'_>| {
            got.push(Got {
                frame: dg.frame.num,
                payload: dg.payload.to_vec(),
                frags: dg.fragments.map(|(a, b, c)| (a.num, b.num, c)),
                tcp: dg.tcp,
                tuple: dg.tuple,
            })
        })
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn frag(ident: u32, offset: u32, more: bool, data: &[u8]) -> Decoded<'_> {
        Decoded::Fragment(Fragment {
            src: A,
            dst: B,
            ident,
            proto: 17,
            offset,
            more,
            data,
        })
    }

    /// A UDP datagram (header + payload) split into `n` fragments of 8-byte multiples.
    type Parts = Vec<(u32, bool, Vec<u8>)>;

    fn split_udp(payload: &[u8], piece: usize) -> (Vec<u8>, Parts) {
        let whole = udp_hdr(5060, 5060, payload);
        let mut parts = Vec::new();
        let mut off = 0;
        while off < whole.len() {
            let end = (off + piece).min(whole.len());
            parts.push((off as u32, end < whole.len(), whole[off..end].to_vec()));
            off = end;
        }
        (whole, parts)
    }

    #[test]
    fn udp_passes_through() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        let pkt = ip4_full(
            17,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            1,
            0,
            &[],
            &udp_hdr(5060, 5070, b"hello"),
        );
        let h = push(
            &mut r,
            1,
            ms(0),
            decode_frame(crate::capture::linktype::RAW, &pkt),
            &mut got,
        );
        assert_eq!(h, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, b"hello");
        assert_eq!(got[0].tuple.transport, Transport::Udp);
        assert_eq!(got[0].tuple.src, Endpoint { ip: A, port: 5060 });
        assert_eq!(got[0].tuple.dst, Endpoint { ip: B, port: 5070 });
        assert!(got[0].frags.is_none() && got[0].tcp.is_none());
        // Non-IP: nothing, no held state.
        assert_eq!(
            push(
                &mut r,
                2,
                ms(0),
                Decoded::NonIp { ethertype: 0x806 },
                &mut got
            ),
            None
        );
        assert_eq!(got.len(), 1);
    }

    fn run_fragments(order: &[usize]) -> (Vec<Got>, Vec<Option<Held>>, ReassemblyStats) {
        let body: Vec<u8> = (0..100u8).collect();
        let (_, parts) = split_udp(&body, 24);
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        let mut held = Vec::new();
        for (i, &k) in order.iter().enumerate() {
            let (off, more, data) = &parts[k];
            held.push(push(
                &mut r,
                10 + i as u64,
                ms(i as i64),
                frag(7, *off, *more, data),
                &mut got,
            ));
        }
        assert_eq!(r.pending().0, 0);
        (got, held, r.stats().clone())
    }

    #[test]
    fn fragments_in_order_and_reversed() {
        let body: Vec<u8> = (0..100u8).collect();
        let n = split_udp(&body, 24).1.len();
        assert_eq!(n, 5);
        for order in [
            vec![0, 1, 2, 3, 4],
            vec![4, 3, 2, 1, 0],
            vec![2, 0, 4, 1, 3],
        ] {
            let (got, held, st) = run_fragments(&order);
            assert_eq!(got.len(), 1, "{order:?}");
            assert_eq!(got[0].payload, body);
            assert_eq!(got[0].frame, 14, "reported at the completing frame");
            assert_eq!(got[0].frags, Some((10, 14, 5)));
            assert_eq!(got[0].tuple.transport, Transport::Udp);
            assert_eq!(&held[..4], &[Some(Held::FragmentPending); 4]);
            assert_eq!(held[4], None);
            assert_eq!(st.fragments_reassembled, 1);
            assert_eq!(st.fragment_overlaps, 0);
        }
    }

    #[test]
    fn overlapping_fragments_first_wins() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        let whole = udp_hdr(1, 2, b"AAAAAAAABBBBBBBBCCCCCCCC"); // 32 bytes
        push(&mut r, 1, ms(0), frag(9, 0, true, &whole[..16]), &mut got);
        // Overlaps bytes 8..16 with different content, and adds 16..24.
        let mut evil = whole[8..24].to_vec();
        evil[..8].copy_from_slice(b"XXXXXXXX");
        push(&mut r, 2, ms(1), frag(9, 8, true, &evil), &mut got);
        // Exact duplicate of the first.
        push(&mut r, 3, ms(2), frag(9, 0, true, &whole[..16]), &mut got);
        assert!(got.is_empty());
        push(&mut r, 4, ms(3), frag(9, 24, false, &whole[24..]), &mut got);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, b"AAAAAAAABBBBBBBBCCCCCCCC");
        assert_eq!(got[0].frags, Some((1, 4, 4)));
        assert_eq!(r.stats().fragment_overlaps, 2);
    }

    #[test]
    fn fragments_never_completing_expire_on_capture_time() {
        let limits = ReassemblyLimits {
            fragment_timeout_ms: 1000,
            ..ReassemblyLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), frag(1, 0, true, &[0; 16]), &mut got);
        push(&mut r, 2, ms(500), frag(1, 32, false, &[0; 8]), &mut got);
        push(&mut r, 3, ms(900), frag(2, 0, true, &[0; 16]), &mut got);
        r.expire(ms(1000));
        assert_eq!(r.pending().0, 2, "nothing is older than the timeout yet");
        r.expire(ms(1001));
        assert_eq!(r.pending().0, 1);
        assert_eq!(r.stats().fragment_frames_expired, 2);
        // The hole of packet 1 arrives too late: it starts a new, incomplete packet.
        assert_eq!(
            push(&mut r, 4, ms(1200), frag(1, 16, true, &[0; 16]), &mut got),
            Some(Held::FragmentPending)
        );
        // A same-key fragment long after the first one replaces the stale packet.
        push(&mut r, 5, ms(5000), frag(2, 16, false, &[0; 8]), &mut got);
        assert_eq!(r.stats().fragment_frames_expired, 3);
        assert!(got.is_empty());
        assert_eq!(r.stats().fragments_reassembled, 0);
    }

    #[test]
    fn fragment_flood_hits_the_cap() {
        let limits = ReassemblyLimits {
            max_fragment_packets: 64,
            ..ReassemblyLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut got = Vec::new();
        for i in 0..10_000u32 {
            push(
                &mut r,
                u64::from(i),
                ms(i64::from(i)),
                frag(i, 0, true, &[0; 8]),
                &mut got,
            );
            assert!(r.pending().0 <= 64);
        }
        assert_eq!(r.stats().fragment_frames_evicted, 10_000 - 64);
        // The newest packets are still there and can complete.
        push(
            &mut r,
            20_000,
            ms(20_000),
            frag(9_999, 8, false, b"abcdefgh"),
            &mut got,
        );
        assert_eq!(got.len(), 1);
        // Held 8 zero bytes = a UDP header with length 0: the IP length is used.
        assert_eq!(got[0].payload, b"abcdefgh");
        assert_eq!(got[0].frags, Some((9_999, 20_000, 2)));
        // An evicted packet's tail starts a new, incomplete packet.
        assert_eq!(
            push(
                &mut r,
                20_001,
                ms(20_001),
                frag(0, 8, false, b"abcdefgh"),
                &mut got
            ),
            Some(Held::FragmentPending)
        );
        assert!(r.frag_order.len() <= 2 * r.frags.len() + QUEUE_SLACK + 1);
    }

    #[test]
    fn oversize_and_too_many_fragments_refused() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        // Ping of death: ends past 65535.
        let h = push(&mut r, 1, ms(0), frag(1, 65_528, false, &[0; 16]), &mut got);
        assert_eq!(h, Some(Held::FragmentPending));
        assert_eq!(r.stats().fragment_frames_dropped, 1);
        assert_eq!(r.pending().0, 0);
        // 8-byte fragments with holes, more than the per-packet cap.
        for i in 0..300u32 {
            push(
                &mut r,
                10 + u64::from(i),
                ms(1),
                frag(2, i * 16, true, &[1; 8]),
                &mut got,
            );
        }
        assert_eq!(r.stats().fragment_frames_dropped, 1 + 257);
        assert!(got.is_empty());
    }

    #[test]
    fn ipv6_fragments_through_decode() {
        let body = vec![b'x'; 3000];
        let whole = udp_hdr(5060, 5060, &body);
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        let chunks: Vec<&[u8]> = whole.chunks(1232).collect();
        for (n, (i, c)) in chunks.iter().enumerate().rev().enumerate() {
            let o = (i * 1232) as u16;
            let more = i + 1 < chunks.len();
            let mut fh = vec![17, 0];
            fh.extend_from_slice(&(o | u16::from(more)).to_be_bytes());
            fh.extend_from_slice(&0xCAFEu32.to_be_bytes());
            fh.extend_from_slice(c);
            let pkt = ip6(44, &fh);
            let d = decode_frame(crate::capture::linktype::IPV6, &pkt);
            assert!(matches!(d, Decoded::Fragment(_)));
            push(&mut r, 100 + n as u64, ms(0), d, &mut got);
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, body);
        assert_eq!(got[0].frags, Some((100, 102, 3)));
        assert_eq!(got[0].tuple.src.ip, IpAddr::V6(V6A.into()));
    }

    // ---------------------------------------------------------------- TCP

    fn seg(seq: u32, flags: TcpFlags, payload: &[u8]) -> Decoded<'_> {
        Decoded::Ip {
            src: A,
            dst: B,
            l4: L4::Tcp {
                src_port: 40000,
                dst_port: 5060,
                seq,
                flags,
                payload,
            },
            tunnelled: false,
        }
    }
    const ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        rst: false,
        ack: true,
    };
    const SYN: TcpFlags = TcpFlags {
        syn: true,
        fin: false,
        rst: false,
        ack: false,
    };
    const FIN: TcpFlags = TcpFlags {
        syn: false,
        fin: true,
        rst: false,
        ack: true,
    };
    const RST: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        rst: true,
        ack: false,
    };

    fn stream_bytes(got: &[Got]) -> Vec<u8> {
        got.iter().flat_map(|g| g.payload.iter().copied()).collect()
    }

    #[test]
    fn tcp_in_order_from_syn() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        assert_eq!(
            push(&mut r, 1, ms(0), seg(1000, SYN, b""), &mut got),
            Some(Held::TcpControl)
        );
        assert_eq!(
            push(&mut r, 2, ms(1), seg(1001, ACK, b""), &mut got),
            Some(Held::TcpControl)
        );
        assert_eq!(
            push(&mut r, 3, ms(2), seg(1001, ACK, b"INVITE "), &mut got),
            None
        );
        assert_eq!(
            push(&mut r, 4, ms(3), seg(1008, ACK, b"sip:x"), &mut got),
            None
        );
        assert_eq!(stream_bytes(&got), b"INVITE sip:x");
        assert_eq!(got[0].tuple.transport, Transport::Tcp);
        assert_eq!(got[1].frame, 4);
        assert!(got.iter().all(|g| g.tcp == Some(TcpChunk::default())));
        assert_eq!(r.stats().tcp_streams, 1);
    }

    #[test]
    fn tcp_retransmission_and_partial_overlap() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(500, ACK, b"abcdef"), &mut got); // mid-stream pickup
        assert_eq!(
            push(&mut r, 2, ms(1), seg(500, ACK, b"abcdef"), &mut got),
            Some(Held::TcpRetransmission)
        );
        assert_eq!(
            push(&mut r, 3, ms(1), seg(502, ACK, b"cd"), &mut got),
            Some(Held::TcpRetransmission)
        );
        // Overlaps "ef" and adds "gh".
        assert_eq!(
            push(&mut r, 4, ms(2), seg(504, ACK, b"efgh"), &mut got),
            None
        );
        assert_eq!(stream_bytes(&got), b"abcdefgh");
        assert_eq!(got[1].payload, b"gh");
        assert_eq!(r.stats().tcp_retransmitted_segments, 2);
    }

    #[test]
    fn tcp_out_of_order_released_when_hole_fills() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(0, SYN, b""), &mut got);
        assert_eq!(
            push(&mut r, 2, ms(1), seg(9, ACK, b"999"), &mut got),
            Some(Held::TcpOutOfOrder)
        );
        assert_eq!(
            push(&mut r, 3, ms(1), seg(5, ACK, b"5678"), &mut got),
            Some(Held::TcpOutOfOrder)
        );
        assert!(got.is_empty());
        assert_eq!(push(&mut r, 4, ms(2), seg(1, ACK, b"1234"), &mut got), None);
        assert_eq!(stream_bytes(&got), b"12345678999");
        assert_eq!(got.len(), 3);
        assert!(
            got.iter()
                .all(|g| g.frame == 4 && !g.tcp.unwrap().gap_before)
        );
        assert_eq!(r.stats().tcp_out_of_order_segments, 2);
    }

    #[test]
    fn tcp_gap_then_fin() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(100, ACK, b"head"), &mut got);
        push(&mut r, 2, ms(1), seg(110, ACK, b"tail"), &mut got); // 104..110 lost
        assert_eq!(push(&mut r, 3, ms(2), seg(114, FIN, b""), &mut got), None);
        assert_eq!(stream_bytes(&got), b"headtail");
        assert_eq!(got.len(), 3);
        assert!(got[1].tcp.unwrap().gap_before);
        let fin = got[2].tcp.unwrap();
        assert!(fin.fin && !fin.gap_before && got[2].payload.is_empty());
        assert_eq!(r.stats().tcp_gaps, 1);
        assert_eq!(
            r.stats().tcp_bytes_dropped,
            0,
            "a FIN gap is not a cap drop"
        );
        // FIN retransmitted.
        assert_eq!(
            push(&mut r, 4, ms(3), seg(114, FIN, b""), &mut got),
            Some(Held::TcpRetransmission)
        );
        // RST tears the direction down, delivered as an empty chunk.
        assert_eq!(push(&mut r, 5, ms(4), seg(115, RST, b""), &mut got), None);
        assert!(got[3].tcp.unwrap().rst);
        assert_eq!(r.pending().1, 0);
    }

    #[test]
    fn tcp_fin_with_data_and_lost_tail() {
        // In-order data + FIN: the data chunk, then an empty FIN chunk.
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(0, ACK, b"ab"), &mut got);
        push(&mut r, 2, ms(1), seg(2, FIN, b"cd"), &mut got);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].payload, b"cd");
        assert!(!got[1].tcp.unwrap().fin);
        assert!(got[2].tcp.unwrap().fin && got[2].payload.is_empty() && got[2].frame == 2);
        assert_eq!(r.stats().tcp_gaps, 0);
        // FIN ahead of the expected position: bytes before it were lost.
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(0, ACK, b"ab"), &mut got);
        push(&mut r, 2, ms(1), seg(10, FIN, b""), &mut got);
        assert_eq!(got.len(), 2);
        assert!(got[1].tcp.unwrap().fin && got[1].tcp.unwrap().gap_before);
        assert_eq!(r.stats().tcp_gaps, 1);
    }

    #[test]
    fn tcp_buffer_cap_skips_ahead() {
        let limits = ReassemblyLimits {
            max_tcp_buffer: 1000,
            ..ReassemblyLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(0, ACK, b"x"), &mut got);
        // Byte 1..101 never arrives; 100-byte segments pile up after it.
        let data = [b'y'; 100];
        let mut n = 2;
        let mut seq = 101u32;
        while got.len() == 1 {
            push(&mut r, n, ms(1), seg(seq, ACK, &data), &mut got);
            n += 1;
            seq += 100;
            assert!(n < 100);
        }
        assert!(got[1].tcp.unwrap().gap_before);
        assert!(got[2..].iter().all(|g| !g.tcp.unwrap().gap_before));
        let delivered: usize = got[1..].iter().map(|g| g.payload.len()).sum();
        assert_eq!(delivered as u32, seq - 101);
        assert_eq!(r.stats().tcp_gaps, 1);
        assert_eq!(r.stats().tcp_bytes_dropped, 100);
        // The stream continues in order after the skip.
        push(&mut r, n, ms(2), seg(seq, ACK, b"z"), &mut got);
        assert_eq!(got.last().unwrap().payload, b"z");
        // The lost bytes arriving now are old.
        assert_eq!(
            push(&mut r, n + 1, ms(3), seg(1, ACK, &data), &mut got),
            Some(Held::TcpRetransmission)
        );
    }

    #[test]
    fn tcp_sequence_wraps() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        let isn = u32::MAX - 3;
        push(&mut r, 1, ms(0), seg(isn, SYN, b""), &mut got);
        // "012345" occupies u32::MAX-2 ..= 2; "6789" (seq 3..=6) arrives first.
        assert_eq!(
            push(&mut r, 2, ms(1), seg(3, ACK, b"6789"), &mut got),
            Some(Held::TcpOutOfOrder)
        );
        push(
            &mut r,
            3,
            ms(2),
            seg(isn.wrapping_add(1), ACK, b"012345"),
            &mut got,
        );
        assert_eq!(stream_bytes(&got), b"0123456789");
        assert_eq!(
            push(&mut r, 4, ms(3), seg(1, ACK, b"45"), &mut got),
            Some(Held::TcpRetransmission)
        );
        push(&mut r, 5, ms(4), seg(7, ACK, b"!"), &mut got);
        assert_eq!(stream_bytes(&got), b"0123456789!");
    }

    #[test]
    fn tcp_far_jump_resynchronises() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(1000, ACK, b"one"), &mut got);
        push(&mut r, 2, ms(1), seg(1003, ACK, b"two"), &mut got);
        // Half the sequence space away (a new connection whose SYN we missed).
        let far = 1000u32.wrapping_add(0x8000_0000);
        assert_eq!(
            push(&mut r, 3, ms(2), seg(far, ACK, b"new"), &mut got),
            None
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].payload, b"new");
        assert!(got[2].tcp.unwrap().gap_before);
        push(
            &mut r,
            4,
            ms(3),
            seg(far.wrapping_add(3), ACK, b"!"),
            &mut got,
        );
        assert_eq!(got[3].payload, b"!");
        assert!(!got[3].tcp.unwrap().gap_before);
        assert_eq!(r.stats().tcp_gaps, 1);
        assert_eq!(r.stats().tcp_retransmitted_segments, 0);
    }

    #[test]
    fn tcp_new_syn_resets_stream() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(100, SYN, b""), &mut got);
        push(&mut r, 2, ms(1), seg(101, ACK, b"old"), &mut got);
        push(&mut r, 3, ms(2), seg(9000, SYN, b""), &mut got);
        push(&mut r, 4, ms(3), seg(9001, ACK, b"new"), &mut got);
        assert_eq!(stream_bytes(&got), b"oldnew");
    }

    #[test]
    fn tcp_stream_cap_evicts_lru_and_idle_expiry() {
        let limits = ReassemblyLimits {
            max_tcp_streams: 3,
            tcp_idle_timeout_ms: 1000,
            ..ReassemblyLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut got = Vec::new();
        let mk = |port: u16, seq: u32, p: &'static [u8]| Decoded::Ip {
            src: A,
            dst: B,
            l4: L4::Tcp {
                src_port: port,
                dst_port: 5060,
                seq,
                flags: ACK,
                payload: p,
            },
            tunnelled: false,
        };
        push(&mut r, 1, ms(0), mk(1, 0, b"a"), &mut got);
        push(&mut r, 2, ms(0), mk(2, 0, b"a"), &mut got);
        push(&mut r, 3, ms(0), mk(3, 0, b"a"), &mut got);
        push(&mut r, 4, ms(0), mk(1, 1, b"b"), &mut got); // port 1 is now most recent
        push(&mut r, 5, ms(0), mk(4, 0, b"a"), &mut got); // evicts port 2
        assert_eq!(r.stats().tcp_streams_evicted, 1);
        assert_eq!(r.pending().1, 3);
        // Port 1 kept its position: the next byte continues.
        assert_eq!(push(&mut r, 6, ms(0), mk(1, 2, b"c"), &mut got), None);
        // Port 2 was forgotten: its next segment starts a new stream (a pickup, no retrans).
        assert_eq!(push(&mut r, 7, ms(500), mk(2, 0, b"a"), &mut got), None);
        assert_eq!(r.stats().tcp_streams, 5);
        r.expire(ms(1400));
        assert_eq!(
            r.pending().1,
            1,
            "only port 2 was touched within the last second"
        );
        // A flood of streams stays bounded.
        for p in 0..5000u16 {
            push(
                &mut r,
                100 + u64::from(p),
                ms(2000),
                mk(p, 7, b"q"),
                &mut got,
            );
            assert!(r.pending().1 <= 3);
        }
        assert!(r.stream_lru.len() <= 2 * r.streams.len() + QUEUE_SLACK + 1);
    }

    #[test]
    fn tcp_one_byte_flood_bounded_memory() {
        let limits = ReassemblyLimits {
            max_tcp_buffer: 64 * 1024,
            ..ReassemblyLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut got = Vec::new();
        push(&mut r, 1, ms(0), seg(0, ACK, b"s"), &mut got);
        for i in 0..20_000u32 {
            push(
                &mut r,
                2 + u64::from(i),
                ms(1),
                seg(2 + 2 * i, ACK, b"z"),
                &mut got,
            );
            let s = r.streams.values().next().unwrap();
            assert!(s.ooo_cost <= 64 * 1024 + 100);
        }
        assert!(r.stats().tcp_gaps > 0);
    }

    #[test]
    fn reassembled_tcp_goes_to_stream() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut got = Vec::new();
        let whole = crate::decode::link::tests::tcp_hdr(
            40000,
            5060,
            77,
            0x18,
            b"REGISTER sip:a SIP/2.0\r\n",
        );
        let p1 = ip4_full(
            6,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            5,
            0x2000,
            &[],
            &whole[..24],
        );
        let p2 = ip4_full(6, [10, 0, 0, 1], [10, 0, 0, 2], 5, 3, &[], &whole[24..]);
        let raw = crate::capture::linktype::RAW;
        assert_eq!(
            push(&mut r, 1, ms(0), decode_frame(raw, &p1), &mut got),
            Some(Held::FragmentPending)
        );
        assert_eq!(
            push(&mut r, 2, ms(0), decode_frame(raw, &p2), &mut got),
            None
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, b"REGISTER sip:a SIP/2.0\r\n");
        assert_eq!(got[0].frags, Some((1, 2, 2)));
        assert!(got[0].tcp.is_some());
        // A reassembled packet with a broken transport header is counted.
        let bad = ip4_full(6, [10, 0, 0, 1], [10, 0, 0, 2], 6, 0x2000, &[], &[0; 8]);
        let bad2 = ip4_full(6, [10, 0, 0, 1], [10, 0, 0, 2], 6, 1, &[], &[0; 4]);
        push(&mut r, 3, ms(0), decode_frame(raw, &bad), &mut got);
        assert_eq!(
            push(&mut r, 4, ms(0), decode_frame(raw, &bad2), &mut got),
            None
        );
        assert_eq!(r.stats().reassembled_malformed, 1);
    }

    mod fuzz {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        /// Deterministic shuffle (xorshift), so a failing case replays from its seed.
        fn shuffle<T>(v: &mut [T], mut seed: u64) {
            seed |= 1;
            for i in (1..v.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.swap(i, (seed % (i as u64 + 1)) as usize);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

            /// After the SYN, segments in any order, with duplicates, rebuild the stream.
            #[test]
            fn tcp_any_order_rebuilds_stream(data in vec(any::<u8>(), 1..3000),
                                             cuts in vec(1usize..300, 1..40),
                                             seed in any::<u64>(), isn in any::<u32>(),
                                             dups in vec(any::<prop::sample::Index>(), 0..5)) {
                let mut segs = Vec::new();
                let mut off = 0;
                for c in cuts.iter().cycle() {
                    if off >= data.len() { break; }
                    let end = (off + c).min(data.len());
                    segs.push((off, end));
                    off = end;
                }
                for d in &dups {
                    segs.push(*d.get(&segs));
                }
                shuffle(&mut segs, seed);
                let mut r = Reassembler::new(ReassemblyLimits::default());
                let mut got = Vec::new();
                push(&mut r, 0, ms(0), seg(isn, SYN, b""), &mut got);
                for (i, (a, b)) in segs.iter().enumerate() {
                    let sq = isn.wrapping_add(1).wrapping_add(*a as u32);
                    push(&mut r, i as u64 + 1, ms(1), seg(sq, ACK, &data[*a..*b]), &mut got);
                }
                prop_assert_eq!(stream_bytes(&got), data);
                prop_assert!(got.iter().all(|g| !g.tcp.unwrap().gap_before));
                prop_assert_eq!(r.stats().tcp_gaps, 0);
            }

            /// Fragments in any order, with duplicates, rebuild the datagram exactly once.
            #[test]
            fn fragments_any_order_rebuild(body in vec(any::<u8>(), 0..4000),
                                           piece8 in 2usize..200, seed in any::<u64>(),
                                           dup in any::<prop::sample::Index>()) {
                let (_, mut parts) = split_udp(&body, piece8 * 8);
                // One piece is a whole packet, which the decoder never calls a fragment.
                // (Above the per-packet fragment cap the packet is refused, tested elsewhere.)
                prop_assume!(parts.len() >= 2 && parts.len() < usize::from(MAX_FRAGMENTS_PER_PACKET));
                let d = dup.get(&parts).clone();
                parts.push(d);
                shuffle(&mut parts, seed);
                let mut r = Reassembler::new(ReassemblyLimits::default());
                let mut got = Vec::new();
                for (i, (off, more, data)) in parts.iter().enumerate() {
                    push(&mut r, i as u64, ms(0), frag(3, *off, *more, data), &mut got);
                }
                // The duplicate may come after completion: it starts a new pending packet.
                prop_assert_eq!(got.len(), 1);
                prop_assert_eq!(&got[0].payload, &body);
                prop_assert_eq!(r.stats().fragments_reassembled, 1);
            }

            /// Arbitrary fragments and segments never panic and respect the caps.
            #[test]
            fn arbitrary_input_never_panics(ops in vec((any::<u32>(), any::<u16>(), any::<bool>(),
                                                        vec(any::<u8>(), 0..64), any::<u8>()), 1..200)) {
                let limits = ReassemblyLimits {
                    max_fragment_packets: 8,
                    max_tcp_streams: 4,
                    max_tcp_buffer: 512,
                    ..ReassemblyLimits::default()
                };
                let mut r = Reassembler::new(limits);
                let mut got = Vec::new();
                for (i, (x, off, more, data, kind)) in ops.iter().enumerate() {
                    let d = if kind % 2 == 0 {
                        Decoded::Fragment(Fragment { src: A, dst: B, ident: x % 16,
                            proto: [6, 17, 4, 41, 1][usize::from(kind / 2 % 5)],
                            offset: u32::from(*off) * 8 % 70_000, more: *more, data })
                    } else {
                        let flags = TcpFlags { syn: kind & 2 != 0, fin: kind & 4 != 0,
                                               rst: kind & 8 != 0, ack: true };
                        Decoded::Ip { src: A, dst: B, tunnelled: false,
                            l4: L4::Tcp { src_port: u16::from(kind % 6), dst_port: 5060,
                                          seq: x % 4096, flags, payload: data } }
                    };
                    push(&mut r, i as u64, ms(i as i64), d, &mut got);
                    prop_assert!(r.pending().0 <= 8 && r.pending().1 <= 4);
                    for s in r.streams.values() {
                        prop_assert!(s.ooo_cost <= 512 + 64 + TCP_SEGMENT_OVERHEAD);
                    }
                }
                r.expire(ms(10_000_000));
                prop_assert_eq!(r.pending(), (0, 0));
            }
        }
    }
}
