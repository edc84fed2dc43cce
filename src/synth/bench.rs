//! The benchmark capture generator: many concurrent G.711 calls (both directions, 20 ms,
//! configurable loss and jitter), RTCP every few seconds, a share of failed calls
//! (486/404/503), registrations with digest challenges and refreshes, OPTIONS keepalives,
//! and NATed callers — streamed to any `Write` as a classic pcap in time order.
//!
//! Streaming works in time windows: SIP of a call is rendered by the ordinary scenario
//! code when the call starts and held until its time comes; RTP is computed per window
//! from stateless hashes of (seed, call, direction, slot), so nothing proportional to the
//! capture length is kept in memory and the output depends only on the parameters.

use super::builder::{Packet, PcapOptions, PcapWriter};
use super::media;
use super::packet::{self, mac_for};
use super::scenario::{
    CallScenario, Endpoint, LinkKind, MediaFlow, Nat, Outcome, RegisterScenario, Truth, Wire,
};
use super::siptext::PCMU;
use super::{mix64, unit_f64};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchParams {
    pub seed: u64,
    pub calls: u32,
    /// Calls in progress at once (steady state); calls start evenly spread.
    pub concurrency: u32,
    /// Call length from INVITE to BYE, seconds.
    pub call_duration_s: u32,
    /// Per-packet RTP loss probability.
    pub loss: f64,
    /// Maximum extra arrival delay per RTP packet (ms, below 20 keeps order).
    pub jitter_ms: f64,
    pub rtcp_interval_s: u32,
    /// Share of calls rejected with 486, 404 or 503.
    pub failed_ratio: f64,
    /// Share of callers behind NAT (private SDP/Via, public wire addresses).
    pub nat_ratio: f64,
    /// User agents that register (401 challenge, refresh every `register_refresh_s`).
    pub registrations: u32,
    pub register_refresh_s: u32,
    /// OPTIONS keepalive interval of each registered UA (0 = none).
    pub options_interval_s: u32,
    /// Phones the calls come from, in turn (0 = a new phone, with its own addresses, for
    /// every call). A gateway serves a fixed population: with one, the state kept per
    /// source address (signalling activity, the request summary by source) stops growing
    /// with the number of calls. Must exceed the calls up at once, or one phone would be
    /// in two calls on the same ports.
    pub callers: u32,
    pub start_ns: i64,
}

impl Default for BenchParams {
    fn default() -> Self {
        BenchParams {
            seed: 1,
            calls: 100,
            concurrency: 20,
            call_duration_s: 30,
            loss: 0.005,
            jitter_ms: 3.0,
            rtcp_interval_s: 5,
            failed_ratio: 0.05,
            nat_ratio: 0.2,
            registrations: 20,
            register_refresh_s: 60,
            options_interval_s: 30,
            callers: 0,
            start_ns: super::fixture::EPOCH_NS,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BenchStats {
    pub packets: u64,
    /// Bytes of packet data (without pcap headers).
    pub bytes: u64,
    pub calls: u32,
    pub failed_calls: u32,
    pub nat_calls: u32,
    pub rtp_packets: u64,
    pub rtp_lost: u64,
    pub rtcp_packets: u64,
    pub sip_messages: u64,
    pub sip_resent: u64,
    pub registrations: u32,
    /// RTP streams (two per answered call).
    pub streams: u64,
    /// Capture time from first to last frame window (ns).
    pub span_ns: i64,
}

const MS: i64 = 1_000_000;
const WINDOW_NS: i64 = 200 * MS;

#[derive(Debug, Clone)]
struct CallInfo {
    start: i64,
    failed: Option<u16>,
    caller: Endpoint,
    callee: Endpoint,
    ssrc: [u32; 2],
    seq0: [u16; 2],
    ts0: [u32; 2],
    media_start: i64,
    slots: u32,
}

fn key(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    mix64(seed ^ mix64(a ^ mix64(b.wrapping_mul(0x9E37) ^ mix64(c))))
}

fn call_info(p: &BenchParams, i: u32) -> CallInfo {
    let dur = i64::from(p.call_duration_s.max(2)) * 1000 * MS;
    let spacing = dur / i64::from(p.concurrency.max(1));
    let h = key(p.seed, 1, u64::from(i), 0);
    let start = p.start_ns + i64::from(i) * spacing + (h % 1000) as i64 * 1000;
    let failed = if unit_f64(h ^ 0xF) < p.failed_ratio {
        Some([486u16, 404, 503][(h >> 20) as usize % 3])
    } else {
        None
    };
    let n = match p.callers {
        0 => i + 1,
        pop => i % pop + 1,
    };
    let private = IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8));
    let mut caller = Endpoint::new(
        &format!("u{n}"),
        "bench.example",
        private,
        20000 + (n % 20000) as u16 * 2,
    );
    // A phone is behind NAT or not for all its calls.
    let nat_h = match p.callers {
        0 => h,
        _ => key(p.seed, 9, u64::from(n), 0),
    };
    if unit_f64(nat_h ^ 0x1A7) < p.nat_ratio {
        let public = IpAddr::V4(Ipv4Addr::new(
            100,
            64 + ((n >> 16) & 63) as u8,
            (n >> 8) as u8,
            n as u8,
        ));
        caller.nat = Some(Nat {
            private_ip: private,
            private_sip_port: 5060,
            private_rtp_port: caller.rtp_port,
        });
        caller.ip = public;
        caller.sip_port = 30000 + (n % 30000) as u16;
        caller.rtp_port = caller.rtp_port.wrapping_add(1000);
    }
    let callee = Endpoint::new(
        &format!("d{n}"),
        "bench.example",
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + (n % 200) as u8)),
        40000 + (n % 12000) as u16 * 2,
    );
    let ring_ms = 500 + (h >> 32) % 1500;
    let media_start = start + ring_ms as i64 * MS + 30 * MS;
    let talk_ms = (dur / MS - ring_ms as i64 - 100).max(100);
    let h2 = key(p.seed, 2, u64::from(i), 0);
    CallInfo {
        start,
        failed,
        caller,
        callee,
        ssrc: [h2 as u32 | 1, (h2 >> 32) as u32 | 2],
        seq0: [(h2 >> 7) as u16 & 0x7FFF, (h2 >> 41) as u16 & 0x7FFF],
        ts0: [(h2 >> 3) as u32, (h2 >> 29) as u32],
        media_start,
        slots: (talk_ms / 20) as u32,
    }
}

fn sip_of(p: &BenchParams, i: u32, c: &CallInfo, truth: &mut Truth) -> Vec<Packet> {
    let mut s = CallScenario::new(
        &format!("bench-{i}@{}", c.caller.adv_sip().ip()),
        p.seed ^ u64::from(i),
        c.start,
        c.caller.clone(),
        c.callee.clone(),
    );
    s.media = MediaFlow::None;
    let ring = (c.media_start - c.start) / MS - 30;
    s.ring_ms = ring.max(0) as u32;
    s.talk_ms = c.slots * 20;
    s.outcome = match c.failed {
        Some(code) => Outcome::Rejected {
            code,
            reason: super::siptext::reason_phrase(code).to_string(),
        },
        None => Outcome::Answered {
            bye_from_callee: i.is_multiple_of(3),
        },
    };
    let mut w = Wire::new(LinkKind::Ethernet { vlans: Vec::new() });
    s.emit(&mut w, truth);
    w.finish()
}

/// Writes the benchmark capture (microsecond pcap, Ethernet) to `w`.
pub fn bench_capture<W: Write>(w: W, p: &BenchParams) -> io::Result<BenchStats> {
    let mut out = PcapWriter::new(BufWriter::with_capacity(1 << 20, w), PcapOptions::default())?;
    let mut st = BenchStats {
        calls: p.calls,
        registrations: p.registrations,
        ..Default::default()
    };
    let mut truth = Truth::default();
    let mut pending: Vec<Packet> = Vec::new();

    // registrations run across the whole capture; their SIP is small, render it up front
    let dur_ns = i64::from(p.call_duration_s.max(2)) * 1000 * MS;
    let spacing = dur_ns / i64::from(p.concurrency.max(1));
    let end_ns = p.start_ns + i64::from(p.calls) * spacing + dur_ns + 2000 * MS;
    let span_s = ((end_ns - p.start_ns) / (1000 * MS)).max(1) as u32;
    for r in 0..p.registrations {
        let n = r + 1;
        let ip = IpAddr::V4(Ipv4Addr::new(
            172,
            16 + ((n >> 16) & 15) as u8,
            (n >> 8) as u8,
            n as u8,
        ));
        let ua = Endpoint::new(&format!("r{n}"), "bench.example", ip, 0);
        let off = (key(p.seed, 3, u64::from(r), 0) % 10_000) as i64 * MS;
        let mut rs = RegisterScenario::new(
            p.seed ^ 0x4E6 ^ u64::from(r),
            p.start_ns + off,
            ua,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 5060),
        );
        let refresh = p.register_refresh_s.max(1);
        rs.refresh_ms = refresh * 1000;
        rs.granted = refresh * 2;
        rs.refreshes = span_s / refresh;
        rs.options = refresh
            .checked_div(p.options_interval_s)
            .map_or(0, |n| n.saturating_sub(1));
        let mut wire = Wire::new(LinkKind::Ethernet { vlans: Vec::new() });
        rs.emit(&mut wire, &mut truth);
        pending.extend(wire.finish());
    }

    let mut arena: Vec<u8> = Vec::with_capacity(1 << 22);
    let mut items: Vec<(i64, u32, u32)> = Vec::new(); // (ts, offset, len)
    let mut active: std::collections::VecDeque<(u32, CallInfo, [u64; 2])> =
        std::collections::VecDeque::new();
    let mut next_call = 0u32;
    let mut ident: u16 = 1;
    let jit_ns = (p.jitter_ms.max(0.0) * 1e6) as i64;
    let rtcp_iv = i64::from(p.rtcp_interval_s.max(1)) * 1000 * MS;
    let mut win = p.start_ns;
    let mut iterations = 0u64;
    while win < end_ns && iterations < 100_000_000 {
        iterations += 1;
        let win_end = win + WINDOW_NS;
        // calls starting in this window: render their SIP, keep them for media
        while next_call < p.calls {
            let c = call_info(p, next_call);
            if c.start >= win_end {
                break;
            }
            pending.extend(sip_of(p, next_call, &c, &mut truth));
            if c.failed.is_some() {
                st.failed_calls += 1;
            } else {
                st.streams += 2;
            }
            if c.caller.nat.is_some() {
                st.nat_calls += 1;
            }
            active.push_back((next_call, c, [0, 0]));
            next_call += 1;
        }
        arena.clear();
        items.clear();
        // SIP due in this window
        let mut k = 0;
        while k < pending.len() {
            if pending.get(k).is_some_and(|x| x.ts_ns < win_end) {
                let pk = pending.swap_remove(k);
                items.push((pk.ts_ns, arena.len() as u32, pk.data.len() as u32));
                arena.extend_from_slice(&pk.data);
            } else {
                k += 1;
            }
        }
        // media of active answered calls
        for (i, c, lost) in active.iter_mut() {
            if c.failed.is_some() {
                continue;
            }
            for dir in 0..2usize {
                let (src, dst) = if dir == 0 {
                    (c.caller.wire_rtp(), c.callee.wire_rtp())
                } else {
                    (c.callee.wire_rtp(), c.caller.wire_rtp())
                };
                let (IpAddr::V4(s4), IpAddr::V4(d4)) = (src.ip(), dst.ip()) else {
                    continue;
                };
                let t0 = c.media_start + dir as i64 * 300_000;
                let first = ((win - jit_ns - t0) / (20 * MS) - 1).max(0);
                let last = ((win_end - t0) / (20 * MS) + 1).min(i64::from(c.slots));
                for slot in first..last {
                    let nominal = t0 + slot * 20 * MS;
                    let hk = key(p.seed, u64::from(*i), dir as u64, slot as u64);
                    let arrival = nominal + (unit_f64(hk) * jit_ns as f64) as i64;
                    if arrival < win || arrival >= win_end {
                        continue;
                    }
                    if unit_f64(hk ^ 0x1055) < p.loss {
                        if let Some(l) = lost.get_mut(dir) {
                            *l += 1;
                        }
                        st.rtp_lost += 1;
                        continue;
                    }
                    let seq = c.seq0[dir].wrapping_add(slot as u16);
                    let ts = c.ts0[dir].wrapping_add(slot as u32 * 160);
                    ident = ident.wrapping_add(1);
                    let off = arena.len();
                    rtp_frame(
                        &mut arena,
                        (s4, src.port()),
                        (d4, dst.port()),
                        ident,
                        slot == 0,
                        seq,
                        ts,
                        c.ssrc[dir],
                    );
                    items.push((arrival, off as u32, (arena.len() - off) as u32));
                    st.rtp_packets += 1;
                }
                // RTCP (SR + SDES) at media_start + n·interval inside this window
                let mut n = ((win - t0) / rtcp_iv).max(1);
                let mut guard = 0;
                while guard < 64 {
                    guard += 1;
                    let t = t0 + n * rtcp_iv + 5 * MS;
                    if t >= win_end || t > t0 + i64::from(c.slots) * 20 * MS {
                        break;
                    }
                    if t >= win {
                        let sent = ((t - t0) / (20 * MS)) as u32;
                        let peer_lost = lost.get(1 - dir).copied().unwrap_or(0);
                        let block = media::ReportBlock {
                            ssrc: c.ssrc[1 - dir],
                            cumulative_lost: peer_lost.min(0x7F_FFFF) as i32,
                            highest_seq: u32::from(c.seq0[1 - dir]) + sent,
                            jitter: (p.jitter_ms / 3.0 * 8.0) as u32,
                            ..Default::default()
                        };
                        let mut pl = media::rtcp_sr(
                            c.ssrc[dir],
                            media::ntp_from_ns(t),
                            c.ts0[dir].wrapping_add(sent * 160),
                            sent,
                            sent * 160,
                            &[block],
                        );
                        pl.extend(media::rtcp_sdes_cname(c.ssrc[dir], "bench"));
                        let s1 = SocketAddr::new(src.ip(), src.port().wrapping_add(1));
                        let d1 = SocketAddr::new(dst.ip(), dst.port().wrapping_add(1));
                        ident = ident.wrapping_add(1);
                        let ipp =
                            packet::udp_ip(s1.ip(), s1.port(), d1.ip(), d1.port(), ident, &pl);
                        let off = arena.len();
                        LinkKind::Ethernet { vlans: Vec::new() }
                            .link(s1.ip(), d1.ip())
                            .wrap_into(&ipp, &mut arena);
                        items.push((t, off as u32, (arena.len() - off) as u32));
                        st.rtcp_packets += 1;
                    }
                    n += 1;
                }
            }
        }
        // retire calls whose media and SIP are over
        while let Some(front) = active.front() {
            let c = &front.1;
            if c.media_start + i64::from(c.slots) * 20 * MS + 5000 * MS < win {
                active.pop_front();
            } else {
                break;
            }
        }
        items.sort_unstable_by_key(|x| (x.0, x.1));
        for &(ts, off, len) in &items {
            let (o, l) = (off as usize, len as usize);
            if let Some(d) = arena.get(o..o + l) {
                out.write_packet(ts, d)?;
                st.packets += 1;
                st.bytes += l as u64;
            }
        }
        win = win_end;
        if next_call >= p.calls && active.is_empty() && pending.is_empty() {
            break;
        }
    }
    // anything still pending (registrations beyond the last call) goes out in order
    pending.sort_by_key(|x| x.ts_ns);
    for pk in &pending {
        out.write_packet(pk.ts_ns, &pk.data)?;
        st.packets += 1;
        st.bytes += pk.data.len() as u64;
    }
    st.sip_messages = u64::from(truth.sip_messages);
    st.sip_resent = u64::from(truth.sip_resent);
    st.span_ns = win - p.start_ns;
    let mut bw = out.finish()?;
    bw.flush()?;
    Ok(st)
}

/// Ethernet + IPv4 + UDP + RTP (PCMU, 160 bytes of silence) with both checksums, written
/// straight into `out` (the hot path of the generator: no per-packet allocation).
#[allow(clippy::too_many_arguments)]
fn rtp_frame(
    out: &mut Vec<u8>,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ident: u16,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
) {
    let start = out.len();
    out.extend_from_slice(&mac_for(IpAddr::V4(dst.0)));
    out.extend_from_slice(&mac_for(IpAddr::V4(src.0)));
    out.extend_from_slice(&[0x08, 0x00]);
    let ip_at = out.len();
    let udp_len: u16 = 8 + 12 + 160;
    let total: u16 = 20 + udp_len;
    out.extend_from_slice(&[0x45, 0xB8]); // DSCP EF, as phones mark voice
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&[0x40, 0x00, 64, packet::PROTO_UDP, 0, 0]);
    out.extend_from_slice(&src.0.octets());
    out.extend_from_slice(&dst.0.octets());
    let hc = packet::internet_checksum(out.get(ip_at..ip_at + 20).unwrap_or(&[]));
    if let Some(c) = out.get_mut(ip_at + 10..ip_at + 12) {
        c.copy_from_slice(&hc.to_be_bytes());
    }
    let udp_at = out.len();
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.push(0x80);
    out.push(u8::from(marker) << 7 | PCMU.pt);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.resize(out.len() + 160, PCMU.fill);
    let mut acc = packet::sum16(&src.0.octets(), 0);
    acc = packet::sum16(&dst.0.octets(), acc);
    acc += u32::from(packet::PROTO_UDP) + u32::from(udp_len);
    let mut c = packet::fold(packet::sum16(out.get(udp_at..).unwrap_or(&[]), acc));
    if c == 0 {
        c = 0xFFFF;
    }
    if let Some(x) = out.get_mut(udp_at + 6..udp_at + 8) {
        x.copy_from_slice(&c.to_be_bytes());
    }
    debug_assert_eq!(out.len() - start, 14 + usize::from(total));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> BenchParams {
        BenchParams {
            calls: 12,
            concurrency: 4,
            call_duration_s: 6,
            registrations: 3,
            register_refresh_s: 20,
            options_interval_s: 10,
            ..Default::default()
        }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let sa = bench_capture(&mut a, &small()).unwrap();
        let sb = bench_capture(&mut b, &small()).unwrap();
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let mut c = Vec::new();
        bench_capture(&mut c, &BenchParams { seed: 2, ..small() }).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn output_is_time_ordered_and_counts_match() {
        let mut v = Vec::new();
        let st = bench_capture(&mut v, &small()).unwrap();
        let (mut rest, _) = pcap_parser::parse_pcap_header(&v).unwrap();
        let mut n = 0u64;
        let mut last = 0u64;
        let mut rtp = 0u64;
        while !rest.is_empty() {
            let (r, b) = pcap_parser::pcap::parse_pcap_frame(rest).unwrap();
            let t = u64::from(b.ts_sec) * 1_000_000 + u64::from(b.ts_usec);
            assert!(t >= last, "frames in time order");
            last = t;
            if b.data.len() == 214 && b.data.get(42) == Some(&0x80) {
                rtp += 1;
                // IPv4 header checksum verifies
                assert_eq!(packet::internet_checksum(&b.data[14..34]), 0);
            }
            n += 1;
            rest = r;
        }
        assert_eq!(n, st.packets);
        assert_eq!(rtp, st.rtp_packets);
        assert!(st.sip_messages > 12 * 5);
        assert_eq!(st.streams, 2 * u64::from(12 - st.failed_calls));
        // 6 s calls, ~4.5 s of talk each way at 50 packets/s, minus loss
        assert!(st.rtp_packets > st.streams * 150, "{st:?}");
    }

    #[test]
    fn rtp_frame_checksums() {
        let mut v = Vec::new();
        rtp_frame(
            &mut v,
            (Ipv4Addr::new(10, 0, 0, 1), 4000),
            (Ipv4Addr::new(10, 0, 0, 2), 5000),
            7,
            true,
            1,
            2,
            3,
        );
        assert_eq!(v.len(), 214);
        let s = etherparse::SlicedPacket::from_ethernet(&v).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = s.transport else {
            panic!()
        };
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let want = packet::udp(
            ip,
            4000,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            5000,
            u.payload(),
        );
        assert_eq!(&v[34..], &want[..]);
    }
}

#[cfg(test)]
mod perf {
    use super::*;

    /// `cargo test --release --lib synth::bench::perf -- --ignored --nocapture`
    /// (SIPSCOPE_BENCH_OUT=/path.pcap also keeps a small capture for tshark).
    #[test]
    #[ignore]
    fn throughput() {
        if let Ok(path) = std::env::var("SIPSCOPE_BENCH_OUT") {
            let f = std::fs::File::create(&path).unwrap();
            let st = bench_capture(
                f,
                &BenchParams {
                    calls: 40,
                    concurrency: 10,
                    call_duration_s: 12,
                    ..Default::default()
                },
            )
            .unwrap();
            eprintln!("wrote {path}: {st:?}");
        }
        let p = BenchParams {
            calls: 2000,
            concurrency: 500,
            call_duration_s: 60,
            ..Default::default()
        };
        let t = std::time::Instant::now();
        let st = bench_capture(io::sink(), &p).unwrap();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{} packets, {} MB in {secs:.2} s: {:.2} M packets/s ({st:?})",
            st.packets,
            st.bytes / 1_000_000,
            st.packets as f64 / secs / 1e6
        );
    }
}
