//! Per-stream RTP statistics with Wireshark 4.0's definitions.
//!
//! Owns: [`StreamStats`], the fixed-size running state of one stream (5-tuple + SSRC),
//! and [`StreamSummary`], its final numbers. The Wireshark-defined numbers (packets, lost,
//! min/mean/max delta, min/mean/max jitter, sequence errors, the Problems flag) follow
//! `rtppacket_analyse` (ui/tap-rtp-analysis.c) and `rtpstream_info_calculate`
//! (ui/tap-rtp-common.c) of Wireshark 4.0 operation by operation, so they match
//! `tshark -z rtp,streams` (checked against real captures in the tests below).
//!
//! Points where Wireshark's arithmetic is surprising, reproduced on purpose:
//! - Lost = expected − received, expected = `stop_seq + 65536·cycles − start_seq + 1`
//!   where `start_seq` is the *first* packet's sequence number and `stop_seq` the *last
//!   processed* packet's (not the maximum): 4.0 does not use extended sequence numbers
//!   here (later versions use min/max extended sequence numbers). `cycles` counts a wrap
//!   when an in-time-order packet's sequence number drops below `start_seq` (or 65535→0)
//!   and re-arms once one rises above it again. Duplicates make lost negative.
//! - Delta = arrival − arrival of the last *in-timestamp-order* packet. Min/max/mean
//!   skip the first packet, marker packets, comfort noise (PT 13/19), the packet right
//!   after CN, and packets whose extended timestamp is older than the last in-order one.
//!   The mean divides by the number of packets seen so far minus one, not by the number
//!   of deltas included (Wireshark's running formula), so excluded packets still count in
//!   the denominator.
//! - Jitter (RFC 3550 A.8, ms): `D = |delta − (ext_ts − prev_ext_ts)/(clock/1000)|` with
//!   *integer* `clock/1000` (44100 Hz → 44), `J = (15·J + D)/16`. The clock rate is taken
//!   per packet from its payload type: static table for PT < 96, else the registered
//!   dynamic rate; 0 (telephone-event, unknown dynamic type) skips jitter for that packet.
//!   `prev_ext_ts` is the last in-order packet *that had a clock rate*, while `delta` is
//!   measured from the last in-order packet of any type: after a telephone-event burst
//!   the next audio packet shows a large D. This is what tshark 4.0.17 prints (verified on
//!   SIP_DTMF2.cap and the Asterisk dtmf captures); the later-source variant that measures
//!   both from the same packet does not match it.
//!   Min/mean/max jitter over the same regular packets as the delta; mean uses the same
//!   running formula. Min delta / min jitter stay at Wireshark's −1 sentinel when nothing
//!   was included (kept in `ws_min_*`; the plain fields report 0 then).
//! - Sequence errors (`sequence`): +1 per forward gap (one per gap, whatever its size, or
//!   a drop of more than 0xFF00 taken as a wrap after loss), +1 per late/duplicate packet.
//!   Problems = any wrong-sequence or wrong-timestamp packet after the first.
//! - Extended timestamps: Wireshark extends RTP timestamps per *conversation* (both
//!   directions and all SSRCs of a UDP port pair share one state). [`StreamStats::update`]
//!   extends per stream, which gives the same differences unless two streams sharing a
//!   conversation sit about 2³¹ apart; a caller that wants Wireshark's exact behaviour can
//!   keep one [`ExtendedTimestamp`] per conversation and call
//!   [`StreamStats::update_with_ext_ts`].
//!
//! Our own additions (not in tshark): duplicates and out-of-order counts from a 64-bit
//! window of recent sequence numbers (older packets count as out-of-order, never as
//! duplicates), longest run of missing sequence numbers (a number counts as missing once it
//! has left the window unseen), largest arrival gap, marker packets, payload types, bytes.

use super::RtpHeader;
use super::codec::static_clock_rate;
use crate::types::{FrameRef, Ts};
use serde::Serialize;

/// Wireshark's extended (wrap-corrected) RTP timestamp: the 64-bit value nearest the
/// previous one that has the packet's 32 low bits. Starts at 2³² like Wireshark's
/// conversation data, so early reordering before a wrap stays positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedTimestamp {
    prev: u64,
}

impl Default for ExtendedTimestamp {
    fn default() -> Self {
        ExtendedTimestamp { prev: 1 << 32 }
    }
}

impl ExtendedTimestamp {
    pub fn new() -> Self {
        Self::default()
    }

    /// `calculate_extended_timestamp` of packet-rtp.c.
    pub fn extend(&mut self, raw: u32) -> u64 {
        let prev = self.prev;
        let mut ts = (prev & 0xFFFF_FFFF_0000_0000) | u64::from(raw);
        if ts.saturating_add(0x8000_0000) < prev {
            ts = ts.saturating_add(0x1_0000_0000);
        } else if prev.saturating_add(0x8000_0000) < ts {
            ts = ts.saturating_sub(0x1_0000_0000);
        }
        self.prev = ts;
        ts
    }
}

/// Sequence-number window for duplicate detection (bits).
const WINDOW_WORDS: usize = 1;
const WINDOW: u64 = 64 * WINDOW_WORDS as u64;
/// Dynamic payload types whose clock rate a stream can remember.
const DYN_RATES: usize = 3;
/// Payload types listed per stream (further distinct types are not listed).
const PT_LIST: usize = 4;

/// Running statistics of one RTP stream (5-tuple + SSRC). Small and fixed-size: no
/// per-packet allocation.
#[derive(Debug, Clone)]
pub struct StreamStats {
    pub first_frame: FrameRef,
    pub last_frame: FrameRef,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub packets: u64,

    /// Extended timestamp of the last in-timestamp-order packet.
    seq_timestamp: u64,
    /// Extended timestamp of the last in-order packet that had a clock rate: the jitter
    /// reference (4.0 keeps it apart from `seq_timestamp`, so after telephone-event
    /// packets the next audio packet is compared with the last audio packet's timestamp
    /// but the event packet's arrival).
    nominal_ts: u64,
    /// Arrival of the last in-timestamp-order packet.
    time: Ts,
    jitter: f64,
    min_delta: f64,
    max_delta: f64,
    mean_delta: f64,
    min_jitter: f64,
    max_jitter: f64,
    mean_jitter: f64,
    max_gap_ms: f64,
    max_delta_frame: FrameRef,
    max_gap_frame: FrameRef,
    payload_bytes: u64,
    sequence: u32,
    marker_packets: u32,
    duplicates: u32,
    out_of_order: u32,
    /// Highest own extended sequence number (for the duplicate window).
    highest_ext: u32,
    /// Own extended sequence number of the first packet (missing-run counting floor).
    base_ext: u32,
    run: u32,
    max_burst: u32,
    dyn_rates: [u32; DYN_RATES],
    window: [u64; WINDOW_WORDS],
    dyn_pts: [u8; DYN_RATES],
    pts: [u8; PT_LIST],
    n_dyn: u8,
    n_pts: u8,
    seq_num: u16,
    start_seq: u16,
    stop_seq: u16,
    seq_cycles: i16,
    pt: u8,
    /// `F_*` bits.
    flags: u8,
}

/// Wireshark's `under` (inside a sequence wrap).
const F_UNDER: u8 = 1;
const F_PROBLEMS: u8 = 2;
const F_JITTER_VALID: u8 = 4;
const F_HAS_MAX_DELTA: u8 = 8;
const F_HAS_GAP: u8 = 16;
/// `dyn_pts` entry holding the constructor's rate until the first packet names its PT.
const PENDING_PT: u8 = 0xFF;

/// Final numbers of a stream, as `tshark -z rtp,streams` prints them plus our counters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamSummary {
    pub packets: u64,
    pub expected: u64,
    /// expected − received: negative with duplicates.
    pub lost: i64,
    pub lost_pct: f64,
    pub sequence_errors: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub min_delta_ms: f64,
    pub mean_delta_ms: f64,
    pub max_delta_ms: f64,
    /// Frame with the max delta.
    pub max_delta_frame: Option<FrameRef>,
    pub min_jitter_ms: f64,
    pub mean_jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// False when the clock rate is unknown (jitter not computed, as in Wireshark).
    pub jitter_valid: bool,
    /// Wireshark's "Problems?" flag (wrong sequence or wrong timestamp seen).
    pub problems: bool,
    pub marker_packets: u64,
    /// Payload types seen, in order of first appearance.
    pub payload_types: Vec<u8>,
    /// Largest gap in arrival between consecutive packets, ms (for media.stopped).
    pub max_gap_ms: f64,
    pub max_gap_frame: Option<FrameRef>,
    /// Longest run of consecutive lost packets (for qos.burst-loss).
    pub max_burst: u64,
    pub payload_bytes: u64,
    /// Min delta exactly as tshark prints it: −1 when no delta was included.
    #[serde(skip)]
    pub ws_min_delta_ms: f64,
    /// Min jitter exactly as tshark prints it: −1 when no jitter was included.
    #[serde(skip)]
    pub ws_min_jitter_ms: f64,
}

fn is_cn(pt: u8) -> bool {
    pt == 13 || pt == 19
}

impl StreamStats {
    /// `clock_rate` in Hz; 0 = unknown (no jitter).
    ///
    /// Static payload types (< 96) always use the static table, as in Wireshark, so
    /// `clock_rate` only matters when the stream's first packet has a dynamic type: it
    /// becomes that type's rate. Register further dynamic types (e.g. from SDP rtpmap)
    /// with [`StreamStats::set_pt_clock_rate`]; unregistered dynamic types get 0.
    pub fn new(frame: FrameRef, ts: Ts, clock_rate: u32) -> Self {
        StreamStats {
            first_frame: frame,
            last_frame: frame,
            first_ts: ts,
            last_ts: ts,
            packets: 0,
            seq_timestamp: 0,
            nominal_ts: 0,
            time: ts,
            jitter: 0.0,
            min_delta: -1.0,
            max_delta: 0.0,
            mean_delta: 0.0,
            min_jitter: -1.0,
            max_jitter: 0.0,
            mean_jitter: 0.0,
            max_gap_ms: 0.0,
            max_delta_frame: frame,
            max_gap_frame: frame,
            payload_bytes: 0,
            sequence: 0,
            marker_packets: 0,
            duplicates: 0,
            out_of_order: 0,
            highest_ext: 0,
            base_ext: 0,
            run: 0,
            max_burst: 0,
            dyn_rates: [clock_rate, 0, 0],
            window: [0; WINDOW_WORDS],
            dyn_pts: [PENDING_PT, 0, 0],
            pts: [0; PT_LIST],
            n_dyn: u8::from(clock_rate != 0),
            n_pts: 0,
            seq_num: 0,
            start_seq: 0,
            stop_seq: 0,
            seq_cycles: 0,
            pt: 0,
            flags: 0,
        }
    }

    fn flag(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    fn set_flag(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// Register the clock rate of a dynamic payload type (SDP rtpmap; 0 for
    /// telephone-event). Up to 3 types; later ones are ignored. Static types ignore it.
    pub fn set_pt_clock_rate(&mut self, pt: u8, rate: u32) {
        let n = usize::from(self.n_dyn);
        if let Some(i) = self
            .dyn_pts
            .get(..n)
            .and_then(|p| p.iter().position(|&x| x == pt))
        {
            if let Some(r) = self.dyn_rates.get_mut(i) {
                *r = rate;
            }
            return;
        }
        if let (Some(p), Some(r)) = (self.dyn_pts.get_mut(n), self.dyn_rates.get_mut(n)) {
            *p = pt;
            *r = rate;
            self.n_dyn = self.n_dyn.saturating_add(1);
        }
    }

    fn clock_rate_of(&self, pt: u8) -> u32 {
        if pt < 96 {
            return static_clock_rate(pt);
        }
        let n = usize::from(self.n_dyn);
        self.dyn_pts
            .get(..n)
            .and_then(|p| p.iter().position(|&x| x == pt))
            .and_then(|i| self.dyn_rates.get(i).copied())
            .unwrap_or(0)
    }

    /// Account one packet of the stream, in capture order.
    pub fn update(&mut self, frame: FrameRef, arrival: Ts, hdr: &RtpHeader) {
        let ext_ts = self.own_ext_ts(hdr.timestamp);
        self.update_with_ext_ts(frame, arrival, hdr, ext_ts);
    }

    /// `raw` extended per stream, relative to the last in-order timestamp (see module doc).
    fn own_ext_ts(&self, raw: u32) -> u64 {
        let mut ext = ExtendedTimestamp {
            prev: if self.packets == 0 {
                1 << 32
            } else {
                self.seq_timestamp
            },
        };
        ext.extend(raw)
    }

    /// [`StreamStats::update`] with an extended timestamp computed by the caller (e.g. one
    /// [`ExtendedTimestamp`] per UDP conversation, exactly as Wireshark does).
    pub fn update_with_ext_ts(
        &mut self,
        frame: FrameRef,
        arrival: Ts,
        hdr: &RtpHeader,
        ext_ts: u64,
    ) {
        if self.is_steady(hdr, ext_ts) {
            self.steady(frame, arrival, hdr, ext_ts);
            return;
        }
        self.update_general(frame, arrival, hdr, ext_ts);
    }

    /// Is this the packet nearly every packet is: the next sequence number after the last
    /// in-order one and after the highest seen, in timestamp order, the previous packet's
    /// payload type, no marker, not comfort noise, outside a sequence wrap? Then
    /// [`StreamStats::steady`] gives exactly what the general path gives (each branch the
    /// general path would decide is decided by these conditions; a proptest compares the
    /// two on perturbed streams).
    fn is_steady(&self, hdr: &RtpHeader, ext_ts: u64) -> bool {
        self.packets > 0
            && self.flags & F_UNDER == 0
            && hdr.seq > self.start_seq
            && u32::from(hdr.seq) == u32::from(self.seq_num) + 1
            && self.highest_ext as u16 == self.seq_num
            && hdr.pt == self.pt
            && !hdr.marker
            && !is_cn(hdr.pt)
            && self.seq_timestamp <= ext_ts
    }

    /// [`StreamStats::update_general`] for a packet [`StreamStats::is_steady`] accepted,
    /// with the branches it fixes taken: the same operations on the same values, in the
    /// same order, so the floating-point results are bit-identical.
    fn steady(&mut self, frame: FrameRef, arrival: Ts, hdr: &RtpHeader, ext_ts: u64) {
        // own_counters: no marker; the payload type is the previous packet's, so the
        // list already holds it (or is full).
        self.payload_bytes = self.payload_bytes.saturating_add(hdr.payload_len as u64);
        let gap_from = self.last_ts;
        let gap = arrival.ms_since(gap_from);
        if !self.flag(F_HAS_GAP) || gap > self.max_gap_ms {
            self.max_gap_ms = gap.max(0.0);
            self.max_gap_frame = frame;
            self.flags |= F_HAS_GAP;
        }
        // track_seq: one past the highest, so the window advances by one.
        self.advance(1);
        self.highest_ext = self.highest_ext.wrapping_add(1);
        self.last_frame = frame;
        self.last_ts = arrival;
        self.packets = self.packets.saturating_add(1);

        // analyse: in time, in sequence, no wrap, regular.
        self.seq_num = hdr.seq;
        let mut clock = self.clock_rate_of(hdr.pt);
        if clock < 1000 {
            clock = 0;
        }
        // The same value when the last packet was in order, as it nearly always is: one
        // division fewer.
        let delta = if self.time == gap_from {
            gap
        } else {
            arrival.ms_since(self.time)
        };
        let mut current_jitter = 0.0;
        if clock != 0 {
            self.flags |= F_JITTER_VALID;
            let ts_diff = (ext_ts as i64).wrapping_sub(self.nominal_ts as i64) as f64;
            let nominal = ts_diff / f64::from(clock / 1000);
            let diff = (delta - nominal).abs();
            current_jitter = (15.0 * self.jitter + diff) / 16.0;
            self.jitter = current_jitter;
        }
        if delta > self.max_delta {
            self.max_delta = delta;
            self.max_delta_frame = frame;
            self.flags |= F_HAS_MAX_DELTA;
        }
        if self.min_delta == -1.0 || delta < self.min_delta {
            self.min_delta = delta;
        }
        // Below 2^63, so the same value as the general path's `u64` conversion (which
        // takes more instructions).
        let n = (self.packets - 1) as i64 as f64;
        self.mean_delta = (self.mean_delta * (n - 1.0) + delta) / n;
        if clock != 0 {
            if self.jitter > self.max_jitter {
                self.max_jitter = self.jitter;
            }
            self.mean_jitter = (self.mean_jitter * (n - 1.0) + current_jitter) / n;
            if self.min_jitter == -1.0 || self.jitter < self.min_jitter {
                self.min_jitter = self.jitter;
            }
            self.nominal_ts = ext_ts;
        }
        self.time = arrival;
        self.seq_timestamp = ext_ts;
        self.stop_seq = hdr.seq;
    }

    /// Every packet, whatever it is (the first, late, lost before, marked, ...). Kept out
    /// of line so the steady path, the hot one, compiles on its own.
    #[inline(never)]
    fn update_general(&mut self, frame: FrameRef, arrival: Ts, hdr: &RtpHeader, ext_ts: u64) {
        self.own_counters(frame, arrival, hdr);
        if self.packets == 0 {
            self.first_packet(arrival, hdr, ext_ts);
            return;
        }
        self.packets = self.packets.saturating_add(1);
        self.analyse(frame, arrival, hdr, ext_ts);
    }

    fn first_packet(&mut self, arrival: Ts, hdr: &RtpHeader, ext_ts: u64) {
        self.packets = 1;
        self.start_seq = hdr.seq;
        self.stop_seq = hdr.seq;
        self.seq_num = hdr.seq;
        self.seq_timestamp = ext_ts;
        self.nominal_ts = ext_ts;
        self.time = arrival;
        self.pt = hdr.pt;
        // The constructor's rate belongs to the first packet's type if that is dynamic
        // and not registered otherwise; else it is dropped.
        let n = usize::from(self.n_dyn);
        if let Some(i) = self
            .dyn_pts
            .get(..n)
            .and_then(|p| p.iter().position(|&x| x == PENDING_PT))
        {
            let taken = hdr.pt >= 96 && self.dyn_pts.get(..n).is_some_and(|p| !p.contains(&hdr.pt));
            if let Some(slot) = self.dyn_pts.get_mut(i) {
                // 0xFF can never match a 7-bit payload type, so an unclaimed entry is inert.
                *slot = if taken { hdr.pt } else { PENDING_PT };
            }
        }
        let e = (1u32 << 16) | u32::from(hdr.seq);
        self.highest_ext = e;
        self.base_ext = e;
        self.window = [0; WINDOW_WORDS];
        self.window[0] = 1;
    }

    /// `rtppacket_analyse` for every packet but the first.
    fn analyse(&mut self, frame: FrameRef, arrival: Ts, hdr: &RtpHeader, ext_ts: u64) {
        let seq = i32::from(hdr.seq);
        let in_time = self.seq_timestamp <= ext_ts;
        let mut wrong = !in_time; // STAT_FLAG_WRONG_TIMESTAMP

        // Wrap counting against the first sequence number (4.0's seq_cycles/under).
        let start = i32::from(self.start_seq);
        let under = self.flag(F_UNDER);
        if in_time && !under && (seq < start || (seq == 0 && self.stop_seq == 65535)) {
            self.seq_cycles = self.seq_cycles.saturating_add(1);
            self.set_flag(F_UNDER, true);
        } else if in_time && under && seq > start {
            self.set_flag(F_UNDER, false);
        }

        // Sequence checks, in C int arithmetic (u16 promoted).
        let prev = i32::from(self.seq_num);
        if in_time && (prev + 1 == seq || (prev == 65535 && seq == 0)) {
            self.seq_num = hdr.seq;
        } else if in_time && (prev + 1 < seq || prev - seq > 0xFF00) {
            self.seq_num = hdr.seq;
            self.sequence = self.sequence.saturating_add(1);
            wrong = true;
        } else if prev + 1 > seq {
            self.sequence = self.sequence.saturating_add(1);
            wrong = true;
        }

        let cn = is_cn(hdr.pt);
        let follow_cn = is_cn(self.pt);
        self.pt = hdr.pt;

        let mut clock = self.clock_rate_of(hdr.pt);
        // Wireshark divides by the integer clock/1000; below 1000 Hz that is a division
        // by zero (inf/NaN jitter). Treat such rates as unknown instead.
        if clock < 1000 {
            clock = 0;
        }
        let delta = arrival.ms_since(self.time);
        let mut current_jitter = 0.0;
        if clock != 0 {
            self.set_flag(F_JITTER_VALID, true);
            // Timestamp difference (extended timestamps stay far below 2^63).
            let ts_diff = (ext_ts as i64).wrapping_sub(self.nominal_ts as i64) as f64;
            let nominal = ts_diff / f64::from(clock / 1000);
            let diff = (delta - nominal).abs();
            current_jitter = (15.0 * self.jitter + diff) / 16.0;
            self.jitter = current_jitter;
        }

        let regular = !hdr.marker && !cn && in_time && !follow_cn;
        if regular {
            if delta > self.max_delta {
                self.max_delta = delta;
                self.max_delta_frame = frame;
                self.set_flag(F_HAS_MAX_DELTA, true);
            }
            if self.min_delta == -1.0 || delta < self.min_delta {
                self.min_delta = delta;
            }
            // total_nr before increment = packets − 1 (≥ 1 here).
            let n = (self.packets - 1) as f64;
            self.mean_delta = (self.mean_delta * (n - 1.0) + delta) / n;
            if clock != 0 {
                if self.jitter > self.max_jitter {
                    self.max_jitter = self.jitter;
                }
                self.mean_jitter = (self.mean_jitter * (n - 1.0) + current_jitter) / n;
                if self.min_jitter == -1.0 || self.jitter < self.min_jitter {
                    self.min_jitter = self.jitter;
                }
            }
        }
        if wrong {
            self.set_flag(F_PROBLEMS, true);
        }
        if in_time {
            self.time = arrival;
            self.seq_timestamp = ext_ts;
            if clock != 0 {
                self.nominal_ts = ext_ts;
            }
        }
        self.stop_seq = hdr.seq;
    }

    /// Counters that are ours, not Wireshark's.
    fn own_counters(&mut self, frame: FrameRef, arrival: Ts, hdr: &RtpHeader) {
        self.payload_bytes = self.payload_bytes.saturating_add(hdr.payload_len as u64);
        if hdr.marker {
            self.marker_packets = self.marker_packets.saturating_add(1);
        }
        let n = usize::from(self.n_pts);
        let new_pt = self
            .pts
            .get(..n)
            .is_some_and(|seen| !seen.contains(&hdr.pt));
        if let Some(slot) = self.pts.get_mut(n).filter(|_| new_pt) {
            *slot = hdr.pt;
            self.n_pts = self.n_pts.saturating_add(1);
        }
        if self.packets > 0 {
            let gap = arrival.ms_since(self.last_ts);
            if !self.flag(F_HAS_GAP) || gap > self.max_gap_ms {
                self.max_gap_ms = gap.max(0.0);
                self.max_gap_frame = frame;
                self.set_flag(F_HAS_GAP, true);
            }
            self.track_seq(hdr.seq);
        }
        self.last_frame = frame;
        self.last_ts = arrival;
    }

    fn track_seq(&mut self, seq: u16) {
        let hi = self.highest_ext;
        let mut e = (hi & 0xFFFF_0000) | u32::from(seq);
        if e.saturating_add(0x8000) < hi {
            e = e.saturating_add(0x1_0000);
        } else if hi.saturating_add(0x8000) < e {
            e = e.saturating_sub(0x1_0000);
        }
        if e > hi {
            self.advance(u64::from(e - hi));
            self.highest_ext = e;
        } else {
            let back = u64::from(hi - e);
            if back < WINDOW {
                let (w, b) = ((back / 64) as usize, back % 64);
                if let Some(word) = self.window.get_mut(w) {
                    if *word & (1 << b) != 0 {
                        self.duplicates = self.duplicates.saturating_add(1);
                    } else {
                        *word |= 1 << b;
                        self.out_of_order = self.out_of_order.saturating_add(1);
                    }
                }
            } else {
                self.out_of_order = self.out_of_order.saturating_add(1);
            }
        }
    }

    /// Slide the window forward by `k` ≥ 1 sequence numbers, counting missing runs of the
    /// numbers that leave it.
    fn advance(&mut self, k: u64) {
        let hi = u64::from(self.highest_ext);
        let base = u64::from(self.base_ext);
        if k == 1 && WINDOW_WORDS == 1 {
            // The in-order packet, nearly every packet: one number leaves (the oldest,
            // position WINDOW-1), the rest shift by one. Same result as the general loop.
            if hi.checked_sub(WINDOW - 1).is_some_and(|s| s >= base) {
                let set = self.window[0] & (1 << (WINDOW - 1)) != 0;
                self.note_seq(set);
            }
            self.window[0] = (self.window[0] << 1) | 1;
            return;
        }
        let leaving = k.min(WINDOW);
        // Oldest first: position WINDOW-1 down to WINDOW-leaving.
        for i in 0..leaving {
            let pos = WINDOW - 1 - i;
            let Some(s) = hi.checked_sub(pos) else {
                continue;
            };
            if s < base {
                continue;
            }
            let set = self
                .window
                .get((pos / 64) as usize)
                .is_some_and(|w| w & (1 << (pos % 64)) != 0);
            self.note_seq(set);
        }
        if k > WINDOW {
            // Numbers skipped entirely: never seen inside the window.
            self.run = self
                .run
                .saturating_add((k - WINDOW).min(u64::from(u32::MAX)) as u32);
            self.max_burst = self.max_burst.max(self.run);
            self.window = [0; WINDOW_WORDS];
        } else {
            shift_left(&mut self.window, k as u32);
        }
        self.window[0] |= 1;
    }

    fn note_seq(&mut self, seen: bool) {
        if seen {
            self.run = 0;
        } else {
            self.run = self.run.saturating_add(1);
            self.max_burst = self.max_burst.max(self.run);
        }
    }

    fn final_burst(&self) -> u32 {
        let (mut run, mut best) = (self.run, self.max_burst);
        let hi = u64::from(self.highest_ext);
        let base = u64::from(self.base_ext);
        for pos in (1..WINDOW).rev() {
            let Some(s) = hi.checked_sub(pos) else {
                continue;
            };
            if s < base {
                continue;
            }
            let set = self
                .window
                .get((pos / 64) as usize)
                .is_some_and(|w| w & (1 << (pos % 64)) != 0);
            if set {
                run = 0;
            } else {
                run = run.saturating_add(1);
                best = best.max(run);
            }
        }
        best
    }

    pub fn summary(&self) -> StreamSummary {
        // rtpstream_info_calculate: C int arithmetic, stored in guint32/gint32.
        let expected_int = i64::from(self.stop_seq) + i64::from(self.seq_cycles) * 0x10000
            - i64::from(self.start_seq)
            + 1;
        let (expected_u32, lost) = if self.packets == 0 {
            (0u32, 0i32)
        } else {
            let e = expected_int as u32;
            (e, e.wrapping_sub(self.packets as u32) as i32)
        };
        let lost_pct = if expected_u32 != 0 {
            f64::from(lost.wrapping_mul(100)) / f64::from(expected_u32)
        } else {
            0.0
        };
        let n = usize::from(self.n_pts);
        let jitter_valid = self.flag(F_JITTER_VALID);
        StreamSummary {
            packets: self.packets,
            expected: if expected_int > 0 && self.packets > 0 {
                expected_int as u64
            } else {
                0
            },
            lost: i64::from(lost),
            lost_pct,
            sequence_errors: u64::from(self.sequence),
            duplicates: u64::from(self.duplicates),
            out_of_order: u64::from(self.out_of_order),
            min_delta_ms: self.min_delta.max(0.0),
            mean_delta_ms: self.mean_delta,
            max_delta_ms: self.max_delta,
            max_delta_frame: self.flag(F_HAS_MAX_DELTA).then_some(self.max_delta_frame),
            min_jitter_ms: if jitter_valid {
                self.min_jitter.max(0.0)
            } else {
                0.0
            },
            mean_jitter_ms: if jitter_valid { self.mean_jitter } else { 0.0 },
            max_jitter_ms: if jitter_valid { self.max_jitter } else { 0.0 },
            jitter_valid,
            problems: self.flag(F_PROBLEMS),
            marker_packets: u64::from(self.marker_packets),
            payload_types: self.pts.get(..n).map(<[u8]>::to_vec).unwrap_or_default(),
            max_gap_ms: self.max_gap_ms,
            max_gap_frame: self.flag(F_HAS_GAP).then_some(self.max_gap_frame),
            max_burst: u64::from(self.final_burst()),
            payload_bytes: self.payload_bytes,
            ws_min_delta_ms: self.min_delta,
            ws_min_jitter_ms: self.min_jitter,
        }
    }
}

/// Shift a little-endian multi-word bitmap towards higher positions by `k` < 64·N bits.
fn shift_left(w: &mut [u64; WINDOW_WORDS], k: u32) {
    let words = (k / 64) as usize;
    let bits = k % 64;
    let mut out = [0u64; WINDOW_WORDS];
    for (i, slot) in out.iter_mut().enumerate() {
        let Some(src) = i.checked_sub(words) else {
            continue;
        };
        let lo = w.get(src).copied().unwrap_or(0);
        let mut v = lo << bits;
        if let Some(prev) = src
            .checked_sub(1)
            .and_then(|j| w.get(j))
            .filter(|_| bits != 0)
        {
            v |= prev >> (64 - bits);
        }
        *slot = v;
    }
    *w = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hdr(seq: u16, ts: u32, pt: u8, marker: bool) -> RtpHeader {
        RtpHeader {
            version: 2,
            padding: false,
            extension: false,
            csrc_count: 0,
            marker,
            pt,
            seq,
            timestamp: ts,
            ssrc: 1,
            payload_offset: 12,
            payload_len: 160,
        }
    }

    /// Feed (seq, rtp ts, arrival ms, pt, marker) tuples.
    fn run(pkts: &[(u16, u32, f64, u8, bool)], rate: u32) -> StreamSummary {
        let t0 = Ts(1_700_000_000_000_000_000);
        let mut s = StreamStats::new(FrameRef::new(0, 1), t0, rate);
        for (i, &(seq, ts, ms, pt, m)) in pkts.iter().enumerate() {
            let at = Ts(t0.0 + (ms * 1e6).round() as i64);
            s.update(FrameRef::new(0, i as u64 + 1), at, &hdr(seq, ts, pt, m));
        }
        s.summary()
    }

    fn clean(n: u16, start_seq: u16, start_ts: u32) -> Vec<(u16, u32, f64, u8, bool)> {
        (0..n)
            .map(|i| {
                (
                    start_seq.wrapping_add(i),
                    start_ts.wrapping_add(u32::from(i) * 160),
                    f64::from(i) * 20.0,
                    0,
                    false,
                )
            })
            .collect()
    }

    #[test]
    fn size_stays_small() {
        // 256 bytes on x86_64 at the time of writing.
        let sz = std::mem::size_of::<StreamStats>();
        assert!(sz <= 256, "StreamStats is {sz} bytes");
    }

    #[test]
    fn clean_stream() {
        let s = run(&clean(50, 1000, 5000), 0);
        assert_eq!(s.packets, 50);
        assert_eq!(s.expected, 50);
        assert_eq!(s.lost, 0);
        assert!(!s.problems);
        assert_eq!(s.sequence_errors, 0);
        assert!((s.min_delta_ms - 20.0).abs() < 1e-9);
        assert!((s.max_delta_ms - 20.0).abs() < 1e-9);
        assert!((s.mean_delta_ms - 20.0).abs() < 1e-9);
        assert!(s.jitter_valid);
        assert!(s.max_jitter_ms.abs() < 1e-9);
        assert_eq!(s.max_burst, 0);
        assert_eq!(s.payload_types, vec![0]);
        assert_eq!(s.payload_bytes, 50 * 160);
        assert!((s.max_gap_ms - 20.0).abs() < 1e-9);
    }

    #[test]
    fn jitter_by_hand() {
        // Third packet 5 ms late: D = 5, J = 5/16.
        let p = [
            (1, 0, 0.0, 0, false),
            (2, 160, 20.0, 0, false),
            (3, 320, 45.0, 0, false),
        ];
        let s = run(&p, 0);
        assert!((s.max_jitter_ms - 0.3125).abs() < 1e-9);
        assert!(s.min_jitter_ms.abs() < 1e-9);
        // mean over total_nr: pkt2 -> 0, pkt3 -> (0*1 + 0.3125)/2
        assert!((s.mean_jitter_ms - 0.15625).abs() < 1e-9);
        assert!((s.max_delta_ms - 25.0).abs() < 1e-9);
        assert_eq!(s.max_delta_frame, Some(FrameRef::new(0, 3)));
        assert!((s.mean_delta_ms - 22.5).abs() < 1e-9);
    }

    #[test]
    fn loss_counts_once_per_gap() {
        let mut p = clean(20, 10, 0);
        p.drain(5..8); // three consecutive missing
        let s = run(&p, 0);
        assert_eq!(s.packets, 17);
        assert_eq!(s.lost, 3);
        assert_eq!(s.sequence_errors, 1);
        assert!(s.problems);
        assert_eq!(s.max_burst, 3);
        assert!((s.lost_pct - 15.0).abs() < 1e-9);
        assert!((s.max_gap_ms - 80.0).abs() < 1e-9);
    }

    #[test]
    fn duplicates_make_loss_negative() {
        let mut p = clean(10, 100, 0);
        let d = p[4];
        p.insert(5, (d.0, d.1, d.2 + 0.5, d.3, d.4));
        let s = run(&p, 0);
        assert_eq!(s.packets, 11);
        assert_eq!(s.lost, -1);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.out_of_order, 0);
        assert!(s.problems);
        assert_eq!(s.max_burst, 0);
    }

    #[test]
    fn reorder_is_not_loss() {
        let mut p = clean(10, 100, 0);
        p.swap(4, 5);
        let s = run(&p, 0);
        assert_eq!(s.lost, 0);
        assert_eq!(s.out_of_order, 1);
        assert_eq!(s.duplicates, 0);
        assert_eq!(s.max_burst, 0);
        assert_eq!(s.sequence_errors, 2); // the jump, then the late one
        assert!(s.problems);
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let s = run(&clean(40, 65520, u32::MAX - 1000), 0);
        assert_eq!(s.lost, 0);
        assert_eq!(s.expected, 40);
        assert!(!s.problems);
        assert!(s.max_jitter_ms.abs() < 1e-9);
    }

    #[test]
    fn marker_and_cn_excluded_from_delta() {
        let mut p = clean(10, 1, 0);
        p[3].2 += 500.0; // would be a huge delta...
        for q in p.iter_mut().skip(4) {
            q.2 += 500.0;
        }
        p[3].4 = true; // ...but it carries the marker bit
        let s = run(&p, 0);
        assert!((s.max_delta_ms - 20.0).abs() < 1e-9);
        assert_eq!(s.marker_packets, 1);
        // CN packet and the one after it are excluded as well.
        let mut p = clean(10, 1, 0);
        p[3].3 = 13;
        p[3].2 += 7.0;
        p[4].2 += 9.0;
        let s = run(&p, 0);
        assert!((s.max_delta_ms - 20.0).abs() < 1e-9, "{}", s.max_delta_ms);
        assert_eq!(s.payload_types, vec![0, 13]);
    }

    #[test]
    fn unknown_clock_means_no_jitter() {
        let p: Vec<_> = clean(5, 1, 0)
            .into_iter()
            .map(|(a, b, c, _, e)| (a, b, c, 101, e))
            .collect();
        let s = run(&p, 0);
        assert!(!s.jitter_valid);
        assert_eq!(s.ws_min_jitter_ms, -1.0);
        assert_eq!(s.min_jitter_ms, 0.0);
        assert!((s.mean_delta_ms - 20.0).abs() < 1e-9);
        // A dynamic first packet takes the constructor's rate.
        let s = run(&p, 8000);
        assert!(s.jitter_valid);
    }

    #[test]
    fn single_packet_sentinels() {
        let s = run(&clean(1, 7, 0), 0);
        assert_eq!(s.packets, 1);
        assert_eq!(s.lost, 0);
        assert_eq!(s.ws_min_delta_ms, -1.0);
        assert_eq!(s.ws_min_jitter_ms, -1.0);
        assert!(!s.problems);
        assert_eq!(s.max_delta_frame, None);
    }

    #[test]
    fn wrong_timestamp_sets_problem() {
        let mut p = clean(6, 1, 10_000);
        p[3].1 = 0; // timestamp from the past, sequence fine
        let s = run(&p, 0);
        assert!(s.problems);
        // Wireshark does not advance its last sequence number on an out-of-time packet,
        // so the next packet looks like a forward gap: one sequence error.
        assert_eq!(s.sequence_errors, 1);
        assert_eq!(s.lost, 0);
    }

    #[test]
    fn extended_timestamp() {
        let mut e = ExtendedTimestamp::new();
        assert_eq!(e.extend(10), (1 << 32) + 10);
        assert_eq!(e.extend(5), (1 << 32) + 5);
        let mut e = ExtendedTimestamp::new();
        let a = e.extend(0xFFFF_FF00);
        let b = e.extend(0x100);
        assert_eq!(b - a, 0x200);
    }

    #[test]
    #[ignore = "timing; run with --ignored --release"]
    fn update_speed() {
        let mut s = StreamStats::new(FrameRef::new(0, 1), Ts(0), 8000);
        let n = 5_000_000u32;
        let t = std::time::Instant::now();
        for i in 0..n {
            let h = hdr(i as u16, i.wrapping_mul(160), 0, false);
            s.update(
                FrameRef::new(0, u64::from(i)),
                Ts(i64::from(i) * 20_000_000),
                &h,
            );
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        eprintln!("StreamStats::update: {ns:.2} ns/packet");
        assert_eq!(std::hint::black_box(s.summary()).lost, 0);
    }

    /// [`StreamStats::update`] without the steady-state shortcut.
    fn update_general_only(s: &mut StreamStats, frame: FrameRef, arrival: Ts, hdr: &RtpHeader) {
        let ext_ts = s.own_ext_ts(hdr.timestamp);
        s.update_general(frame, arrival, hdr, ext_ts);
    }

    #[test]
    fn steady_path_is_taken_on_a_clean_stream() {
        let mut s = StreamStats::new(FrameRef::new(0, 1), Ts(0), 0);
        s.update(FrameRef::new(0, 1), Ts(0), &hdr(7, 0, 0, false));
        let next = hdr(8, 160, 0, false);
        let ext = (1u64 << 32) + 160;
        assert!(s.is_steady(&next, ext));
        assert!(!s.is_steady(&hdr(9, 160, 0, false), ext), "a gap");
        assert!(
            !s.is_steady(&hdr(8, 160, 8, false), ext),
            "another payload type"
        );
        assert!(!s.is_steady(&hdr(8, 160, 0, true), ext), "a marker");
        assert!(!s.is_steady(&next, 1 << 31), "out of timestamp order");
    }

    proptest! {
        /// The steady-state shortcut and the general path leave the same state, bit for
        /// bit, on streams that are mostly in order with every kind of disturbance: gaps,
        /// duplicates, reordering, sequence and timestamp wraps, timestamp jumps back,
        /// marker bits, comfort noise, payload-type changes and telephone events.
        #[test]
        fn steady_path_matches_the_general_path(
            start_seq in prop_oneof![Just(65_500u16), Just(0u16), any::<u16>()],
            start_ts in prop_oneof![Just(u32::MAX - 2_000), any::<u32>()],
            rate in prop_oneof![Just(0u32), Just(8000u32), Just(500u32)],
            steps in proptest::collection::vec(
                (0u8..20, 0i64..60_000_000, prop_oneof![Just(0u8), Just(0u8), Just(8u8), Just(13u8), Just(101u8), Just(96u8)], 0u8..30),
                1..400,
            ),
        ) {
            let mut fast = StreamStats::new(FrameRef::new(0, 1), Ts(0), rate);
            fast.set_pt_clock_rate(96, 16_000);
            let mut slow = fast.clone();
            let (mut seq, mut ts, mut t) = (start_seq, start_ts, 1_000_000_000i64);
            let mut pt = 0u8;
            for (i, &(kind, dt, new_pt, m)) in steps.iter().enumerate() {
                // Mostly the next packet; sometimes a disturbance.
                match kind {
                    0 => seq = seq.wrapping_add(3),
                    1 => seq = seq.wrapping_sub(1),
                    2 => seq = seq.wrapping_sub(5),
                    3 => ts = ts.wrapping_sub(4_000),
                    4 => pt = new_pt,
                    5 => seq = seq.wrapping_add(40_000),
                    _ => seq = seq.wrapping_add(1),
                }
                ts = ts.wrapping_add(160);
                t += dt;
                let h = hdr(seq, ts, pt, m == 0);
                let f = FrameRef::new(0, i as u64 + 2);
                fast.update(f, Ts(t), &h);
                update_general_only(&mut slow, f, Ts(t), &h);
                prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
            }
            prop_assert_eq!(fast.summary(), slow.summary());
        }

        #[test]
        fn never_panics_and_loss_bounded(
            pkts in proptest::collection::vec((any::<u16>(), any::<u32>(), 0i64..10_000_000, any::<u8>(), any::<bool>()), 1..200),
            small in proptest::collection::vec((0u16..300, 0i64..100_000_000, any::<bool>()), 1..200),
        ) {
            let mut s = StreamStats::new(FrameRef::new(0, 1), Ts(0), 8000);
            let mut t = 0i64;
            for (i, &(seq, ts, dt, pt, m)) in pkts.iter().enumerate() {
                t += dt;
                s.update(FrameRef::new(0, i as u64), Ts(t), &hdr(seq, ts, pt & 0x7F, m));
            }
            let sum = s.summary();
            prop_assert_eq!(sum.packets, pkts.len() as u64);
            prop_assert!(sum.lost >= -(sum.packets as i64) - 65536);
            // Near-in-order stream: lost within [−packets, expected].
            let mut s = StreamStats::new(FrameRef::new(0, 1), Ts(0), 8000);
            let mut t = 0i64;
            for (i, &(seq, dt, m)) in small.iter().enumerate() {
                t += dt;
                let seq = 1000 + seq;
                s.update(FrameRef::new(0, i as u64), Ts(t), &hdr(seq, u32::from(seq) * 160, 0, m));
            }
            let sum = s.summary();
            prop_assert!(sum.lost <= sum.expected as i64);
            prop_assert!(sum.max_burst <= 300);
            prop_assert!(sum.duplicates + sum.out_of_order < small.len() as u64);
        }
    }
}
