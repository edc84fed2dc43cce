//! Test-only: run the parser over the real captures in `../shared/pcaps` and compare with
//! tshark's SIP message counts. A deliberately tiny pcap/pcapng + Ethernet/SLL/raw +
//! IPv4 + UDP walker (the real decoder lives in `decode` and is not used here, so this test
//! does not depend on it). TCP, IPv6, IP fragments and tunnels are not walked, so files
//! carrying SIP that way show fewer messages than tshark; that is expected.

use super::{looks_like_sip, parse, stream_frame};
use pcap_parser::{PcapBlockOwned, PcapError, create_reader, pcapng::Block};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The UDP payload of an IPv4 packet at the start of `ip`, if unfragmented.
fn udp_payload_v4(ip: &[u8]) -> Option<&[u8]> {
    let vihl = *ip.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if frag & 0x3fff != 0 || *ip.get(9)? != 17 {
        return None; // fragment (MF or offset) or not UDP
    }
    let ip = ip.get(..total.min(ip.len()))?;
    let udp = ip.get(ihl..)?;
    let ulen = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    udp.get(8..ulen.clamp(8, udp.len()))
}

/// Link layer → IPv4 packet.
fn ipv4_of(linktype: i32, frame: &[u8]) -> Option<&[u8]> {
    match linktype {
        1 => {
            let mut off = 12;
            let mut et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            let mut tags = 0;
            while (et == 0x8100 || et == 0x88a8) && tags < 4 {
                off += 4;
                tags += 1;
                et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            }
            (et == 0x0800).then(|| frame.get(off + 2..)).flatten()
        }
        113 => {
            let et = u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]);
            (et == 0x0800).then(|| frame.get(16..)).flatten()
        }
        276 => {
            let et = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            (et == 0x0800).then(|| frame.get(20..)).flatten()
        }
        0 | 108 => {
            let fam = frame.get(..4)?;
            (fam == [2, 0, 0, 0] || fam == [0, 0, 0, 2])
                .then(|| frame.get(4..))
                .flatten()
        }
        101 | 228 | 12 | 14 => Some(frame),
        _ => None,
    }
}

/// Every UDP-over-IPv4 payload in a capture file (bounded by count and time).
fn udp_payloads(path: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(data) = std::fs::read(path) else {
        return out;
    };
    let Ok(mut reader) = create_reader(1 << 16, &data[..]) else {
        return out;
    };
    let mut legacy_lt = 1i32;
    let mut if_lt: Vec<i32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..2_000_000 {
        if Instant::now() > deadline {
            break;
        }
        match reader.next() {
            Ok((off, block)) => {
                let pkt: Option<(i32, Vec<u8>)> = match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_lt = h.network.0;
                        None
                    }
                    PcapBlockOwned::Legacy(b) => Some((legacy_lt, b.data.to_vec())),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        if_lt.push(i32::from(idb.linktype.0 as i16));
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let lt = if_lt.get(epb.if_id as usize).copied().unwrap_or(1);
                        let n = (epb.caplen as usize).min(epb.data.len());
                        Some((lt, epb.data.get(..n).unwrap_or(&[]).to_vec()))
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        Some((if_lt.first().copied().unwrap_or(1), spb.data.to_vec()))
                    }
                    _ => None,
                };
                if let Some((lt, frame)) = pkt
                    && let Some(p) = ipv4_of(lt, &frame).and_then(udp_payload_v4)
                {
                    out.push(p.to_vec());
                }
                reader.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// tshark's `SIP messages (-Y sip): N` from the sibling `.tshark.txt`.
fn tshark_sip_count(path: &Path) -> Option<usize> {
    let mut txt = path.as_os_str().to_owned();
    txt.push(".tshark.txt");
    let s = std::fs::read_to_string(PathBuf::from(txt)).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("SIP messages (-Y sip):"))
        .and_then(|n| n.trim().parse().ok())
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 4 {
            captures(&p, out, depth + 1);
        } else if p.is_file() {
            let name = p.to_string_lossy();
            if !name.ends_with(".txt") && !name.ends_with(".md") {
                out.push(p);
            }
        }
    }
}

#[test]
fn corpus_counts_against_tshark() {
    let dir = Path::new("../shared/pcaps");
    if !dir.is_dir() {
        eprintln!(
            "SKIP corpus_counts_against_tshark: {} not found",
            dir.display()
        );
        return;
    }
    let mut files = Vec::new();
    captures(dir, &mut files, 0);
    files.sort();
    let (mut t_payloads, mut t_looks, mut t_parsed, mut t_tshark) =
        (0usize, 0usize, 0usize, 0usize);
    let mut anomaly_kinds: std::collections::BTreeMap<&'static str, usize> = Default::default();
    eprintln!(
        "{:<70} {:>7} {:>6} {:>6} {:>6}",
        "file", "udp", "looks", "parsed", "tshark"
    );
    for f in &files {
        let payloads = udp_payloads(f);
        let mut file_kinds: std::collections::BTreeMap<&'static str, usize> = Default::default();
        let mut looks = 0;
        let mut parsed = 0;
        for p in &payloads {
            let l = looks_like_sip(p);
            let m = parse(p);
            let _ = stream_frame(p);
            if l {
                looks += 1;
                // Whatever the content check accepts, the parser must parse.
                assert!(
                    m.is_some(),
                    "{}: looks like SIP but does not parse",
                    f.display()
                );
            }
            if let Some(m) = m {
                if l {
                    parsed += 1;
                }
                for a in &m.anomalies {
                    *anomaly_kinds.entry(a.kind).or_default() += 1;
                    *file_kinds.entry(a.kind).or_default() += 1;
                }
                for h in &m.headers {
                    for s in [&h.name, &h.value, &h.line] {
                        assert!(s.start <= s.end && s.end as usize <= m.raw.len());
                    }
                }
                let _ = (
                    m.vias(),
                    m.from_hdr(),
                    m.to_hdr(),
                    m.cseq(),
                    m.contacts(),
                    m.challenge(),
                );
            }
        }
        let ts = tshark_sip_count(f);
        t_payloads += payloads.len();
        t_looks += looks;
        t_parsed += parsed;
        t_tshark += ts.unwrap_or(0);
        let mark = if ts.is_some_and(|t| t != looks) {
            "  <- differs"
        } else {
            ""
        };
        let name = f.strip_prefix(dir).unwrap_or(f).display().to_string();
        eprintln!(
            "{:<70} {:>7} {:>6} {:>6} {:>6}{mark}",
            name,
            payloads.len(),
            looks,
            parsed,
            ts.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
        );
        if !file_kinds.is_empty() {
            eprintln!("    anomalies: {file_kinds:?}");
        }
    }
    eprintln!("TOTAL udp={t_payloads} looks={t_looks} parsed={t_parsed} tshark={t_tshark}");
    eprintln!("anomalies: {anomaly_kinds:?}");
    assert!(t_looks > 0 || files.is_empty());
}
