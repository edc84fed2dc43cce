//! Media state: the SDP-announced endpoint table, RTP streams (5-tuple + SSRC) and RTCP
//! aggregation. Single owner; bounded; fixed-size state per stream.

use crate::correlate::{RtcpSummary, Stream, StreamKey};
use crate::rtp::events::EventTracker;
use crate::rtp::rtcp::{RtcpPacket, parse_compound};
use crate::rtp::{RtpHeader, StreamStats, codec};
use crate::sdp::{RtpMap, Sdp};
use crate::types::{Endpoint, FrameRef, Ts};
use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

type Map<K, V> = HashMap<K, V, RandomState>;
/// The stream table is keyed by a hash computed up front ([`StreamHasher`]), so its own
/// hasher only passes that value through.
type StreamMap = HashMap<StreamId, MediaStream, BuildHasherDefault<PassThrough>>;

/// What SDP told us about a media endpoint.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub rtpmap: Vec<RtpMap>,
    pub srtp: bool,
    pub rtcp: bool,
    /// When the SDP was seen: whose announcement it is, for [`Media::retract`].
    pub at: Ts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamId {
    src: Endpoint,
    dst: Endpoint,
    ssrc: u32,
    /// [`StreamHasher::hash`] of the three fields above.
    hash: u64,
}

/// Hashes a stream identity (two endpoints and the SSRC) with a per-analysis random seed
/// (capture data must not choose its hash slots). Cloned into the reader thread, which
/// computes each RTP packet's hash there ([`crate::engine`]'s `RtpHint`) and so takes the
/// hashing off the single state thread.
#[derive(Clone, Default)]
pub struct StreamHasher(RandomState);

impl StreamHasher {
    pub fn hash(&self, src: &Endpoint, dst: &Endpoint, ssrc: u32) -> u64 {
        let mut h = self.0.build_hasher();
        if let (IpAddr::V4(a), IpAddr::V4(b)) = (src.ip, dst.ip) {
            // The common case in two words.
            h.write_u64((u64::from(u32::from(a)) << 32) | u64::from(u32::from(b)));
            h.write_u64(
                (u64::from(src.port) << 48) | (u64::from(dst.port) << 32) | u64::from(ssrc),
            );
            return h.finish();
        }
        hash_endpoint(src, &mut h);
        hash_endpoint(dst, &mut h);
        h.write_u32(ssrc);
        h.finish()
    }
}

/// Passes a precomputed `u64` through (the stream table's keys carry their hash).
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (StreamId's Hash); fold anything else in regardless.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Pack an endpoint into one word (IPv4) or three (IPv6).
fn hash_endpoint<H: Hasher>(e: &Endpoint, h: &mut H) {
    match e.ip {
        IpAddr::V4(a) => h.write_u64(((u32::from(a) as u64) << 16) | e.port as u64),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            h.write_u64(v as u64);
            h.write_u64((v >> 64) as u64);
            h.write_u64(e.port as u64 | 1 << 63);
        }
    }
}

// Hand-written: the derived Hash walks the IpAddr enums field by field, which made the
// stream lookup the hottest hash in the profile (research/crates.md §5 measured the same);
// now the key carries its hash, computed once (on the reader thread when there is one).
impl Hash for StreamId {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

struct MediaStream {
    /// Discovery order, for stable output.
    order: u64,
    stats: StreamStats,
    events: Option<EventTracker>,
    pts: Vec<u8>,
    clock_rate: u32,
    codec: Option<String>,
    announced: bool,
    srtp: bool,
    telephone_event_pt: Option<u8>,
}

#[derive(Default)]
struct RtcpAgg {
    sum: RtcpSummary,
    rtt_sum: f64,
    rtt_n: u64,
    /// Sender's clock rate is unknown here: jitter kept in timestamp units.
    max_jitter_units: u32,
}

/// The last [`SR_KEPT`] sender reports of one SSRC: NTP middle-32 bits (what a report
/// block's LSR quotes) and capture time, oldest overwritten first. A receiver quotes the
/// last SR it got from that SSRC (RFC 3550 §6.4.1), so a few per sender are enough, and
/// the table grows with the senders live in the last five minutes, not with their SRs
/// (keyed by NTP bits alone, it held every SR of those five minutes, and an RR could
/// match another sender's SR that carried the same NTP time).
#[derive(Default, Clone, Copy)]
struct SrTimes {
    ntp: [u32; SR_KEPT],
    at: [Ts; SR_KEPT],
    next: u8,
    len: u8,
}

const SR_KEPT: usize = 4;

impl SrTimes {
    fn push(&mut self, ntp: u32, at: Ts) {
        let i = usize::from(self.next) % SR_KEPT;
        if let (Some(n), Some(t)) = (self.ntp.get_mut(i), self.at.get_mut(i)) {
            *n = ntp;
            *t = at;
        }
        self.next = ((i + 1) % SR_KEPT) as u8;
        self.len = self.len.saturating_add(1).min(SR_KEPT as u8);
    }
    /// The capture time of the newest SR with these NTP bits.
    fn get(&self, ntp: u32) -> Option<Ts> {
        (1..=usize::from(self.len))
            .map(|k| (usize::from(self.next) + SR_KEPT - k) % SR_KEPT)
            .find(|&i| self.ntp.get(i) == Some(&ntp))
            .and_then(|i| self.at.get(i).copied())
    }
    /// The newest SR's capture time.
    fn newest(&self) -> Option<Ts> {
        (self.len > 0)
            .then(|| {
                self.at
                    .get((usize::from(self.next) + SR_KEPT - 1) % SR_KEPT)
            })
            .flatten()
            .copied()
    }
}

/// All media state of one shard.
pub struct Media {
    announced: Map<Endpoint, Announcement>,
    streams: StreamMap,
    hasher: StreamHasher,
    finished: Vec<(u64, StreamId, MediaStream)>,
    next_order: u64,
    /// RTCP report blocks keyed by the reported-on SSRC, with the reporter's address.
    rtcp_about: Map<(u32, std::net::IpAddr), RtcpAgg>,
    /// SR sender counts keyed by (ssrc, sender address).
    sr_counts: Map<(u32, std::net::IpAddr), u64>,
    /// The last SRs of each sender SSRC (for RTT from LSR/DLSR).
    sr_times: Map<u32, SrTimes>,
    /// `sr_times`' size after its last scan, and when that was.
    sr_pruned: (usize, Ts),
    max_streams: usize,
    pub evicted: u64,
}

/// The endpoints an SDP announces: each m= section's RTP address and port, and its RTCP
/// one (RTP+1, or `a=rtcp`) unless RTCP is multiplexed. (section, endpoint, is RTCP)
fn announced_endpoints(sdp: &Sdp) -> Vec<(&crate::sdp::Media, Endpoint, bool)> {
    let mut out = Vec::new();
    for m in &sdp.media {
        if m.port == 0 {
            continue;
        }
        let Some(ip) = sdp.media_addr(m) else {
            continue;
        };
        if ip.is_unspecified() {
            continue;
        }
        out.push((m, Endpoint::new(ip, m.port), false));
        if !m.rtcp_mux {
            let rp = m.rtcp_port.unwrap_or(m.port.saturating_add(1));
            let rip = m.rtcp_addr.unwrap_or(ip);
            out.push((m, Endpoint::new(rip, rp), true));
        }
    }
    out
}

fn telephone_event(rtpmap: &[RtpMap]) -> Option<u8> {
    rtpmap
        .iter()
        .find(|r| r.encoding.eq_ignore_ascii_case("telephone-event"))
        .map(|r| r.pt)
}

impl Media {
    pub fn new(max_streams: usize) -> Self {
        Media {
            announced: Map::default(),
            streams: StreamMap::default(),
            hasher: StreamHasher::default(),
            finished: Vec::new(),
            next_order: 0,
            rtcp_about: Map::default(),
            sr_counts: Map::default(),
            sr_times: Map::default(),
            sr_pruned: (0, Ts::default()),
            max_streams,
            evicted: 0,
        }
    }

    /// Register the media endpoints an SDP announces (RTP port, and RTCP port = RTP+1 or
    /// `a=rtcp`). A later announcement of the same endpoint replaces the earlier one.
    pub fn announce(&mut self, sdp: &Sdp, at: Ts) {
        for (m, ep, rtcp) in announced_endpoints(sdp) {
            if self.announced.len() >= self.max_streams.saturating_mul(2) {
                break;
            }
            let srtp = m.proto.to_ascii_uppercase().contains("SAVP");
            self.announced.insert(
                ep,
                Announcement {
                    rtpmap: if rtcp { Vec::new() } else { m.rtpmap.clone() },
                    srtp,
                    rtcp,
                    at,
                },
            );
        }
    }

    /// Forget what the SDP seen at `at` announced, where no later SDP announced it again:
    /// its call has been finalised (streaming finalisation), and the table must not grow
    /// with the capture's length.
    pub fn retract(&mut self, sdp: &Sdp, at: Ts) {
        for (_, ep, _) in announced_endpoints(sdp) {
            if self.announced.get(&ep).is_some_and(|a| a.at == at) {
                self.announced.remove(&ep);
            }
        }
    }

    /// Whether SDP announced an endpoint of this packet (either direction: media is
    /// symmetric in practice, and Wireshark's SDP conversations match both ways), and if
    /// so whether as an RTCP endpoint.
    pub fn announced_rtcp(&self, src: &Endpoint, dst: &Endpoint) -> Option<bool> {
        if self.announced.is_empty() {
            return None;
        }
        self.announced
            .get(dst)
            .or_else(|| self.announced.get(src))
            .map(|a| a.rtcp)
    }

    /// The hasher of the stream table, for computing [`Media::update_known`]'s `hash`
    /// elsewhere (the reader thread).
    pub fn hasher(&self) -> &StreamHasher {
        &self.hasher
    }

    /// Account a packet of a stream already tracked; `false` when the stream is new.
    /// `hash`: [`StreamHasher::hash`] of `(src, dst, hdr.ssrc)` from [`Media::hasher`].
    #[allow(clippy::too_many_arguments)]
    pub fn update_known(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        src: Endpoint,
        dst: Endpoint,
        hdr: &RtpHeader,
        hash: u64,
        payload: &[u8],
    ) -> bool {
        let id = StreamId {
            src,
            dst,
            ssrc: hdr.ssrc,
            hash,
        };
        match self.streams.get_mut(&id) {
            Some(s) => {
                Self::account(s, frame, ts, hdr, payload);
                true
            }
            None => false,
        }
    }

    /// Start a new stream with this packet. `announced`: found through SDP.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        src: Endpoint,
        dst: Endpoint,
        hdr: &RtpHeader,
        payload: &[u8],
        announced: bool,
    ) {
        let id = StreamId {
            src,
            dst,
            ssrc: hdr.ssrc,
            hash: self.hasher.hash(&src, &dst, hdr.ssrc),
        };
        if self.streams.len() >= self.max_streams {
            self.evict_oldest();
        }
        let ann = if announced {
            self.announced
                .get(&dst)
                .or_else(|| self.announced.get(&src))
        } else {
            None
        };
        let rtpmap = ann.map(|a| a.rtpmap.as_slice()).unwrap_or(&[]);
        let sdp_map = rtpmap.iter().find(|r| r.pt == hdr.pt);
        let encoding = sdp_map.map(|r| r.encoding.clone());
        let clock = codec::clock_rate(hdr.pt, encoding.as_deref(), sdp_map.map(|r| r.clock_rate));
        let codec_name = encoding
            .or_else(|| crate::sdp::static_payload(hdr.pt).map(|(n, _)| n.to_string()))
            .or_else(|| codec::static_name(hdr.pt).map(str::to_string));
        let mut stats = StreamStats::new(frame, ts, clock);
        // Dynamic payload types get their clock from the SDP rtpmap, as in Wireshark.
        for r in rtpmap
            .iter()
            .filter(|r| r.pt >= 96 && !r.encoding.eq_ignore_ascii_case("telephone-event"))
        {
            stats.set_pt_clock_rate(
                r.pt,
                codec::clock_rate(r.pt, Some(&r.encoding), Some(r.clock_rate)),
            );
        }
        let mut s = MediaStream {
            order: self.next_order,
            stats,
            events: None,
            pts: Vec::new(),
            clock_rate: clock,
            codec: codec_name,
            announced: ann.is_some(),
            srtp: ann.map(|a| a.srtp).unwrap_or(false),
            telephone_event_pt: telephone_event(rtpmap),
        };
        self.next_order += 1;
        Self::account(&mut s, frame, ts, hdr, payload);
        self.streams.insert(id, s);
    }

    fn account(s: &mut MediaStream, frame: FrameRef, ts: Ts, hdr: &RtpHeader, payload: &[u8]) {
        s.stats.update(frame, ts, hdr);
        if s.pts.last() != Some(&hdr.pt) && !s.pts.contains(&hdr.pt) && s.pts.len() < 16 {
            s.pts.push(hdr.pt);
        }
        let is_event = s.telephone_event_pt == Some(hdr.pt)
            || (s.telephone_event_pt.is_none() && hdr.pt == 101);
        if is_event {
            let body = payload
                .get(hdr.payload_offset..hdr.payload_offset.saturating_add(hdr.payload_len))
                .unwrap_or(&[]);
            let rate = if s.clock_rate == 0 {
                8000
            } else {
                s.clock_rate
            };
            s.events.get_or_insert_with(EventTracker::default).update(
                frame,
                ts,
                hdr.timestamp,
                body,
                rate,
            );
        }
    }

    /// The table is full: finalise the streams idle longest (they stay in the report; a
    /// later packet starts a new stream). One at a time this scanned the whole table for
    /// every new stream, so a flood beyond the cap (200,000 by default) cost cap × flood;
    /// the oldest sixteenth goes at once, so a scan is paid once per cap/16 new streams.
    fn evict_oldest(&mut self) {
        let n = (self.streams.len() / 16).max(1);
        let mut oldest: Vec<(Ts, u64, StreamId)> = self
            .streams
            .iter()
            .map(|(id, s)| (s.stats.last_ts, s.order, *id))
            .collect();
        if oldest.len() > n {
            // `order` is unique, so the set chosen does not depend on hash order.
            oldest.select_nth_unstable_by_key(n - 1, |(t, o, _)| (*t, *o));
            oldest.truncate(n);
        }
        for (_, _, id) in oldest {
            if let Some(s) = self.streams.remove(&id) {
                self.evicted += 1;
                self.finished.push((s.order, id, s));
            }
        }
    }

    /// Account one RTCP compound packet; returns the anomaly id if it was malformed.
    pub fn rtcp(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        src: Endpoint,
        data: &[u8],
    ) -> Option<&'static str> {
        let (pkts, bad) = parse_compound(data);
        for p in &pkts {
            let (reports, sender) = match p {
                RtcpPacket::Sr {
                    ssrc,
                    ntp_msw,
                    ntp_lsw,
                    reports,
                    ..
                } => {
                    *self.sr_counts.entry((*ssrc, src.ip)).or_default() += 1;
                    if self.sr_times.len() < 65_536 || self.sr_times.contains_key(ssrc) {
                        self.sr_times
                            .entry(*ssrc)
                            .or_default()
                            .push((ntp_msw << 16) | (ntp_lsw >> 16), ts);
                    }
                    (reports, true)
                }
                RtcpPacket::Rr { reports, .. } => (reports, false),
                RtcpPacket::Xr { voip, .. } => {
                    for v in voip {
                        let agg = self.rtcp_about.entry((v.ssrc, src.ip)).or_default();
                        agg.sum.xr_voip = Some(v.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            let _ = sender;
            for rb in reports {
                if self.rtcp_about.len() >= 65_536
                    && !self.rtcp_about.contains_key(&(rb.ssrc, src.ip))
                {
                    continue;
                }
                let agg = self.rtcp_about.entry((rb.ssrc, src.ip)).or_default();
                agg.sum.reports += 1;
                agg.sum.first_frame.get_or_insert(frame);
                agg.sum.last_fraction_lost = Some(rb.fraction_lost);
                agg.sum.max_fraction_lost = Some(
                    agg.sum
                        .max_fraction_lost
                        .unwrap_or(0.0)
                        .max(rb.fraction_lost),
                );
                agg.sum.last_cumulative_lost = Some(rb.cumulative_lost);
                agg.max_jitter_units = agg.max_jitter_units.max(rb.jitter);
                if rb.lsr != 0
                    && let Some(sr_ts) = self.sr_times.get(&rb.ssrc).and_then(|r| r.get(rb.lsr))
                {
                    let rtt = ts.ms_since(sr_ts) - rb.dlsr as f64 / 65.536;
                    if rtt >= 0.0 {
                        agg.rtt_sum += rtt;
                        agg.rtt_n += 1;
                        agg.sum.max_rtt_ms = Some(agg.sum.max_rtt_ms.unwrap_or(0.0).max(rtt));
                    }
                }
            }
        }
        bad
    }

    /// Finalise streams idle since before `now - idle_ms`.
    pub fn expire(&mut self, now: Ts, idle_ms: i64) {
        let cutoff = Ts(now.0.saturating_sub(idle_ms.saturating_mul(1_000_000)));
        let stale: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.stats.last_ts < cutoff)
            .map(|(k, _)| *k)
            .collect();
        for id in stale {
            if let Some(s) = self.streams.remove(&id) {
                self.finished.push((s.order, id, s));
            }
        }
    }

    /// Forget the SR times of senders silent for five minutes: a receiver report quotes
    /// the last SR it received, seconds ago, so older ones can no longer give an RTT.
    /// Called every capture second, so the table stays near the senders of the last five
    /// minutes instead of swinging up to a minute's worth more between scans.
    /// A scan costs the table's size, so it runs once the table grew by an eighth since
    /// the last one, or a capture minute passed: linear in the SRs whatever the clock does.
    pub fn expire_sr_times(&mut self, now: Ts) {
        let (len, at) = self.sr_pruned;
        let grew = self.sr_times.len() > len + len / 8 + 64;
        if !grew && now.0 < at.0.saturating_add(60 * Ts::NS_PER_SEC) {
            return;
        }
        let cutoff = now.0.saturating_sub(300 * Ts::NS_PER_SEC);
        self.sr_times
            .retain(|_, r| r.newest().is_some_and(|t| t.0 >= cutoff));
        self.sr_pruned = (self.sr_times.len(), now);
    }

    /// End of input: every stream, in discovery order, with RTCP and MOS attached.
    pub fn finish(mut self) -> Vec<Stream> {
        let live: Vec<(StreamId, MediaStream)> = self.streams.drain().collect();
        for (id, s) in live {
            self.finished.push((s.order, id, s));
        }
        self.finished.sort_by_key(|(o, _, _)| *o);
        let finished = std::mem::take(&mut self.finished);
        finished
            .into_iter()
            .map(|(order, id, s)| self.model(order, id, s))
            .collect()
    }

    /// Every stream not yet taken (live or idle), as the correlator sees it, by discovery
    /// order: what a streaming engine decides streams from.
    pub fn keys(&self) -> Vec<(u64, StreamKey)> {
        let key = |id: &StreamId, s: &MediaStream| {
            (
                s.order,
                StreamKey {
                    src: id.src,
                    dst: id.dst,
                    first_ts: s.stats.first_ts,
                    last_ts: s.stats.last_ts,
                },
            )
        };
        let mut v: Vec<(u64, StreamKey)> = self
            .streams
            .iter()
            .map(|(id, s)| key(id, s))
            .chain(self.finished.iter().map(|(_, id, s)| key(id, s)))
            .collect();
        v.sort_unstable_by_key(|(o, _)| *o);
        v
    }

    /// Take the streams with these discovery orders out of the tables, finalised (with
    /// RTCP and MOS as they stand), in discovery order. A later packet of one of them
    /// starts a new stream.
    pub fn take(&mut self, orders: &std::collections::BTreeSet<u64>) -> Vec<Stream> {
        if orders.is_empty() {
            return Vec::new();
        }
        let ids: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| orders.contains(&s.order))
            .map(|(id, _)| *id)
            .collect();
        let mut taken: Vec<(u64, StreamId, MediaStream)> = Vec::new();
        for id in ids {
            if let Some(s) = self.streams.remove(&id) {
                taken.push((s.order, id, s));
            }
        }
        let (hit, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.finished)
            .into_iter()
            .partition(|(o, _, _)| orders.contains(o));
        self.finished = keep;
        taken.extend(hit);
        taken.sort_by_key(|(o, _, _)| *o);
        taken
            .into_iter()
            .map(|(order, id, s)| {
                let m = self.model(order, id, s);
                // What RTCP said about it went into its summary: the tables must not
                // grow with the capture's length.
                self.rtcp_about.remove(&(id.ssrc, id.dst.ip));
                self.sr_counts.remove(&(id.ssrc, id.src.ip));
                m
            })
            .collect()
    }

    /// A stream for the model: statistics summed up, RTCP about it, MOS.
    fn model(&self, order: u64, id: StreamId, s: MediaStream) -> Stream {
        let stats = s.stats.summary();
        // Reports about this SSRC from the host it was sent to, else from anyone.
        let rtcp = self
            .rtcp_about
            .get(&(id.ssrc, id.dst.ip))
            .map(|a| {
                let mut sum = a.sum.clone();
                if a.rtt_n > 0 {
                    sum.mean_rtt_ms = Some(a.rtt_sum / a.rtt_n as f64);
                }
                if s.clock_rate > 0 {
                    sum.max_jitter_ms =
                        Some(a.max_jitter_units as f64 * 1000.0 / s.clock_rate as f64);
                }
                sum
            })
            .map(|mut sum| {
                sum.sender_reports = self
                    .sr_counts
                    .get(&(id.ssrc, id.src.ip))
                    .copied()
                    .unwrap_or(0);
                sum
            })
            .or_else(|| {
                self.sr_counts
                    .get(&(id.ssrc, id.src.ip))
                    .map(|n| RtcpSummary {
                        sender_reports: *n,
                        ..Default::default()
                    })
            });
        let events = s.events.map(|e| e.events).unwrap_or_default();
        let is_dtmf_only = !events.is_empty() && s.pts.len() == 1;
        let codec = if is_dtmf_only {
            Some("telephone-event".to_string())
        } else {
            s.codec.clone()
        };
        let mos = match (&codec, stats.jitter_valid) {
            (Some(c), true) if !is_dtmf_only => Some(crate::rtp::mos::estimate(
                c,
                stats.lost_pct.max(0.0),
                stats.mean_jitter_ms,
                rtcp.as_ref().and_then(|r| r.mean_rtt_ms),
            )),
            _ => None,
        };
        Stream {
            order,
            ssrc: id.ssrc,
            src: id.src,
            dst: id.dst,
            first_frame: s.stats.first_frame,
            last_frame: s.stats.last_frame,
            first_ts: s.stats.first_ts,
            last_ts: s.stats.last_ts,
            stats,
            codec,
            clock_rate: s.clock_rate,
            announced: s.announced,
            srtp: s.srtp,
            dtmf: events,
            rtcp,
            mos,
            call: None,
            association: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_reports_are_kept_per_ssrc_newest_first() {
        let mut r = SrTimes::default();
        assert_eq!(r.get(7), None);
        assert_eq!(r.newest(), None);
        for i in 0..20u32 {
            r.push(1000 + i, Ts(i64::from(i)));
        }
        // The last SR_KEPT survive, the older ones were overwritten.
        assert_eq!(r.get(1019), Some(Ts(19)));
        assert_eq!(
            r.get(1000 + 20 - SR_KEPT as u32),
            Some(Ts(20 - SR_KEPT as i64))
        );
        assert_eq!(r.get(1000 + 19 - SR_KEPT as u32), None);
        assert_eq!(r.newest(), Some(Ts(19)));
        // Two SRs with the same NTP bits: the newer one answers.
        r.push(5, Ts(100));
        r.push(5, Ts(200));
        assert_eq!(r.get(5), Some(Ts(200)));
    }

    /// What one tracked stream costs (docs/performance.md quotes these numbers).
    #[test]
    fn per_stream_state_is_small() {
        let stream = std::mem::size_of::<MediaStream>();
        let key = std::mem::size_of::<StreamId>();
        eprintln!(
            "MediaStream {stream} B + StreamId {key} B per stream (+ hash table slot overhead)"
        );
        assert!(stream <= 400, "MediaStream grew to {stream} bytes");
        assert!(key <= 80);
    }
}
