//! Hostile captures, end to end: truncated files, files that are not captures, malformed
//! and abusive traffic built with the project's capture builder, floods against small
//! table caps, terminal-escape and secret-leak checks on the rendered output, and
//! linear-time checks on worst-case input.
//!
//! Every capture is generated deterministically in the test (no network, no clock), every
//! loop is bounded, and each test stays within a few seconds in a debug build. The
//! invariant checked everywhere: analysis never panics and the accounting categories sum
//! exactly to the number of frames read.

#![forbid(unsafe_code)]

use sipscope::capture::linktype;
use sipscope::correlate::Analysis;
use sipscope::engine::{Config, EngineError, analyze_paths};
use sipscope::sip::state::CallState;
use sipscope::synth::builder::{
    Endian, FileFormat, Packet, PcapOptions, PcapngInterface, PcapngWriter, write_capture,
};
use sipscope::synth::media;
use sipscope::synth::packet::{self, Ipv4Hdr, Link, tcpflags};
use sipscope::synth::scenario::{CallScenario, Endpoint, LinkKind, Truth, Wire};
use sipscope::synth::siptext::{NameAddr, PCMU, Sdp, SdpMedia, SipMsg, Via};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const T0: i64 = 1_704_067_200 * 1_000_000_000;
const MS: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A temp file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("sipscope-hostile-{}-{tag}-{n}", std::process::id()));
        std::fs::write(&p, bytes).expect("write temp capture");
        TempFile(p)
    }
    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn cfg() -> Config {
    Config {
        threads: 1,
        ..Config::default()
    }
}

fn analyze_with(bytes: &[u8], c: &Config) -> Result<Analysis, EngineError> {
    let f = TempFile::new("cap", bytes);
    analyze_paths(&[f.path()], c, None)
}

fn analyze(bytes: &[u8]) -> Analysis {
    let a = analyze_with(bytes, &cfg()).expect("capture analyses");
    assert_accounted(&a);
    a
}

/// The invariant of every analysis: every frame lands in exactly one category.
fn assert_accounted(a: &Analysis) {
    let acc = &a.capture.accounting;
    assert_eq!(acc.total(), acc.frames, "accounting does not sum: {acc:?}");
    let read: u64 = a.capture.files.iter().map(|f| f.frames).sum();
    assert_eq!(acc.frames, read, "accounting frames vs frames read");
}

fn pcap(link: u32, packets: &[Packet]) -> Vec<u8> {
    write_capture(
        &FileFormat::Pcap(PcapOptions {
            linktype: link,
            ..PcapOptions::default()
        }),
        packets,
    )
    .expect("pcap")
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

fn alice() -> Endpoint {
    Endpoint::new("alice", "example.com", v4(10, 0, 0, 10), 40000)
}

fn bob() -> Endpoint {
    Endpoint::new("bob", "example.net", v4(203, 0, 113, 5), 50000)
}

/// Emit one ordinary answered call (UDP, PCMU both ways) starting at `start_ns`.
fn legit_call(w: &mut Wire, call_id: &str, seed: u64, start_ns: i64, talk_ms: u32) {
    let mut c = CallScenario::new(call_id, seed, start_ns, alice(), bob());
    c.ring_ms = 500;
    c.talk_ms = talk_ms;
    let mut t = Truth::default();
    c.emit(w, &mut t);
}

fn call<'a>(a: &'a Analysis, call_id: &str) -> &'a sipscope::correlate::Call {
    let found: Vec<_> = a
        .calls
        .iter()
        .filter(|c| c.sip.call_id == call_id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "call {call_id} reported {} times",
        found.len()
    );
    found[0]
}

fn assert_completed(a: &Analysis, call_id: &str) {
    let c = call(a, call_id);
    assert_eq!(
        c.sip.state,
        CallState::Completed,
        "{call_id}: {:?}",
        c.sip.state
    );
    assert_eq!(c.sip.final_code, Some(200));
}

fn limit_hit(a: &Analysis, table: &str) -> u64 {
    a.capture
        .limits_hit
        .iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

fn anomalies(a: &Analysis) -> u64 {
    a.capture.anomaly_counts.values().sum::<u64>()
        + a.capture.accounting.malformed.values().sum::<u64>()
}

fn invite(call_id: &str, from_ip: IpAddr, sdp: Option<&str>) -> SipMsg {
    let mut m = SipMsg::request("INVITE", "sip:bob@example.net", call_id, 1);
    m.via.push(Via {
        transport: "UDP".into(),
        sent_by: format!("{from_ip}:5060"),
        branch: format!("z9hG4bK{call_id}"),
        rport: Some(None),
        received: None,
    });
    m.from = NameAddr {
        display: None,
        uri: "sip:alice@example.com".into(),
        tag: Some("ftag1".into()),
    };
    m.to = NameAddr::new("sip:bob@example.net");
    m.contact = Some((format!("sip:alice@{from_ip}:5060"), None));
    match sdp {
        Some(s) => m.with_sdp(s),
        None => m,
    }
}

fn simple_sdp(ip: IpAddr, port: u16) -> String {
    Sdp::new("alice", 7, ip, vec![SdpMedia::audio(port, vec![PCMU])]).render()
}

/// Frame offsets of the records of a classic pcap file (synth writes little-endian).
fn pcap_boundaries(b: &[u8]) -> Vec<usize> {
    let mut out = vec![24];
    let mut off = 24usize;
    while let Some(h) = b.get(off + 8..off + 12) {
        let incl = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        off += 16 + incl;
        if off > b.len() {
            break;
        }
        out.push(off);
    }
    out
}

/// Block offsets of a (little-endian) pcapng file.
fn pcapng_boundaries(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let Some(h) = b.get(off + 4..off + 8) {
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < 12 {
            break;
        }
        off += len;
        if off > b.len() {
            break;
        }
        out.push(off);
    }
    out
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("fixtures").join(name)).expect("committed fixture")
}

// ---------------------------------------------------------------------------------------
// 1. Truncation at every byte offset
// ---------------------------------------------------------------------------------------

/// Cut a pcap at every offset. Before the file header is complete the file is "not a
/// capture" (an error, never a panic); after it, the analysis is partial: exactly the
/// complete records are analysed, and `truncated` is set iff the cut is mid-record.
fn truncate_pcap_everywhere(name: &str) {
    let whole = fixture(name);
    let bounds = pcap_boundaries(&whole);
    assert_eq!(
        *bounds.last().unwrap(),
        whole.len(),
        "{name}: parse of the fixture"
    );
    let c = cfg();
    let started = Instant::now();
    for cut in 0..=whole.len() {
        let part = &whole[..cut];
        let r = analyze_with(part, &c);
        if cut < 24 {
            assert!(r.is_err(), "{name}: {cut}-byte file accepted");
            continue;
        }
        let a = r.unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
        assert_accounted(&a);
        let complete = bounds.iter().filter(|&&b| b <= cut).count() as u64 - 1;
        let f = &a.capture.files[0];
        assert_eq!(f.frames, complete, "{name} cut at {cut}");
        let on_boundary = bounds.contains(&cut);
        assert_eq!(
            f.truncated.is_some(),
            !on_boundary,
            "{name} cut at {cut}: truncated = {:?}",
            f.truncated
        );
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
    }
}

#[test]
fn truncated_failed_call_at_every_offset() {
    truncate_pcap_everywhere("failed-call.pcap");
}

#[test]
fn truncated_cancelled_call_at_every_offset() {
    truncate_pcap_everywhere("cancelled-call.pcap");
}

#[test]
fn truncated_register_challenge_at_every_offset() {
    truncate_pcap_everywhere("register-challenge.pcap");
}

/// A small two-interface pcapng (SLL + Ethernet, ns resolution, a comment, an ISB) cut at
/// every offset: after the section header, partial results; truncated iff mid-block.
#[test]
fn truncated_pcapng_at_every_offset() {
    let mut w = PcapngWriter::new(Vec::new(), Endian::Little, Some("hostile")).unwrap();
    w.add_interface(PcapngInterface::new(linktype::LINUX_SLL, 9))
        .unwrap();
    w.add_interface(PcapngInterface::new(linktype::ETHERNET, 6))
        .unwrap();
    let inv = invite("trunc-ng", v4(10, 0, 0, 10), None).render();
    let ip = packet::udp_ip(v4(10, 0, 0, 10), 5060, v4(203, 0, 113, 5), 5060, 1, &inv);
    let sll = Link::Sll {
        pkttype: 0,
        addr: [2, 0, 0, 0, 0, 1],
    };
    let eth = Link::Ethernet {
        src: [2; 6],
        dst: [4; 6],
        vlans: vec![],
    };
    w.write_packet(0, T0, &sll.wrap(&ip), None, Some("the INVITE"))
        .unwrap();
    for i in 0..4u16 {
        let rtp = media::rtp_packet(false, 0, i, u32::from(i) * 160, 0x55, &[0xFF; 40]);
        let ipr = packet::udp_ip(v4(10, 0, 0, 10), 40000, v4(203, 0, 113, 5), 50000, i, &rtp);
        w.write_packet(1, T0 + i64::from(i) * 20 * MS, &eth.wrap(&ipr), None, None)
            .unwrap();
    }
    w.write_stats(1, T0 + 100 * MS, Some(7), Some(3)).unwrap();
    let whole = w.finish().unwrap();
    let bounds = pcapng_boundaries(&whole);
    assert_eq!(*bounds.last().unwrap(), whole.len());
    // Blocks: SHB, IDB, IDB, 5 EPB, ISB. Frames complete after block k: EPBs among them.
    let shb_end = bounds[0];
    let c = cfg();
    for cut in 0..=whole.len() {
        let r = analyze_with(&whole[..cut], &c);
        if cut < shb_end {
            // A cut section header: an error or an empty analysis, never a panic.
            if let Ok(a) = r {
                assert_accounted(&a);
                assert_eq!(a.capture.accounting.frames, 0);
            }
            continue;
        }
        let a = r.unwrap_or_else(|e| panic!("pcapng cut at {cut}: {e}"));
        assert_accounted(&a);
        let blocks_done = bounds.iter().filter(|&&b| b <= cut).count();
        let frames = blocks_done.saturating_sub(3).min(5) as u64;
        let f = &a.capture.files[0];
        assert_eq!(f.frames, frames, "pcapng cut at {cut}");
        assert_eq!(f.truncated.is_some(), !bounds.contains(&cut), "cut {cut}");
    }
}

/// A gzip capture cut anywhere: an error (header unreadable) or a partial analysis with
/// the damage recorded; the whole file has no truncation.
#[test]
fn truncated_gzip_at_every_offset() {
    let whole = fixture("no-ack.pcap.gz");
    let c = cfg();
    let full = analyze(&whole);
    assert!(full.capture.files[0].truncated.is_none());
    assert!(full.capture.files[0].gzip);
    let n = full.capture.accounting.frames;
    for cut in 0..whole.len() {
        if let Ok(a) = analyze_with(&whole[..cut], &c) {
            assert_accounted(&a);
            let f = &a.capture.files[0];
            assert!(f.frames <= n, "cut {cut}: more frames than the whole file");
            // The gzip trailer (CRC + length) is the last 8 bytes: any cut loses it.
            assert!(
                f.truncated.is_some(),
                "cut {cut} of {} not flagged",
                whole.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Not a capture: the binary exits 2 with one clear line
// ---------------------------------------------------------------------------------------

fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(args)
        .output()
        .expect("run sipscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_rejected(path: &str, what: &str) {
    let (code, stdout, stderr) = run_cli(&["analyze", path]);
    assert_eq!(code, 2, "{what}: exit code (stderr: {stderr})");
    assert!(stdout.is_empty(), "{what}: printed a report: {stdout}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: stderr is not one line: {stderr:?}");
    let name = Path::new(path).file_name().unwrap().to_string_lossy();
    assert!(
        lines[0].contains(&*name),
        "{what}: no file name in {:?}",
        lines[0]
    );
    assert!(lines[0].len() < 400, "{what}: line too long");
    assert!(
        !lines[0].contains("panicked"),
        "{what}: a panic message: {}",
        lines[0]
    );
}

#[test]
fn not_a_capture_exits_2_with_one_line() {
    // Microsoft Network Monitor 1.x: "RTSS", version 1.1, MAC type 1 (Ethernet), a time.
    let mut netmon1 = b"RTSS\x01\x01\x01\x00".to_vec();
    netmon1.extend_from_slice(&[0xE8, 0x07, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    netmon1.resize(128, 0);
    // An ERF record (no file magic): timestamp, type 2 (Ethernet), flags, rlen, lctr, wlen.
    let mut erf = Vec::new();
    erf.extend_from_slice(&0x6592_5e80_0000_0000u64.to_le_bytes());
    erf.extend_from_slice(&[2, 0x04]);
    erf.extend_from_slice(&(16u16 + 2 + 60).to_be_bytes());
    erf.extend_from_slice(&[0, 0]);
    erf.extend_from_slice(&60u16.to_be_bytes());
    erf.extend_from_slice(&[0u8; 62]);
    // Random bytes from a fixed seed (SplitMix64 via the synth PRNG).
    let mut rng = sipscope::synth::Rng::new(0xBAD5EED);
    let random: Vec<u8> = (0..4096).map(|_| rng.next_u32() as u8).collect();
    let text = b"This is not a capture.\nJust some notes about a call.\n".to_vec();
    let cases: [(&str, Vec<u8>); 5] = [
        ("netmon1", netmon1),
        ("erf", erf),
        ("random", random),
        ("text", text),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in &cases {
        let f = TempFile::new(what, bytes);
        assert_rejected(&f.path(), what);
    }
    let dir = std::env::temp_dir().join(format!("sipscope-hostile-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_rejected(&dir.to_string_lossy(), "directory");
    let _ = std::fs::remove_dir(&dir);
}

// ---------------------------------------------------------------------------------------
// 3. Malformed and abusive captures built with the capture builder
// ---------------------------------------------------------------------------------------

#[test]
fn packets_longer_than_snaplen() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "snap-1", 1, T0, 400);
    let pk = w.finish();
    // Cut to 128 bytes: SIP bodies are lost, RTP mostly survives as headers.
    let cut = write_capture(
        &FileFormat::Pcap(PcapOptions {
            snaplen: 128,
            truncate: true,
            ..PcapOptions::default()
        }),
        &pk,
    )
    .unwrap();
    let a = analyze(&cut);
    let f = &a.capture.files[0];
    assert_eq!(f.frames, pk.len() as u64);
    assert!(f.snaplen_cut_frames > 0);
    assert!(f.snaplen_cut_frames <= f.frames);
    // Records longer than the snaplen the header declares (written whole).
    let over = write_capture(
        &FileFormat::Pcap(PcapOptions {
            snaplen: 64,
            truncate: false,
            ..PcapOptions::default()
        }),
        &pk,
    )
    .unwrap();
    let b = analyze(&over);
    assert_eq!(b.capture.accounting.frames, pk.len() as u64);
    assert_completed(&b, "snap-1");
}

#[test]
fn zero_length_packets() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "zero-1", 2, T0, 200);
    let mut pk = w.finish();
    let n_real = pk.len();
    for i in 0..50 {
        let at = (i * 3) % pk.len();
        pk.insert(at, Packet::new(T0 + i as i64, Vec::new()));
    }
    for link in [
        linktype::ETHERNET,
        linktype::RAW,
        linktype::LINUX_SLL2,
        linktype::NULL,
    ] {
        let a = analyze(&pcap(link, &pk));
        assert_eq!(a.capture.accounting.frames, (n_real + 50) as u64);
    }
    let a = analyze(&pcap(linktype::ETHERNET, &pk));
    assert_completed(&a, "zero-1");
    assert!(a.capture.accounting.malformed.values().sum::<u64>() >= 50);
}

#[test]
fn timestamps_going_backwards() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "back-1", 3, T0, 400);
    let mut pk = w.finish();
    // Every 5th frame jumps an hour back, then one jumps before the epoch.
    for (i, p) in pk.iter_mut().enumerate() {
        if i % 5 == 4 {
            p.ts_ns -= 3600 * 1_000_000_000;
        }
    }
    if let Some(p) = pk.get_mut(7) {
        p.ts_ns = -5_000_000_000;
    }
    let a = analyze(&pcap(linktype::ETHERNET, &pk));
    let f = &a.capture.files[0];
    assert!(
        f.ts_backwards >= (pk.len() / 5) as u64,
        "{}",
        f.ts_backwards
    );
    assert_eq!(f.frames, pk.len() as u64);
    assert!(!a.calls.is_empty());
}

#[test]
fn pcapng_interfaces_change_mid_file() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "ng-1", 4, T0, 300);
    let pk = w.finish();
    let mut ng = PcapngWriter::new(Vec::new(), Endian::Big, None).unwrap();
    ng.add_interface(PcapngInterface::new(linktype::ETHERNET, 6))
        .unwrap();
    let third = pk.len() / 3;
    for p in &pk[..third] {
        ng.write_packet(0, p.ts_ns, &p.data, None, None).unwrap();
    }
    // A second interface (raw IP, ns) appears mid-file; frames move to it.
    ng.add_interface(PcapngInterface::new(linktype::RAW, 9))
        .unwrap();
    for p in &pk[third..2 * third] {
        ng.write_packet(1, p.ts_ns, p.data.get(14..).unwrap_or(&[]), None, None)
            .unwrap();
    }
    // A third interface with an unsupported link type.
    ng.add_interface(PcapngInterface::new(147, 6)).unwrap();
    ng.write_packet(2, pk[0].ts_ns, &pk[0].data, None, None)
        .unwrap();
    for p in &pk[2 * third..] {
        ng.write_packet(0, p.ts_ns, &p.data, None, None).unwrap();
    }
    // Last, a packet on an interface that was never declared: damage, reading stops there.
    ng.write_packet(9, pk[0].ts_ns, &pk[0].data, None, None)
        .unwrap();
    let bytes = ng.finish().unwrap();
    let a = analyze(&bytes);
    let f = &a.capture.files[0];
    assert_eq!(f.link_types, vec![linktype::ETHERNET, linktype::RAW, 147]);
    assert_eq!(f.frames, pk.len() as u64 + 1);
    let t = f.truncated.as_ref().expect("undeclared interface reported");
    assert_eq!(t.after_frame, f.frames);
    assert_eq!(a.capture.accounting.unsupported_link, 1);
    assert_completed(&a, "ng-1");
}

#[test]
fn absurd_header_lengths() {
    let inv = invite("absurd-1", v4(10, 0, 0, 10), None).render();
    let good = Link::Raw.wrap(&packet::udp_ip(
        v4(10, 0, 0, 10),
        5060,
        v4(10, 0, 0, 20),
        5060,
        9,
        &inv,
    ));
    let mut frames: Vec<Vec<u8>> = Vec::new();
    // IPv4: IHL 15 on a short packet, total length 65535, total length < header, IHL < 5.
    for (byte, val) in [(0usize, 0x4Fu8), (2, 0xFF), (3, 0xFF), (0, 0x43)] {
        let mut f = good.clone();
        f[byte] = val;
        frames.push(f);
    }
    let mut f = good.clone();
    f[2] = 0;
    f[3] = 10;
    frames.push(f);
    // UDP length 0xFFFF and 3 (< header).
    for l in [0xFFFFu16, 3] {
        let mut f = good.clone();
        f[24..26].copy_from_slice(&l.to_be_bytes());
        frames.push(f);
    }
    // TCP with data offset 15 and 0.
    for off in [0xF0u8, 0x00] {
        let mut seg = packet::tcp(
            v4(10, 0, 0, 10),
            5060,
            v4(10, 0, 0, 20),
            5060,
            1,
            0,
            tcpflags::ACK,
            100,
            b"hello",
        );
        seg[12] = off;
        frames.push(packet::ip(v4(10, 0, 0, 10), v4(10, 0, 0, 20), 6, 1, &seg));
    }
    // IPv6 payload length 65535 on a short packet; a chain of 200 hop-by-hop headers.
    let ip6 = packet::ipv6(
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
        17,
        64,
        &packet::udp(v4(0, 0, 0, 0), 1, v4(0, 0, 0, 0), 2, b"x"),
    );
    let mut f = ip6.clone();
    f[4] = 0xFF;
    f[5] = 0xFF;
    frames.push(f);
    let mut chain = Vec::new();
    for _ in 0..200 {
        chain.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    }
    frames.push(packet::ipv6(
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
        0,
        64,
        &chain,
    ));
    // 40 nested IP-in-IP headers.
    let mut nested = good.clone();
    for i in 0..40u16 {
        nested = packet::ipip(v4(1, 1, 1, 1), v4(2, 2, 2, 2), i, &nested);
    }
    frames.push(nested);
    frames.push(good.clone());
    let mut pk: Vec<Packet> = frames
        .into_iter()
        .enumerate()
        .map(|(i, d)| Packet::new(T0 + i as i64 * MS, d))
        .collect();
    let n = pk.len() as u64;
    let a = analyze(&pcap(linktype::RAW, &pk));
    assert_eq!(a.capture.accounting.frames, n);
    assert!(a.capture.accounting.malformed.values().sum::<u64>() >= 5);
    assert!(a.sip_stats.requests.values().sum::<u64>() >= 1);

    // Absurd record lengths in the file itself: incl_len 0xFFFFFFF0 in the middle of a
    // pcap, and a pcapng block length that is not a multiple of 4 / smaller than a header.
    pk.truncate(3);
    let mut bytes = pcap(linktype::RAW, &pk);
    let second = pcap_boundaries(&bytes)[1];
    bytes[second + 8..second + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let a = analyze(&bytes);
    let f = &a.capture.files[0];
    assert_eq!(f.frames, 1);
    assert!(f.truncated.is_some(), "absurd incl_len not reported");

    for bad_len in [0xFFFF_FFFDu32, 7, 13, 0] {
        let mut ng = PcapngWriter::new(Vec::new(), Endian::Little, None).unwrap();
        ng.add_interface(PcapngInterface::new(linktype::RAW, 6))
            .unwrap();
        for p in &pk {
            ng.write_packet(0, p.ts_ns, &p.data, None, None).unwrap();
        }
        let mut bytes = ng.finish().unwrap();
        let b = pcapng_boundaries(&bytes);
        let epb2 = b[2]; // SHB, IDB, EPB 1 | EPB 2 starts here
        bytes[epb2 + 4..epb2 + 8].copy_from_slice(&bad_len.to_le_bytes());
        let a = analyze(&bytes);
        let f = &a.capture.files[0];
        assert!(f.frames >= 1, "block length {bad_len:#x}");
        assert!(
            f.truncated.is_some(),
            "block length {bad_len:#x} not reported"
        );
    }
}

#[test]
fn ip_fragments_overlapping_and_never_completing() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "frag-legit", 5, T0, 300);
    let mut pk = w.finish();
    let (s, d) = (Ipv4Addr::new(198, 51, 100, 9), Ipv4Addr::new(10, 0, 0, 10));
    let eth = Link::Ethernet {
        src: [2; 6],
        dst: [4; 6],
        vlans: vec![],
    };
    let inv = invite(
        "frag-hostile",
        IpAddr::V4(s),
        Some(&simple_sdp(IpAddr::V4(s), 4000)),
    )
    .render();
    let l4 = packet::udp(IpAddr::V4(s), 5060, IpAddr::V4(d), 5060, &inv);
    let frag = |ident: u16, off: u16, mf: bool, data: &[u8]| {
        let mut h = Ipv4Hdr::new(s, d, 17, ident);
        h.mf = mf;
        h.frag_offset = off;
        eth.wrap(&packet::ipv4(&h, data))
    };
    let mut t = T0 + 100 * MS;
    let mut push = |pk: &mut Vec<Packet>, f: Vec<u8>| {
        t += MS;
        pk.push(Packet::new(t, f));
    };
    // Overlap: the first 64 bytes sent twice with different contents, then the rest.
    push(&mut pk, frag(100, 0, true, &l4[..64]));
    push(&mut pk, frag(100, 0, true, &[0xAA; 64]));
    push(&mut pk, frag(100, 4, true, &l4[32..96]));
    push(&mut pk, frag(100, 12, false, &l4[96..]));
    // Never completing: 300 first fragments, 300 middle fragments, offsets at the limit.
    for i in 0..300u16 {
        push(&mut pk, frag(1000 + i, 0, true, &l4[..64]));
        push(&mut pk, frag(2000 + i, 8, true, &l4[64..128]));
    }
    push(&mut pk, frag(3000, 0x1FFF, true, &[0; 64]));
    push(&mut pk, frag(3001, 0x1FFF, false, &[0; 64]));
    // A tiny fragment (8 bytes) flood on one ident.
    for i in 0..200u16 {
        push(&mut pk, frag(4000, i, true, &[0x55; 8]));
    }
    pk.sort_by_key(|p| p.ts_ns);
    let mut c = cfg();
    c.reassembly.max_fragment_packets = 64;
    let a = analyze_with(&pcap(linktype::ETHERNET, &pk), &c).unwrap();
    assert_accounted(&a);
    assert_completed(&a, "frag-legit");
    let acc = &a.capture.accounting;
    assert!(acc.ip_fragment_incomplete >= 600, "{acc:?}");
    let r = &a.capture.reassembly;
    assert!(r.fragment_overlaps >= 1, "{r:?}");
    assert!(
        limit_hit(&a, "ip_fragments") > 0,
        "{:?}",
        a.capture.limits_hit
    );
}

#[test]
fn tcp_gaps_retransmissions_and_overlaps() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "tcp-legit-udp", 6, T0, 300);
    let mut pk = w.finish();
    let (c_ip, s_ip) = (v4(10, 0, 0, 77), v4(203, 0, 113, 1));
    let eth = Link::Ethernet {
        src: [2; 6],
        dst: [4; 6],
        vlans: vec![],
    };
    let seg = |seq: u32, flags: u8, data: &[u8]| {
        let t = packet::tcp(c_ip, 40123, s_ip, 5060, seq, 1, flags, 65000, data);
        eth.wrap(&packet::ip(c_ip, s_ip, 6, 1, &t))
    };
    let m1 = invite("tcp-1", c_ip, None).render();
    let m2 = invite("tcp-2", c_ip, None).render();
    let m3 = invite("tcp-3", c_ip, None).render();
    let isn = 1000u32;
    let mut frames = vec![seg(isn, tcpflags::SYN, &[])];
    let mut seq = isn + 1;
    // m1 in three pieces, the middle one retransmitted and an overlapping re-send.
    let (a1, rest) = m1.split_at(100);
    let (b1, c1) = rest.split_at(100);
    frames.push(seg(seq, tcpflags::ACK | tcpflags::PSH, a1));
    frames.push(seg(seq + 100, tcpflags::ACK | tcpflags::PSH, b1));
    frames.push(seg(seq + 100, tcpflags::ACK | tcpflags::PSH, b1)); // retransmission
    frames.push(seg(
        seq + 150,
        tcpflags::ACK | tcpflags::PSH,
        &rest[50..150],
    )); // overlap
    frames.push(seg(seq + 200, tcpflags::ACK | tcpflags::PSH, c1));
    seq += m1.len() as u32;
    // m2 never arrives (a gap), m3 follows it.
    seq += m2.len() as u32;
    frames.push(seg(seq, tcpflags::ACK | tcpflags::PSH, &m3));
    seq += m3.len() as u32;
    // Wild sequence numbers: far ahead, far behind, and wrapping around.
    frames.push(seg(seq.wrapping_add(0x7FFF_0000), tcpflags::ACK, b"junk"));
    frames.push(seg(seq.wrapping_sub(0x7000_0000), tcpflags::ACK, b"junk"));
    frames.push(seg(u32::MAX - 2, tcpflags::ACK, b"wrapping"));
    frames.push(seg(seq, tcpflags::ACK | tcpflags::FIN, &[]));
    let mut t = T0 + 200 * MS;
    for f in frames {
        t += MS;
        pk.push(Packet::new(t, f));
    }
    pk.sort_by_key(|p| p.ts_ns);
    let a = analyze(&pcap(linktype::ETHERNET, &pk));
    assert_completed(&a, "tcp-legit-udp");
    let ids: Vec<&str> = a.calls.iter().map(|c| c.sip.call_id.as_str()).collect();
    assert!(ids.contains(&"tcp-1"), "{ids:?}");
    assert!(!ids.contains(&"tcp-2"), "{ids:?}");
    let acc = &a.capture.accounting;
    assert!(acc.tcp_retransmission >= 1, "{acc:?}");
    assert!(
        a.capture.reassembly.tcp_gaps + acc.tcp_out_of_order >= 1,
        "{acc:?}"
    );
}

#[test]
fn sip_with_10000_headers_and_a_1mb_header() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "big-legit", 7, T0, 300);
    // 10,000 short headers over UDP (fragmented).
    let mut m = invite("many-headers", v4(198, 51, 100, 1), None);
    for i in 0..10_000 {
        m.extra.push(("X".into(), format!("{}", i % 10)));
    }
    let big = m.render();
    assert!(big.len() < 65_000);
    w.udp(
        0,
        T0 + 50 * MS,
        sa(v4(198, 51, 100, 1), 5060),
        sa(v4(10, 0, 0, 10), 5060),
        &big,
    );
    // A 1 MB header over TCP, followed by a normal INVITE on the same connection.
    let mut m = invite("huge-header", v4(198, 51, 100, 2), None);
    m.extra.push(("X-Huge".into(), "A".repeat(1 << 20)));
    let huge = m.render();
    let after = invite("after-huge", v4(198, 51, 100, 2), None).render();
    let (cl, sv) = (sa(v4(198, 51, 100, 2), 33333), sa(v4(10, 0, 0, 10), 5060));
    let t = w.tcp_open(T0 + 60 * MS, cl, sv);
    let chunks: Vec<&[u8]> = huge
        .chunks(1400)
        .chain(std::iter::once(&after[..]))
        .collect();
    w.tcp_send(t, cl, sv, &chunks);
    let pk = w.finish();
    let started = Instant::now();
    let a = analyze(&pcap(linktype::ETHERNET, &pk));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_completed(&a, "big-legit");
    assert!(anomalies(&a) >= 1, "no anomaly for oversized SIP");
}

#[test]
fn sdp_with_thousands_of_m_lines() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "sdp-legit", 8, T0, 300);
    let ip = v4(198, 51, 100, 3);
    let mut sdp = simple_sdp(ip, 4000);
    for i in 0..2300u32 {
        sdp.push_str(&format!("m=audio {} RTP/AVP 0 8\r\n", 10000 + i));
    }
    let m = invite("many-m", ip, Some(&sdp)).render();
    assert!(m.len() < 65_000, "{}", m.len());
    w.udp(
        0,
        T0 + 80 * MS,
        sa(ip, 5060),
        sa(v4(10, 0, 0, 10), 5060),
        &m,
    );
    let pk = w.finish();
    let started = Instant::now();
    let a = analyze(&pcap(linktype::ETHERNET, &pk));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_completed(&a, "sdp-legit");
    let c = call(&a, "many-m");
    assert!(!c.sip.sdp.is_empty(), "the SDP offer was dropped");
}

#[test]
fn rtp_with_every_csrc_count_and_padding_value() {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_call(&mut w, "rtp-legit", 9, T0, 300);
    let (src, dst) = (sa(v4(198, 51, 100, 4), 30000), sa(v4(10, 0, 0, 10), 30002));
    let mut seq = 0u16;
    let mut t = T0 + 10 * MS;
    for cc in 0..16u8 {
        for pad in 0..=255u8 {
            let mut p = media::rtp_packet(false, 0, seq, u32::from(seq) * 160, 0xC5C5, &[]);
            p[0] = 0x80 | 0x20 | cc;
            for i in 0..u32::from(cc) {
                p.extend_from_slice(&(0x1000 + i).to_be_bytes());
            }
            if pad % 3 == 0 {
                p[0] |= 0x10; // an extension header too
                p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
            }
            p.extend_from_slice(&[0xFF; 20]);
            // Padding count `pad`: larger than the packet for big values.
            p.extend(std::iter::repeat_n(0u8, usize::from(pad % 32)));
            p.push(pad);
            w.udp(0, t, src, dst, &p);
            seq = seq.wrapping_add(1);
            t += MS;
        }
    }
    let pk = w.finish();
    let a = analyze(&pcap(linktype::ETHERNET, &pk));
    assert_completed(&a, "rtp-legit");
    let acc = &a.capture.accounting;
    assert!(acc.rtp + acc.other_udp >= 4096, "{acc:?}");
}

// ---------------------------------------------------------------------------------------
// 4. Terminal safety and secrets in the rendered output
// ---------------------------------------------------------------------------------------

const EVIL_UA: &str = "Evil\u{1b}[2J\u{1b}]0;pwned\u{07}\rPhone\u{9b}31m";
const EVIL_REASON: &str = "Busy\u{1b}[31m\rHere";
const DIGEST_RESPONSE: &str = "6629fae49393a05397450978507c4ef1";
const CRYPTO_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyAoc2VsZi";
const AUTH_USER: &str = "zq-auth-user-77";

/// A capture with an evil User-Agent and reason phrase, a REGISTER and an INVITE carrying
/// digest credentials, and an SDP with an SRTP key.
fn secrets_capture() -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    let (ua, px) = (sa(v4(10, 0, 0, 10), 5060), sa(v4(203, 0, 113, 1), 5060));
    let creds = |method: &str| {
        format!(
            "Digest username=\"{AUTH_USER}\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"{DIGEST_RESPONSE}\", algorithm=MD5 ;{method}"
        )
    };
    let mut reg = SipMsg::request("REGISTER", "sip:example.com", "reg-secret", 2);
    reg.via.push(Via {
        transport: "UDP".into(),
        sent_by: ua.to_string(),
        branch: "z9hG4bKreg2".into(),
        rport: None,
        received: None,
    });
    reg.from = NameAddr {
        display: None,
        uri: "sip:1001@example.com".into(),
        tag: Some("r1".into()),
    };
    reg.to = NameAddr::new("sip:1001@example.com");
    reg.contact = Some(("sip:1001@10.0.0.10:5060".into(), Some(600)));
    reg.user_agent = Some(EVIL_UA.into());
    reg.extra.push(("Authorization".into(), creds("r")));
    let ok = SipMsg::response_to(&reg, 200, "OK");
    w.udp(0, T0, ua, px, &reg.render());
    w.udp(0, T0 + 10 * MS, px, ua, &ok.render());

    let sdp = format!(
        "v=0\r\no=1001 1 1 IN IP4 10.0.0.10\r\ns=-\r\nc=IN IP4 10.0.0.10\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{CRYPTO_KEY}|2^20|1:32\r\n"
    );
    let mut inv = invite("call-secret", ua.ip(), Some(&sdp));
    inv.user_agent = Some(EVIL_UA.into());
    inv.extra.push(("Proxy-Authorization".into(), creds("i")));
    let busy = SipMsg::response_to(&inv, 486, EVIL_REASON);
    let mut ack = SipMsg::request("ACK", "sip:bob@example.net", "call-secret", 1);
    ack.via = inv.via.clone();
    ack.from = inv.from.clone();
    ack.to = inv.to.clone();
    w.udp(0, T0 + 100 * MS, ua, px, &inv.render());
    w.udp(0, T0 + 200 * MS, px, ua, &busy.render());
    w.udp(0, T0 + 210 * MS, ua, px, &ack.render());
    pcap(linktype::ETHERNET, &w.finish())
}

fn render_all(path: &str, extra: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for fmt in ["text", "json", "tshark-rtp", "tshark-sip"] {
        let mut args = vec!["analyze", path, "--color", "never", "--format", fmt];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run_cli(&args);
        assert!(code == 0 || code == 1, "{fmt}: exit {code}: {stderr}");
        out.push((fmt.to_string(), stdout + &stderr));
    }
    out
}

#[test]
fn terminal_escapes_never_reach_the_text_report() {
    let f = TempFile::new("evil", &secrets_capture());
    let (code, text, _) = run_cli(&["analyze", &f.path(), "--color", "never"]);
    assert!(code == 0 || code == 1);
    assert!(
        text.contains("Evil") || text.contains("Busy"),
        "fields not shown at all"
    );
    for bad in ['\u{1b}', '\r', '\u{07}', '\u{9b}'] {
        assert!(!text.contains(bad), "raw {bad:?} in the text report");
    }
    let (_, json, _) = run_cli(&["analyze", &f.path(), "--format", "json"]);
    assert!(
        !json.bytes().any(|b| b < 0x20 && b != b'\n' && b != b'\t'),
        "raw control bytes in JSON"
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON parses back");
    // Whatever the report does with them, strings survive the JSON round trip intact.
    let all = v.to_string();
    assert!(all.contains("Evil"), "user agent missing from JSON");
    let reason = v["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["call_id"] == "call-secret"))
        .and_then(|c| c["final_reason"].as_str())
        .map(str::to_string);
    // A bare CR ends the status line (as in Wireshark), so the phrase is what precedes it,
    // escape sequence included: JSON carries it escaped, and it parses back unchanged.
    let reason = reason.expect("final reason in JSON");
    assert_eq!(reason, "Busy\u{1b}[31m");
}

#[test]
fn secrets_never_appear_and_usernames_only_on_request() {
    let f = TempFile::new("secret", &secrets_capture());
    let p = f.path();
    for (fmt, out) in render_all(&p, &[]) {
        assert!(
            !out.contains(DIGEST_RESPONSE),
            "{fmt}: digest response leaked"
        );
        assert!(!out.contains(CRYPTO_KEY), "{fmt}: SRTP key leaked");
        assert!(
            !out.contains(&CRYPTO_KEY[..16]),
            "{fmt}: part of the SRTP key leaked"
        );
        assert!(
            !out.contains(AUTH_USER),
            "{fmt}: username shown without --show-usernames"
        );
    }
    let shown = render_all(&p, &["--show-usernames"]);
    for (fmt, out) in &shown {
        assert!(
            !out.contains(DIGEST_RESPONSE),
            "{fmt}: digest response leaked"
        );
        assert!(!out.contains(CRYPTO_KEY), "{fmt}: SRTP key leaked");
    }
    let json = &shown.iter().find(|(f, _)| f == "json").unwrap().1;
    assert!(
        json.contains(AUTH_USER),
        "--show-usernames does not show the username"
    );
}

// ---------------------------------------------------------------------------------------
// 5. Floods against small caps: bounded tables, legitimate calls still right
// ---------------------------------------------------------------------------------------

/// Three legitimate calls spread over the flood (start, middle, end), each short enough
/// that fewer flood entries than the cap arrive while it is active.
fn legit_calls(w: &mut Wire, span_ms: i64) -> [String; 3] {
    let ids = ["legit-a", "legit-b", "legit-c"].map(String::from);
    for (i, id) in ids.iter().enumerate() {
        let start = T0 + (span_ms * i as i64 / 2).min(span_ms - 2000) * MS;
        legit_call(w, id, 100 + i as u64, start, 300);
    }
    ids
}

fn small_caps() -> Config {
    let mut c = cfg();
    c.sip.max_calls = 1000;
    c.sip.max_out_of_dialog = 1000;
    c.sip.max_registrations = 1000;
    c.max_streams = 1000;
    c.reassembly.max_fragment_packets = 64;
    c.reassembly.max_tcp_streams = 256;
    c.reassembly.max_tcp_buffer = 16 * 1024;
    c
}

fn flood_analysis(pk: &[Packet], legit: &[String]) -> Analysis {
    let started = Instant::now();
    let a = analyze_with(&pcap(linktype::ETHERNET, pk), &small_caps()).unwrap();
    assert_accounted(&a);
    assert_eq!(a.capture.accounting.frames, pk.len() as u64);
    for id in legit {
        assert_completed(&a, id);
        let c = call(&a, id);
        assert_eq!(c.streams.len(), 2, "{id}: streams {:?}", c.streams);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    a
}

/// A scanner's INVITE flood: distinct Call-IDs, no responses.
#[test]
fn invite_flood_with_small_call_cap() {
    let n = 5000;
    let span_ms = 50_000;
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    let legit = legit_calls(&mut w, span_ms);
    let scanner = v4(185, 0, 0, 1);
    for i in 0..n {
        let m = invite(&format!("scan-{i}"), scanner, None).render();
        let t = T0 + (i as i64 * span_ms / n as i64) * MS;
        w.udp(0, t, sa(scanner, 5070), sa(v4(10, 0, 0, 10), 5060), &m);
    }
    let a = flood_analysis(&w.finish(), &legit);
    assert!(limit_hit(&a, "calls") > 0, "{:?}", a.capture.limits_hit);
}

/// Many fake RTP streams (distinct ports and SSRCs, a few packets each).
#[test]
fn rtp_stream_flood_with_small_stream_cap() {
    let n = 5000u32;
    let span_ms = 20_000;
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    let legit = legit_calls(&mut w, span_ms);
    let src = v4(185, 0, 0, 2);
    for i in 0..n {
        let t = T0 + (i64::from(i) * span_ms / i64::from(n)) * MS;
        for k in 0..3u16 {
            let p = media::rtp_packet(false, 0, k, u32::from(k) * 160, i, &[0xFF; 160]);
            let port = 10000 + (i % 25000) as u16 * 2;
            w.udp(
                0,
                t + i64::from(k) * 20 * MS,
                sa(src, port),
                sa(v4(10, 0, 0, 99), port),
                &p,
            );
        }
    }
    let a = flood_analysis(&w.finish(), &legit);
    assert!(limit_hit(&a, "streams") > 0, "{:?}", a.capture.limits_hit);
}

/// First fragments of datagrams that never complete.
#[test]
fn fragment_flood_with_small_fragment_cap() {
    let n = 5000u32;
    let span_ms = 20_000;
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    let legit = legit_calls(&mut w, span_ms);
    let (s, d) = (Ipv4Addr::new(185, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 10));
    let eth = Link::Ethernet {
        src: [2; 6],
        dst: [4; 6],
        vlans: vec![],
    };
    for i in 0..n {
        let mut h = Ipv4Hdr::new(s, d, 17, i as u16);
        h.mf = true;
        h.frag_offset = (i / 65536) as u16;
        let t = T0 + (i64::from(i) * span_ms / i64::from(n)) * MS;
        w.packets
            .push(Packet::new(t, eth.wrap(&packet::ipv4(&h, &[0x42; 512]))));
    }
    let a = flood_analysis(&w.finish(), &legit);
    assert!(
        limit_hit(&a, "ip_fragments") > 0,
        "{:?}",
        a.capture.limits_hit
    );
    assert!(a.capture.accounting.ip_fragment_incomplete >= u64::from(n));
}

/// Many TCP connections, each with a gap, so each buffers out-of-order bytes.
#[test]
fn tcp_connection_flood_with_small_stream_cap() {
    let n = 3000u32;
    let span_ms = 20_000;
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    let legit = legit_calls(&mut w, span_ms);
    let (c_ip, s_ip) = (v4(185, 0, 0, 4), v4(10, 0, 0, 10));
    let eth = Link::Ethernet {
        src: [2; 6],
        dst: [4; 6],
        vlans: vec![],
    };
    for i in 0..n {
        let port = 1024 + (i % 60000) as u16;
        let t = T0 + (i64::from(i) * span_ms / i64::from(n)) * MS;
        let syn = packet::tcp(c_ip, port, s_ip, 5060, 100, 0, tcpflags::SYN, 1000, &[]);
        let data = packet::tcp(
            c_ip,
            port,
            s_ip,
            5060,
            5000,
            1,
            tcpflags::ACK,
            1000,
            &[0x41; 1000],
        );
        for (k, seg) in [syn, data].into_iter().enumerate() {
            let ip = packet::ip(c_ip, s_ip, 6, 1, &seg);
            w.packets.push(Packet::new(t + k as i64, eth.wrap(&ip)));
        }
    }
    let a = flood_analysis(&w.finish(), &legit);
    assert!(
        limit_hit(&a, "tcp_streams") > 0,
        "{:?}",
        a.capture.limits_hit
    );
}

// ---------------------------------------------------------------------------------------
// 6. Linear-ish time on worst-case input
// ---------------------------------------------------------------------------------------

/// Best of five runs (noise on a shared machine, or from tests running in parallel,
/// only ever adds time).
fn best_of_5(f: &mut dyn FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .min()
        .unwrap()
}

/// 10× the input may cost at most 30× the time (quadratic would be 100×).
fn assert_linear(what: &str, small: Duration, large: Duration) {
    let floor = Duration::from_micros(200); // below this, timer noise dominates
    let ratio = large.as_secs_f64() / small.max(floor).as_secs_f64();
    eprintln!("{what}: {small:?} → {large:?} (×{ratio:.1})");
    assert!(ratio <= 30.0, "{what}: 10× input took {ratio:.1}× time");
}

#[test]
fn worst_case_parsing_is_linear() {
    // Many headers / many Vias in one message.
    let msg = |n: usize, via: bool| {
        let mut m = invite("lin", v4(10, 0, 0, 1), None);
        for i in 0..n {
            if via {
                m.extra.push((
                    "Via".into(),
                    format!("SIP/2.0/UDP 10.0.0.{}:5060;branch=z9hG4bK{i}", i % 250),
                ));
            } else {
                m.extra.push((format!("X-H{i}"), "v".into()));
            }
        }
        m.render()
    };
    for via in [false, true] {
        let (s, l) = (msg(600, via), msg(6000, via));
        let ts = best_of_5(&mut || {
            std::hint::black_box(sipscope::sip::wire::parse(&s));
        });
        let tl = best_of_5(&mut || {
            std::hint::black_box(sipscope::sip::wire::parse(&l));
        });
        assert_linear(if via { "many Vias" } else { "many headers" }, ts, tl);
    }
    // One long header line, and a long line with no terminator at all (stream framing).
    let long = |n: usize| {
        let mut m = invite("lin", v4(10, 0, 0, 1), None);
        m.extra.push(("Subject".into(), "s".repeat(n)));
        m.render()
    };
    let (s, l) = (long(5_000), long(50_000));
    let ts = best_of_5(&mut || {
        std::hint::black_box(sipscope::sip::wire::parse(&s));
    });
    let tl = best_of_5(&mut || {
        std::hint::black_box(sipscope::sip::wire::parse(&l));
    });
    assert_linear("long header line", ts, tl);
    let (s, l) = (vec![b'a'; 50_000], vec![b'a'; 500_000]);
    let ts = best_of_5(&mut || {
        std::hint::black_box(sipscope::sip::wire::stream_frame(&s));
    });
    let tl = best_of_5(&mut || {
        std::hint::black_box(sipscope::sip::wire::stream_frame(&l));
    });
    assert_linear("stream_frame on an unterminated line", ts, tl);
    // SDP with many m= lines.
    let sdp = |n: usize| {
        let mut s = simple_sdp(v4(10, 0, 0, 1), 4000);
        for i in 0..n {
            s.push_str(&format!(
                "m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                10000 + i
            ));
        }
        s.into_bytes()
    };
    let (s, l) = (sdp(500), sdp(5000));
    let ts = best_of_5(&mut || {
        std::hint::black_box(sipscope::sdp::parse(&s));
    });
    let tl = best_of_5(&mut || {
        std::hint::black_box(sipscope::sdp::parse(&l));
    });
    assert_linear("SDP m= lines", ts, tl);
}

fn invite_flood(n: usize) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    for i in 0..n {
        let m = invite(&format!("f{i}"), v4(10, 0, 0, 1), None).render();
        let (a, b) = (sa(v4(10, 0, 0, 1), 5060), sa(v4(10, 0, 0, 2), 5060));
        w.udp(0, T0 + i as i64 * MS, a, b, &m);
    }
    pcap(linktype::RAW, &w.finish())
}

/// A SIP message with `lines` short header lines trickling in over TCP, one line per
/// segment (the worst case for framing that rescans the pending header block).
fn tcp_trickle(lines: usize) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    let (cl, sv) = (sa(v4(10, 0, 0, 1), 4000), sa(v4(10, 0, 0, 2), 5060));
    let t = w.tcp_open(T0, cl, sv);
    let mut m = invite("trickle", cl.ip(), None);
    for i in 0..lines {
        m.extra.push(("X".into(), format!("{}", i % 10)));
    }
    let bytes = m.render();
    let chunks: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    w.tcp_send(t, cl, sv, &chunks);
    pcap(linktype::RAW, &w.finish())
}

fn assert_pipeline_linear(what: &str, small: &[u8], large: &[u8]) {
    let c = cfg();
    let (fs, fl) = (TempFile::new("lin", small), TempFile::new("lin", large));
    let ts = best_of_5(&mut || {
        std::hint::black_box(analyze_paths(&[fs.path()], &c, None).unwrap());
    });
    let tl = best_of_5(&mut || {
        std::hint::black_box(analyze_paths(&[fl.path()], &c, None).unwrap());
    });
    assert_linear(what, ts, tl);
}

/// The pipeline end to end on an INVITE flood (SIP state, tables, correlation, rules).
#[test]
fn worst_case_invite_flood_is_linear() {
    assert_pipeline_linear("INVITE flood", &invite_flood(300), &invite_flood(3000));
}

// ---------------------------------------------------------------------------------------
// Regressions: one per bug found by the tests above or by fuzzing
// ---------------------------------------------------------------------------------------

/// A .gz capture that lost its gzip trailer (or was cut where the inflated data ends
/// between two records) was read as complete: the reader only consulted the inflater's
/// error when the pcap parser itself saw a partial record.
#[test]
fn regression_gzip_cut_on_record_boundary_reported_truncated() {
    let pk: Vec<Packet> = (0..3)
        .map(|i| Packet::new(T0 + i * MS, vec![0x45; 60]))
        .collect();
    let gz = sipscope::synth::builder::gzip(&pcap(linktype::RAW, &pk)).unwrap();
    let whole = analyze(&gz);
    assert!(whole.capture.files[0].truncated.is_none());
    // Without the 8-byte trailer (CRC-32, size) the deflate data is complete: every record
    // inflates, but the stream is still cut.
    let cut = &gz[..gz.len() - 8];
    let a = analyze(cut);
    let f = &a.capture.files[0];
    assert_eq!(f.frames, 3);
    let t = f
        .truncated
        .as_ref()
        .expect("cut gzip reported as truncated");
    assert!(t.detail.contains("gzip"), "{}", t.detail);
}

/// SIP over TCP sent one header line per segment re-ran the stream framing over the whole
/// pending header block for every segment: 5,000 lines took 85× the time of 500.
#[test]
fn regression_tcp_header_trickle_is_linear() {
    assert_pipeline_linear("TCP trickle", &tcp_trickle(1000), &tcp_trickle(10_000));
    let a = analyze(&tcp_trickle(10_000));
    let c = call(&a, "trickle");
    assert_eq!(c.sip.messages.len(), 1);
}

/// A SIP message over TCP with `body / 10` header lines and a body of `body` bytes arriving
/// one byte per segment (the header block grows with the body, so framing that rescans it
/// per segment is quadratic).
fn tcp_body_trickle(body: usize) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    let (cl, sv) = (sa(v4(10, 0, 0, 1), 4000), sa(v4(10, 0, 0, 2), 5060));
    let t = w.tcp_open(T0, cl, sv);
    let mut m = invite("body-trickle", cl.ip(), None);
    for i in 0..body / 10 {
        m.extra.push(("X".into(), format!("{}", i % 10)));
    }
    m.content_type = Some("text/plain".into());
    m.body = vec![b'a'; body];
    let bytes = m.render();
    let split = bytes.len() - body;
    let mut chunks: Vec<&[u8]> = vec![&bytes[..split]];
    chunks.extend(bytes[split..].chunks(1));
    w.tcp_send(t, cl, sv, &chunks);
    pcap(linktype::RAW, &w.finish())
}

/// A body trickled one byte per segment re-framed the whole pending message (its header
/// block) for every segment: O(segments × header bytes), 10× input took 77× the time.
/// The framer now reports the
/// length a message with a complete header block needs, and nothing is re-framed until
/// the buffer reaches it.
#[test]
fn regression_tcp_body_trickle_is_linear() {
    assert_pipeline_linear(
        "TCP body trickle",
        &tcp_body_trickle(1000),
        &tcp_body_trickle(10_000),
    );
    let a = analyze(&tcp_body_trickle(10_000));
    let c = call(&a, "body-trickle");
    assert_eq!(c.sip.messages.len(), 1);
    assert_eq!(c.sip.messages[0].msg.body_bytes().len(), 10_000);
}

/// The framing shortcut above must not change what is framed, nor at which frame: a TCP
/// stream of messages (bodies, CRLF and bare-LF line ends, keepalives) is analysed the
/// same whether it arrives whole, split in two at any byte, or one byte per segment.
#[test]
fn tcp_segmentation_does_not_change_framing() {
    let mut stream = Vec::new();
    let mut m1 = invite(
        "seg-1",
        v4(10, 0, 0, 1),
        Some(&simple_sdp(v4(10, 0, 0, 1), 4000)),
    );
    m1.extra.push(("Subject".into(), "x".repeat(50)));
    stream.extend_from_slice(&m1.render());
    stream.extend_from_slice(b"\r\n\r\n");
    let lf = String::from_utf8(invite("seg-2", v4(10, 0, 0, 1), None).render())
        .unwrap()
        .replace("\r\n", "\n");
    stream.extend_from_slice(lf.as_bytes());
    stream.extend_from_slice(&invite("seg-3", v4(10, 0, 0, 1), Some("v=0\r\n")).render());
    let (cl, sv) = (sa(v4(10, 0, 0, 1), 4000), sa(v4(10, 0, 0, 2), 5060));
    let run = |chunks: &[&[u8]]| {
        let mut w = Wire::new(LinkKind::Raw);
        let t = w.tcp_open(T0, cl, sv);
        w.tcp_send(t, cl, sv, chunks);
        let a = analyze(&pcap(linktype::RAW, &w.finish()));
        let mut msgs: Vec<(String, u64)> = a
            .calls
            .iter()
            .flat_map(|c| {
                c.sip
                    .messages
                    .iter()
                    .map(|m| (c.sip.call_id.clone(), m.frame.num))
            })
            .collect();
        msgs.sort();
        (msgs, a.capture.accounting.sip_keepalive)
    };
    let (whole, _) = run(&[&stream]);
    assert_eq!(whole.len(), 3, "{whole:?}");
    // One byte per segment (after a first segment holding the request line: a direction is
    // classified as SIP by its first bytes): each message completes at the frame carrying
    // its last byte. Frames: 3 handshake, the head, then one per byte.
    let head = stream.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut bytes: Vec<&[u8]> = vec![&stream[..head]];
    bytes.extend(stream[head..].chunks(1));
    let (one, _) = run(&bytes);
    assert_eq!(one.len(), 3, "{one:?}");
    let frame_of_byte = |i: usize| 4 + (i + 1 - head) as u64;
    let m1_len = m1.render().len();
    assert_eq!(one[0], ("seg-1".to_string(), frame_of_byte(m1_len - 1)));
    assert_eq!(
        one[2],
        ("seg-3".to_string(), frame_of_byte(stream.len() - 1))
    );
    let started = Instant::now();
    for cut in (head..stream.len()).step_by(7) {
        let (a, b) = stream.split_at(cut);
        let (split, _) = run(&[a, b]);
        let names: Vec<&str> = split.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["seg-1", "seg-2", "seg-3"], "split at {cut}");
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}

// ---------------------------------------------------------------------------------------
// Full-size floods for the memory figures in docs/robustness.md (not run by default)
// ---------------------------------------------------------------------------------------

/// Streams `flood` (called with a packet sink, in time order) into a pcap at `path`, with
/// the three legitimate calls of [`legit_calls`] merged in by time.
/// Receives (timestamp, frame) pairs in time order.
type Emit<'a> = &'a mut dyn FnMut(i64, Vec<u8>);

fn write_flood(path: &Path, span_ms: i64, flood: &mut dyn FnMut(Emit<'_>)) {
    use sipscope::synth::builder::PcapWriter;
    let mut w = Wire::new(LinkKind::Ethernet { vlans: vec![] });
    legit_calls(&mut w, span_ms);
    let mut legit = w.finish().into_iter().peekable();
    let f = std::io::BufWriter::new(std::fs::File::create(path).expect("create flood file"));
    let mut out = PcapWriter::new(f, PcapOptions::default()).unwrap();
    flood(&mut |ts, data| {
        while let Some(p) = legit.next_if(|p| p.ts_ns <= ts) {
            out.write_packet(p.ts_ns, &p.data).unwrap();
        }
        out.write_packet(ts, &data).unwrap();
    });
    for p in legit {
        out.write_packet(p.ts_ns, &p.data).unwrap();
    }
    out.finish().unwrap();
}

/// `SIPSCOPE_FLOOD_DIR=/tmp/floods cargo test --test hostile -- --ignored full_size` writes
/// invite-flood.pcap (1,000,000 scanner INVITEs), rtp-flood.pcap (100,000 fake RTP
/// streams, 3 packets each), frag-flood.pcap (1,000,000 first fragments that never
/// complete) and tcp-flood.pcap (100,000 TCP connections, each with a gap), each with the
/// calls legit-a/b/c mixed in; then measure with `/usr/bin/time -v target/release/sipscope
/// analyze FILE --format json`.
#[test]
#[ignore = "writes ~1 GB of captures; for the memory figures in docs/robustness.md"]
fn full_size_flood_captures() {
    let dir = PathBuf::from(std::env::var("SIPSCOPE_FLOOD_DIR").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("sipscope-floods")
            .to_string_lossy()
            .into_owned()
    }));
    std::fs::create_dir_all(&dir).unwrap();
    let eth = Link::Ethernet {
        src: [2; 6],
        dst: [4; 6],
        vlans: vec![],
    };
    let span_ms: i64 = 600_000;
    let at = |i: u64, n: u64| T0 + (i as i64 * span_ms / n as i64) * MS;

    let n = 1_000_000u64;
    write_flood(&dir.join("invite-flood.pcap"), span_ms, &mut |emit| {
        let scanner = v4(185, 0, 0, 1);
        for i in 0..n {
            let m = invite(&format!("scan-{i}"), scanner, None).render();
            let ip = packet::udp_ip(scanner, 5070, v4(10, 0, 0, 10), 5060, i as u16, &m);
            emit(at(i, n), eth.wrap(&ip));
        }
    });
    let n = 100_000u64;
    write_flood(&dir.join("rtp-flood.pcap"), span_ms, &mut |emit| {
        let (src, dst) = (v4(185, 0, 0, 2), v4(10, 0, 0, 99));
        for i in 0..n {
            let port = 10000 + (i % 25000) as u16 * 2;
            let dst = if i < 25000 {
                dst
            } else {
                v4(10, 1, (i / 25000) as u8, 99)
            };
            for k in 0..3u16 {
                let p = media::rtp_packet(false, 0, k, u32::from(k) * 160, i as u32, &[0xFF; 160]);
                let ip = packet::udp_ip(src, port, dst, port, k, &p);
                emit(at(i, n) + i64::from(k), eth.wrap(&ip));
            }
        }
    });
    let n = 1_000_000u64;
    write_flood(&dir.join("frag-flood.pcap"), span_ms, &mut |emit| {
        let (s, d) = (Ipv4Addr::new(185, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 10));
        for i in 0..n {
            let mut h = Ipv4Hdr::new(s, d, 17, i as u16);
            h.mf = true;
            // ident wraps every 65,536: vary the source so keys stay distinct.
            h.src = Ipv4Addr::new(185, 0, (i >> 16) as u8, 3);
            emit(at(i, n), eth.wrap(&packet::ipv4(&h, &[0x42; 96])));
        }
    });
    let n = 100_000u64;
    write_flood(&dir.join("tcp-flood.pcap"), span_ms, &mut |emit| {
        let s_ip = v4(10, 0, 0, 10);
        for i in 0..n {
            let c_ip = v4(185, 1, (i >> 16) as u8, 4);
            let port = 1024 + (i % 60000) as u16;
            let syn = packet::tcp(c_ip, port, s_ip, 5060, 100, 0, tcpflags::SYN, 1000, &[]);
            let first = invite(&format!("tcp-{i}"), c_ip, None).render();
            let head = packet::tcp(
                c_ip,
                port,
                s_ip,
                5060,
                101,
                1,
                tcpflags::ACK,
                1000,
                &first[..60],
            );
            let after_gap = packet::tcp(
                c_ip,
                port,
                s_ip,
                5060,
                5000,
                1,
                tcpflags::ACK,
                1000,
                &first[60..],
            );
            for (k, seg) in [syn, head, after_gap].into_iter().enumerate() {
                emit(
                    at(i, n) + k as i64,
                    eth.wrap(&packet::ip(c_ip, s_ip, 6, 1, &seg)),
                );
            }
        }
    });
}

/// `n` scanner INVITEs (no answer) spread over a minute, plus `n` RTP streams between
/// the same two hosts spanning the whole minute and announced by no SDP: every stream is
/// a NAT/heuristic candidate for every call.
fn calls_and_streams(n: usize) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    let (a, b) = (v4(185, 0, 0, 9), v4(10, 0, 0, 10));
    let span = 60_000 * MS;
    for i in 0..n {
        let t = T0 + span * i as i64 / n as i64;
        let m = invite(&format!("x{i}"), a, None).render();
        w.udp(0, t, sa(a, 5060), sa(b, 5060), &m);
    }
    for i in 0..n {
        let port = 20000 + 2 * i as u16;
        for (k, t) in [T0, T0 + span].into_iter().enumerate() {
            let p = media::rtp_packet(false, 0, k as u16, 160 * k as u32, i as u32, &[0; 20]);
            w.udp(0, t + i as i64, sa(a, port), sa(b, port), &p);
        }
    }
    pcap(linktype::RAW, &w.finish())
}

/// Stream-to-call attachment (`correlate::attach`, NAT and heuristic rules) between one
/// host pair: every call meets every stream by host and minute. Each host/minute bucket
/// now offers only its calls nearest in time (a window in a start-sorted list); it used
/// to gather and sort the whole bucket per stream (10× input took 58× time). The rules
/// run too: the 2,000 streams all land on one call, which the per-call media rules must
/// handle without comparing streams pairwise.
#[test]
fn worst_case_correlation_is_linear() {
    let c = cfg();
    let th = sipscope::rules::Thresholds::default();
    let sel = sipscope::rules::Selection::default();
    let (fs, fl) = (
        TempFile::new("lin", &calls_and_streams(200)),
        TempFile::new("lin", &calls_and_streams(2000)),
    );
    let run = |f: &TempFile| {
        let a = analyze_paths(&[f.path()], &c, None).unwrap();
        std::hint::black_box(sipscope::rules::run(&a, &th, &sel));
    };
    let ts = best_of_5(&mut || run(&fs));
    let tl = best_of_5(&mut || run(&fl));
    assert_linear("calls x streams (analysis and rules)", ts, tl);
}

/// `n` RTP streams of two packets each, one after another, from one flooding host.
fn stream_flood(n: u32) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    for i in 0..n {
        let port = 10000 + (i % 25000) as u16 * 2;
        for k in 0..2u16 {
            let p = media::rtp_packet(false, 0, k, u32::from(k) * 160, i, &[0; 20]);
            let t = T0 + i64::from(i) * MS + i64::from(k) * 20 * MS;
            w.udp(
                0,
                t,
                sa(v4(185, 0, 0, 2), port),
                sa(v4(10, 0, 0, 99), port),
                &p,
            );
        }
    }
    pcap(linktype::RAW, &w.finish())
}

/// With the stream table full, each new stream evicted one old one after a scan of the
/// whole table: a flood of streams beyond the cap cost cap × flood, quadratic when the
/// flood is a multiple of the cap (the default cap is 200,000). The oldest sixteenth now
/// goes at once. Here the cap scales with the flood, as the default cap against a large
/// flood does.
#[test]
fn regression_stream_cap_eviction_is_amortized() {
    let run = |n: u32| {
        let c = Config {
            max_streams: n as usize / 2,
            ..cfg()
        };
        let f = TempFile::new("evict", &stream_flood(n));
        let mut evicted = 0;
        let t = best_of_5(&mut || {
            let a = analyze_paths(&[f.path()], &c, None).unwrap();
            assert_eq!(
                a.streams.len(),
                n as usize,
                "evicted streams stay in the report"
            );
            evicted = limit_hit(&a, "streams");
        });
        assert!(
            evicted >= u64::from(n) / 2,
            "{n} streams: {evicted} evicted"
        );
        t
    };
    assert_linear("stream flood at twice the cap", run(2000), run(20_000));
}

/// `n` public→private RTP streams (3 packets each, distinct private destinations that are
/// never seen sending).
fn streams_to_private(n: u32) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    for i in 0..n {
        let dst = v4(10, (i >> 8) as u8, i as u8, 1);
        for k in 0..3u16 {
            let p = media::rtp_packet(false, 0, k, u32::from(k) * 160, i, &[0; 20]);
            let t = T0 + i64::from(i) * MS + i64::from(k) * 20 * MS;
            w.udp(0, t, sa(v4(198, 51, 100, 1), 30000), sa(dst, 30000), &p);
        }
    }
    pcap(linktype::RAW, &w.finish())
}

/// Rule `nat.media-to-unroutable` scanned every stream for every stream with a private
/// destination: 100,000 flood streams took 32 s of a 45 s run (release build).
#[test]
fn regression_media_to_unroutable_rule_is_linear() {
    let sel = sipscope::rules::Selection {
        only: vec!["nat.media-to-unroutable".into()],
        disable: Vec::new(),
    };
    let th = sipscope::rules::Thresholds::default();
    let (small, large) = (
        analyze(&streams_to_private(1000)),
        analyze(&streams_to_private(10_000)),
    );
    let mut found = 0;
    let ts = best_of_5(&mut || {
        found = sipscope::rules::run(&small, &th, &sel).len();
    });
    assert_eq!(found, 1000, "every stream goes to a silent private host");
    let tl = best_of_5(&mut || {
        std::hint::black_box(sipscope::rules::run(&large, &th, &sel));
    });
    assert_linear("media-to-unroutable", ts, tl);
}

/// `n` TCP connections to port 5060, each carrying the start of a SIP request (so each
/// gets a SIP framing buffer), with the framing table capped at `n / 2`.
fn tcp_sip_connections(n: u32) -> Vec<u8> {
    let mut w = Wire::new(LinkKind::Raw);
    let s_ip = v4(10, 0, 0, 10);
    for i in 0..n {
        let c_ip = v4(185, 2, (i >> 8) as u8, i as u8);
        let seg = packet::tcp(
            c_ip,
            40000,
            s_ip,
            5060,
            7,
            1,
            tcpflags::ACK | tcpflags::PSH,
            1000,
            b"INVITE sip:bob@example.net SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n",
        );
        let ip = packet::ip(c_ip, s_ip, 6, 1, &seg);
        w.packets.push(Packet::new(T0 + i64::from(i) * MS, ip));
    }
    pcap(linktype::RAW, &w.finish())
}

/// The SIP-over-TCP framing table evicted its smallest key with a `keys().min()` scan of
/// a hash map, O(cap) per eviction: a flood of 100,000 connections took 14 s (release).
#[test]
fn regression_tcp_sip_eviction_is_linear() {
    let run = |n: u32| {
        let mut c = cfg();
        c.reassembly.max_tcp_streams = n as usize / 2;
        let f = TempFile::new("tcpsip", &tcp_sip_connections(n));
        let mut a = None;
        let t = best_of_5(&mut || {
            a = Some(analyze_paths(&[f.path()], &c, None).unwrap());
        });
        let a = a.unwrap();
        assert_accounted(&a);
        assert_eq!(limit_hit(&a, "tcp_sip_streams"), u64::from(n - n / 2));
        t
    };
    let (ts, tl) = (run(1000), run(10_000));
    assert_linear("TCP SIP table eviction", ts, tl);
}

/// Found by fuzzing (`pipeline`): a NetMon 2.x header whose start time says year 0
/// overflowed the nanosecond computation (a panic in debug builds).
#[test]
fn regression_netmon_start_year_out_of_range() {
    let mut b = Vec::new();
    b.extend_from_slice(b"GMBU\x00\x02\x01\x01");
    // SYSTEMTIME: year 0 (and 65535), January, day 17, 15:39:20.502.
    for year in [0u16, 65535] {
        let mut f = b.clone();
        for v in [year, 1, 0, 17, 15, 39, 20, 502] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&[0x65, 0, 2, 0, 0x9c, 0x2b, 0, 0]);
        f.resize(233, 0);
        if let Ok(a) = analyze_with(&f, &cfg()) {
            assert_accounted(&a);
        }
    }
}

/// Regression: a SIP-over-TCP stream whose request line arrives in 3-byte segments used to
/// be classified "not SIP" from its first segment, hiding the whole stream.
#[test]
fn sip_over_tcp_with_a_request_line_split_into_tiny_segments_is_still_sip() {
    use sipscope::synth::scenario::{LinkKind, Wire};
    let client: std::net::SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let server: std::net::SocketAddr = "192.0.2.20:5060".parse().unwrap();
    let msg = b"OPTIONS sip:ping@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10:40000;branch=z9hG4bKtiny\r\nFrom: <sip:a@192.0.2.10>;tag=1\r\nTo: <sip:ping@192.0.2.20>\r\nCall-ID: tiny-segments\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let mut w = Wire::new(LinkKind::Ethernet { vlans: Vec::new() });
    let t = w.tcp_open(1_000_000_000, client, server);
    let segs: Vec<&[u8]> = msg.chunks(3).collect();
    w.tcp_send(t + 1_000_000, client, server, &segs);
    let packets = w.finish();
    let bytes = sipscope::synth::write_capture(
        &sipscope::synth::FileFormat::Pcap(Default::default()),
        &packets,
    )
    .unwrap();
    let path = std::env::temp_dir().join(format!("sipscope-tiny-{}.pcap", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let a = sipscope::engine::analyze_paths(
        &[path.to_string_lossy().into_owned()],
        &Default::default(),
        None,
    )
    .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        a.sip_stats.messages,
        1,
        "the OPTIONS split into {} segments must be found",
        segs.len()
    );
    assert_eq!(a.out_of_dialog.len(), 1);
}

/// The streaming JSON run (the CLI's path) on the worst cases above: calls × streams
/// between one host pair (every stream shares the hosts of every call, so each tick
/// weighs which calls they hold back) and a flood of orphan streams. Linear, like the
/// whole-model run.
#[test]
fn streaming_worst_cases_are_linear() {
    let c = cfg();
    let th = sipscope::rules::Thresholds::default();
    let sel = sipscope::rules::Selection::default();
    let run = |f: &TempFile| {
        let mut r = sipscope::report::analyze_streamed(&[f.path()], &c, None, &th, &sel, None)
            .expect("streamed run");
        r.write_json(std::io::sink(), true).expect("json");
        std::hint::black_box(r.findings());
    };
    let (fs, fl) = (
        TempFile::new("slin", &calls_and_streams(200)),
        TempFile::new("slin", &calls_and_streams(2000)),
    );
    let ts = best_of_5(&mut || run(&fs));
    let tl = best_of_5(&mut || run(&fl));
    assert_linear("calls x streams, streaming", ts, tl);
    let (fs, fl) = (
        TempFile::new("sflood", &stream_flood(2000)),
        TempFile::new("sflood", &stream_flood(20_000)),
    );
    let ts = best_of_5(&mut || run(&fs));
    let tl = best_of_5(&mut || run(&fl));
    assert_linear("orphan stream flood, streaming", ts, tl);
}
