//! Media generators: one RTP stream per call (`RtpSpec`) with its impairments (listed or
//! seeded random loss, seeded arrival jitter, delayed packets that therefore arrive out of
//! order, duplicates, an SSRC change, sequence wrap, RFC 4733 telephone-events with their
//! end-packet retransmissions, comfort noise), the ground truth the plan implies
//! (`StreamTruth`), and RTCP packet builders (SR/RR with report blocks, SDES CNAME, BYE).

use super::Rng;

/// A telephone-event (RFC 4733) digit inside a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// '0'..'9', '*', '#', 'A'..'D'.
    pub digit: char,
    /// Packet slot (0-based, 20 ms each) where the event starts.
    pub start_slot: u32,
    /// Slots the key is held (progress packets; the last one carries the E bit).
    pub slots: u32,
}

/// RFC 4733 event code of a DTMF digit.
pub fn dtmf_code(d: char) -> Option<u8> {
    match d {
        '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// Impairments applied to a generated stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Impairments {
    /// Sequence numbers never delivered.
    pub drop_seqs: Vec<u16>,
    /// Additional random loss probability per packet (seeded).
    pub loss_ratio: f64,
    /// Maximum extra arrival delay, uniform in [0, jitter_ms) per packet (seeded). Kept
    /// below the packet interval it never reorders on its own.
    pub jitter_ms: f64,
    /// (sequence number, extra delay ms): late packets, reordered behind later ones.
    pub delays: Vec<(u16, u32)>,
    /// Sequence numbers delivered twice (the copy 50 µs after the original, as a SPAN
    /// port duplicate would be).
    pub duplicate_seqs: Vec<u16>,
}

/// One RTP stream to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpSpec {
    pub ssrc: u32,
    pub pt: u8,
    pub clock_rate: u32,
    pub ptime_ms: u32,
    pub start_seq: u16,
    pub start_ts: u32,
    /// Nominal send time of slot 0 (ns since the epoch).
    pub start_ns: i64,
    /// Number of 20 ms (ptime) slots.
    pub slots: u32,
    pub payload_len: usize,
    pub fill: u8,
    pub impair: Impairments,
    /// (slot, new SSRC): from that slot on the stream restarts with a new SSRC, sequence
    /// and timestamp base, as a re-INVITE-less media restart does.
    pub ssrc_change: Option<(u32, u32)>,
    pub dtmf: Vec<DtmfEvent>,
    pub te_pt: u8,
    /// (slot, slots): a silence period sent as one comfort-noise (PT 13) packet.
    pub comfort_noise: Vec<(u32, u32)>,
    pub seed: u64,
}

impl RtpSpec {
    /// A G.711 µ-law stream of `slots` packets.
    pub fn pcmu(ssrc: u32, start_seq: u16, start_ns: i64, slots: u32, seed: u64) -> Self {
        RtpSpec {
            ssrc,
            pt: 0,
            clock_rate: 8000,
            ptime_ms: 20,
            start_seq,
            start_ts: (mix_small(seed) as u32) & 0x0FFF_FFFF,
            start_ns,
            slots,
            payload_len: 160,
            fill: 0xFF,
            impair: Impairments::default(),
            ssrc_change: None,
            dtmf: Vec::new(),
            te_pt: 101,
            comfort_noise: Vec::new(),
            seed,
        }
    }
}

fn mix_small(x: u64) -> u64 {
    super::mix64(x ^ 0x5EED)
}

/// One packet of a generated stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPkt {
    /// Arrival time at the capture point (ns).
    pub ns: i64,
    pub ssrc: u32,
    pub seq: u16,
    pub bytes: Vec<u8>,
}

/// What a correct analyzer must report for one (5-tuple, SSRC) stream, derived from the
/// plan: counts of sent/dropped/duplicated packets and the delivery order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamTruth {
    pub ssrc: u32,
    /// Packets delivered, duplicates included (Wireshark "Pkts").
    pub packets: u32,
    /// Wireshark "Lost": expected − received (negative with duplicates).
    pub lost: i64,
    pub duplicates: u32,
    /// Wireshark's sequence-error count: one per forward gap + one per late/dup packet.
    pub sequence_errors: u32,
    pub dtmf: Vec<char>,
    /// Payload types seen, in first-seen order.
    pub pts: Vec<u8>,
    /// Capture-time of the first and last delivered packet.
    pub first_ns: i64,
    pub last_ns: i64,
    /// Delivered octets of RTP payload (for RTCP sender info).
    pub octets: u64,
}

/// Fixed 12-byte RTP header + payload.
pub fn rtp_packet(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push((u8::from(marker) << 7) | (pt & 0x7F));
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RFC 4733 event payload.
pub fn telephone_event(code: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, (u8::from(end) << 7) | (volume & 0x3F), d[0], d[1]]
}

struct Sent {
    nominal_ns: i64,
    ssrc: u32,
    seq: u16,
    bytes: Vec<u8>,
    digit: Option<char>,
}

/// Generates the stream: packets in arrival order, and the truth per SSRC.
pub fn generate(spec: &RtpSpec) -> (Vec<MediaPkt>, Vec<StreamTruth>) {
    let samples = spec.clock_rate / 1000 * spec.ptime_ms;
    let slot_ns = i64::from(spec.ptime_ms) * 1_000_000;
    let payload = vec![spec.fill; spec.payload_len];
    let mut sent: Vec<Sent> = Vec::with_capacity(spec.slots as usize + 8);
    let mut ssrc = spec.ssrc;
    let mut seq = spec.start_seq;
    let mut ts_base = spec.start_ts;
    let mut slot_base = 0u32; // slot where the current SSRC's timestamps start
    let mut marker = true;
    let mut slot = 0u32;
    while slot < spec.slots {
        if let Some((k, new)) = spec.ssrc_change
            && slot == k
            && k > 0
        {
            ssrc = new;
            seq = seq.wrapping_add(0x4000);
            ts_base = ts_base.wrapping_add(0x0100_0000);
            slot_base = slot;
            marker = true;
        }
        let t_slot = spec.start_ns + i64::from(slot) * slot_ns;
        let ts_slot = ts_base.wrapping_add((slot - slot_base).wrapping_mul(samples));
        if let Some(ev) = spec.dtmf.iter().find(|e| e.start_slot == slot) {
            let code = dtmf_code(ev.digit).unwrap_or(0);
            let n = ev.slots.max(1);
            for i in 0..n + 2 {
                let end = i + 1 >= n;
                let dur = ((i.min(n - 1) + 1) * samples).min(0xFFFF) as u16;
                let pl = telephone_event(code, end, 10, dur);
                sent.push(Sent {
                    nominal_ns: t_slot + i64::from(i) * slot_ns,
                    ssrc,
                    seq,
                    bytes: rtp_packet(i == 0, spec.te_pt, seq, ts_slot, ssrc, &pl),
                    digit: if i == 0 { Some(ev.digit) } else { None },
                });
                seq = seq.wrapping_add(1);
            }
            slot += n + 2;
            marker = false;
            continue;
        }
        if let Some(&(_, len)) = spec.comfort_noise.iter().find(|c| c.0 == slot) {
            sent.push(Sent {
                nominal_ns: t_slot,
                ssrc,
                seq,
                bytes: rtp_packet(false, 13, seq, ts_slot, ssrc, &[0x40]),
                digit: None,
            });
            seq = seq.wrapping_add(1);
            slot += len.max(1);
            marker = true; // next talkspurt
            continue;
        }
        sent.push(Sent {
            nominal_ns: t_slot,
            ssrc,
            seq,
            bytes: rtp_packet(marker, spec.pt, seq, ts_slot, ssrc, &payload),
            digit: None,
        });
        marker = false;
        seq = seq.wrapping_add(1);
        slot += 1;
    }

    let im = &spec.impair;
    let mut rng = Rng::new(spec.seed ^ 0xA11CE);
    let mut out: Vec<(MediaPkt, Option<char>, bool)> = Vec::with_capacity(sent.len() + 8);
    for s in sent {
        // draw both numbers for every packet so one impairment does not shift the others
        let lose = rng.next_f64() < im.loss_ratio;
        let jit = (rng.next_f64() * im.jitter_ms * 1e6) as i64;
        if im.drop_seqs.contains(&s.seq) || lose {
            continue;
        }
        let delay = im
            .delays
            .iter()
            .find(|d| d.0 == s.seq)
            .map(|d| i64::from(d.1) * 1_000_000)
            .unwrap_or(0);
        let ns = s.nominal_ns + jit + delay;
        let dup = im.duplicate_seqs.contains(&s.seq);
        let pkt = MediaPkt {
            ns,
            ssrc: s.ssrc,
            seq: s.seq,
            bytes: s.bytes,
        };
        if dup {
            let mut copy = pkt.clone();
            copy.ns += 50_000;
            out.push((pkt, s.digit, false));
            out.push((copy, None, true));
        } else {
            out.push((pkt, s.digit, false));
        }
    }
    out.sort_by_key(|p| p.0.ns); // stable: equal times keep send order
    let truths = truth_of(&out);
    (out.into_iter().map(|p| p.0).collect(), truths)
}

/// Per-SSRC truth over delivered packets in arrival order, following Wireshark's
/// definitions (research/wireshark-reference.md §1–2): lost = expected − received with
/// expected spanning the minimum to maximum extended sequence number.
fn truth_of(pkts: &[(MediaPkt, Option<char>, bool)]) -> Vec<StreamTruth> {
    struct Acc {
        t: StreamTruth,
        prev: u16,
        // extended sequence numbers (cycles tracked against the first packet)
        cycles: i64,
        last_raw: u16,
        min_ext: i64,
        max_ext: i64,
    }
    let mut accs: Vec<Acc> = Vec::new();
    for (p, digit, is_dup) in pkts {
        let idx = match accs.iter().position(|a| a.t.ssrc == p.ssrc) {
            Some(i) => i,
            None => {
                accs.push(Acc {
                    t: StreamTruth {
                        ssrc: p.ssrc,
                        first_ns: p.ns,
                        ..Default::default()
                    },
                    prev: p.seq.wrapping_sub(1),
                    cycles: 0,
                    last_raw: p.seq,
                    min_ext: i64::from(p.seq),
                    max_ext: i64::from(p.seq),
                });
                accs.len() - 1
            }
        };
        let Some(a) = accs.get_mut(idx) else { continue };
        a.t.packets += 1;
        a.t.last_ns = p.ns;
        a.t.octets += p.bytes.len().saturating_sub(12) as u64;
        if *is_dup {
            a.t.duplicates += 1;
        }
        if let Some(d) = digit {
            a.t.dtmf.push(*d);
        }
        if let Some(&pt) = p.bytes.get(1) {
            let pt = pt & 0x7F;
            if !a.t.pts.contains(&pt) {
                a.t.pts.push(pt);
            }
        }
        // extended sequence relative to the last seen raw value (small steps only)
        let step = i64::from(p.seq.wrapping_sub(a.last_raw) as i16);
        let base_ext = a.cycles * 65536 + i64::from(a.last_raw);
        let ext = base_ext + step;
        a.cycles = ext.div_euclid(65536);
        a.last_raw = p.seq;
        a.min_ext = a.min_ext.min(ext);
        a.max_ext = a.max_ext.max(ext);
        // Wireshark sequence check
        let expected_next = a.prev.wrapping_add(1);
        if p.seq == expected_next {
            a.prev = p.seq;
        } else if p.seq.wrapping_sub(a.prev) < 0x8000 && p.seq != a.prev {
            a.t.sequence_errors += 1; // forward gap
            a.prev = p.seq;
        } else {
            a.t.sequence_errors += 1; // late or duplicate
        }
    }
    accs.into_iter()
        .map(|a| {
            let mut t = a.t;
            let expected = a.max_ext - a.min_ext + 1;
            t.lost = expected - i64::from(t.packets);
            t
        })
        .collect()
}

/// 64-bit NTP timestamp of a Unix time in ns.
pub fn ntp_from_ns(ns: i64) -> u64 {
    let ns = u64::try_from(ns.max(0)).unwrap_or(0);
    let secs = ns / 1_000_000_000 + 2_208_988_800;
    let frac = ((ns % 1_000_000_000) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// An RTCP reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed in the packet.
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

fn rtcp_header(out: &mut Vec<u8>, count: u8, pt: u8, body_len: usize) {
    out.push(0x80 | (count & 0x1F));
    out.push(pt);
    let words = (body_len + 4) / 4 - 1;
    out.extend_from_slice(&(words as u16).to_be_bytes());
}

fn push_blocks(b: &mut Vec<u8>, blocks: &[ReportBlock]) {
    for r in blocks {
        b.extend_from_slice(&r.ssrc.to_be_bytes());
        b.push(r.fraction_lost);
        let cl = (r.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        b.extend_from_slice(&cl.to_be_bytes()[1..]);
        b.extend_from_slice(&r.highest_seq.to_be_bytes());
        b.extend_from_slice(&r.jitter.to_be_bytes());
        b.extend_from_slice(&r.lsr.to_be_bytes());
        b.extend_from_slice(&r.dlsr.to_be_bytes());
    }
}

/// Sender report (at most 31 report blocks are used).
pub fn rtcp_sr(
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    blocks: &[ReportBlock],
) -> Vec<u8> {
    let blocks = blocks.get(..blocks.len().min(31)).unwrap_or(&[]);
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&ntp.to_be_bytes());
    b.extend_from_slice(&rtp_ts.to_be_bytes());
    b.extend_from_slice(&packets.to_be_bytes());
    b.extend_from_slice(&octets.to_be_bytes());
    push_blocks(&mut b, blocks);
    let mut out = Vec::with_capacity(b.len() + 4);
    rtcp_header(&mut out, blocks.len() as u8, 200, b.len());
    out.extend_from_slice(&b);
    out
}

/// Receiver report.
pub fn rtcp_rr(ssrc: u32, blocks: &[ReportBlock]) -> Vec<u8> {
    let blocks = blocks.get(..blocks.len().min(31)).unwrap_or(&[]);
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    push_blocks(&mut b, blocks);
    let mut out = Vec::with_capacity(b.len() + 4);
    rtcp_header(&mut out, blocks.len() as u8, 201, b.len());
    out.extend_from_slice(&b);
    out
}

/// SDES with one chunk carrying CNAME.
pub fn rtcp_sdes_cname(ssrc: u32, cname: &str) -> Vec<u8> {
    let name = cname.as_bytes();
    let name = name.get(..name.len().min(255)).unwrap_or(name);
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.push(1);
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    b.push(0); // end of item list
    while b.len() % 4 != 0 {
        b.push(0);
    }
    let mut out = Vec::new();
    rtcp_header(&mut out, 1, 202, b.len());
    out.extend_from_slice(&b);
    out
}

/// BYE for one SSRC with an optional reason.
pub fn rtcp_bye(ssrc: u32, reason: Option<&str>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(r) = reason {
        let r = r.as_bytes();
        let r = r.get(..r.len().min(255)).unwrap_or(r);
        b.push(r.len() as u8);
        b.extend_from_slice(r);
        while b.len() % 4 != 0 {
            b.push(0);
        }
    }
    let mut out = Vec::new();
    rtcp_header(&mut out, 1, 203, b.len());
    out.extend_from_slice(&b);
    out
}

/// Reception statistics of `pkts` (one SSRC, arrival order) up to time `t`, as an RTCP
/// receiver computes them: (highest extended seq, cumulative lost, received).
pub fn reception_at(pkts: &[MediaPkt], ssrc: u32, t: i64) -> Option<(u32, i32, u32)> {
    let mut first: Option<i64> = None;
    let mut max_ext = 0i64;
    let mut last = 0u16;
    let mut cycles = 0i64;
    let mut n = 0u32;
    for p in pkts.iter().filter(|p| p.ssrc == ssrc && p.ns <= t) {
        let ext = match first {
            None => {
                first = Some(i64::from(p.seq));
                i64::from(p.seq)
            }
            Some(_) => {
                let e =
                    cycles * 65536 + i64::from(last) + i64::from(p.seq.wrapping_sub(last) as i16);
                cycles = e.div_euclid(65536);
                e
            }
        };
        last = p.seq;
        max_ext = max_ext.max(ext);
        n += 1;
    }
    let f = first?;
    let expected = max_ext - f + 1;
    let lost = (expected - i64::from(n)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    Some((u32::try_from(max_ext.max(0)).unwrap_or(u32::MAX), lost, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(p: &[MediaPkt]) -> Vec<u16> {
        p.iter().map(|x| x.seq).collect()
    }

    #[test]
    fn clean_stream() {
        let s = RtpSpec::pcmu(0x1111, 100, 1_000_000_000, 50, 1);
        let (p, t) = generate(&s);
        assert_eq!(p.len(), 50);
        assert_eq!(p[0].bytes[1], 0x80, "marker on first packet, PT 0");
        assert_eq!(p[1].bytes[1], 0x00);
        assert_eq!(p[0].bytes.len(), 172);
        assert_eq!(p[1].ns - p[0].ns, 20_000_000);
        let ts0 = u32::from_be_bytes([p[0].bytes[4], p[0].bytes[5], p[0].bytes[6], p[0].bytes[7]]);
        let ts1 = u32::from_be_bytes([p[1].bytes[4], p[1].bytes[5], p[1].bytes[6], p[1].bytes[7]]);
        assert_eq!(ts1.wrapping_sub(ts0), 160);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].packets, t[0].lost, t[0].sequence_errors), (50, 0, 0));
    }

    #[test]
    fn drop_delay_duplicate() {
        let mut s = RtpSpec::pcmu(0x2222, 1000, 0, 100, 2);
        s.impair.drop_seqs = vec![1010, 1011, 1050];
        s.impair.delays = vec![(1020, 60)];
        s.impair.duplicate_seqs = vec![1030];
        let (p, t) = generate(&s);
        assert_eq!(p.len(), 100 - 3 + 1);
        let sq = seqs(&p);
        let pos = |x: u16| sq.iter().position(|&s| s == x).unwrap();
        assert!(
            pos(1020) > pos(1022),
            "delayed packet arrives after later ones"
        );
        assert!(!sq.contains(&1010));
        // gaps at 1010-11 and 1050: 2; delayed 1020: one gap + one late: 2; dup: 1
        assert_eq!(t[0].sequence_errors, 5);
        assert_eq!(t[0].packets, 98);
        assert_eq!(t[0].lost, 2);
        assert_eq!(t[0].duplicates, 1);
    }

    #[test]
    fn sequence_wrap_is_not_loss() {
        let s = RtpSpec::pcmu(3, 65530, 0, 20, 3);
        let (p, t) = generate(&s);
        assert_eq!(p[6].seq, 0);
        assert_eq!((t[0].lost, t[0].sequence_errors), (0, 0));
    }

    #[test]
    fn ssrc_change_makes_two_streams() {
        let mut s = RtpSpec::pcmu(5, 10, 0, 30, 4);
        s.ssrc_change = Some((10, 6));
        let (p, t) = generate(&s);
        assert_eq!(p.len(), 30);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].ssrc, t[0].packets), (5, 10));
        assert_eq!((t[1].ssrc, t[1].packets, t[1].lost), (6, 20, 0));
        assert_eq!(p[10].bytes[1] & 0x80, 0x80, "marker at restart");
    }

    #[test]
    fn dtmf_events_with_end_retransmissions() {
        let mut s = RtpSpec::pcmu(7, 0, 0, 40, 5);
        s.dtmf = vec![DtmfEvent {
            digit: '5',
            start_slot: 5,
            slots: 4,
        }];
        let (p, t) = generate(&s);
        let ev: Vec<&MediaPkt> = p.iter().filter(|x| x.bytes[1] & 0x7F == 101).collect();
        assert_eq!(ev.len(), 6);
        assert_eq!(ev[0].bytes[12], 5);
        assert_eq!(ev[0].bytes[1] & 0x80, 0x80);
        let ends = ev.iter().filter(|x| x.bytes[13] & 0x80 != 0).count();
        assert_eq!(ends, 3, "final packet sent three times");
        let ts: Vec<&[u8]> = ev.iter().map(|x| &x.bytes[4..8]).collect();
        assert!(
            ts.iter().all(|t| *t == ts[0]),
            "one timestamp for the whole event"
        );
        assert_eq!(t[0].dtmf, vec!['5']);
        assert_eq!(t[0].lost, 0);
        assert_eq!(p.len(), 40);
    }

    #[test]
    fn comfort_noise_skips_slots() {
        let mut s = RtpSpec::pcmu(8, 0, 0, 30, 6);
        s.comfort_noise = vec![(10, 10)];
        let (p, t) = generate(&s);
        assert_eq!(p.len(), 21);
        assert_eq!(p[10].bytes[1] & 0x7F, 13);
        assert_eq!(p[11].bytes[1], 0x80, "marker after silence");
        assert_eq!(t[0].lost, 0);
    }

    #[test]
    fn random_loss_and_jitter_are_seeded() {
        let mut s = RtpSpec::pcmu(9, 0, 0, 500, 7);
        s.impair.loss_ratio = 0.05;
        s.impair.jitter_ms = 5.0;
        let a = generate(&s);
        let b = generate(&s);
        assert_eq!(a, b);
        assert!(a.0.len() < 500 && a.0.len() > 440);
        // jitter below the interval never reorders
        assert!(
            a.0.windows(2)
                .all(|w| w[0].seq.wrapping_sub(w[1].seq) > 0x8000)
        );
    }

    #[test]
    fn rtcp_layouts() {
        let rb = ReportBlock {
            ssrc: 2,
            fraction_lost: 3,
            cumulative_lost: -1,
            highest_seq: 100,
            jitter: 5,
            lsr: 6,
            dlsr: 7,
        };
        let sr = rtcp_sr(1, ntp_from_ns(0), 9, 10, 11, &[rb]);
        assert_eq!(sr.len(), 52);
        assert_eq!(sr[0], 0x81);
        assert_eq!(sr[1], 200);
        assert_eq!(u16::from_be_bytes([sr[2], sr[3]]), 12);
        assert_eq!(&sr[32..36], &[3, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            u32::from_be_bytes([sr[8], sr[9], sr[10], sr[11]]),
            2_208_988_800
        );
        let rr = rtcp_rr(1, &[]);
        assert_eq!(rr, vec![0x80, 201, 0, 1, 0, 0, 0, 1]);
        let sd = rtcp_sdes_cname(1, "a@b");
        assert_eq!(sd.len() % 4, 0);
        assert_eq!(
            u16::from_be_bytes([sd[2], sd[3]]) as usize,
            sd.len() / 4 - 1
        );
        let bye = rtcp_bye(1, Some("done"));
        assert_eq!(bye.len() % 4, 0);
        assert_eq!(bye[1], 203);
    }

    #[test]
    fn reception_counts_loss() {
        let mut s = RtpSpec::pcmu(1, 10, 0, 20, 8);
        s.impair.drop_seqs = vec![12];
        let (p, _) = generate(&s);
        let (hi, lost, n) = reception_at(&p, 1, i64::MAX).unwrap();
        assert_eq!((hi, lost, n), (29, 1, 19));
        assert!(reception_at(&p, 99, i64::MAX).is_none());
    }
}
