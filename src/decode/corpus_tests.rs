//! Decode every capture of the shared corpus (`../shared/pcaps`) and compare UDP/TCP frame
//! counts with tshark's protocol hierarchy. Test-only; skipped when the corpus is absent.
//! Files are read with pcap-parser directly (the project's capture reader is separate).

use super::{Datagram, Decoded, L4, Reassembler, ReassemblyLimits, decode_frame};
use crate::types::{FrameRef, Transport, Ts};
use pcap_parser::{Block, PcapBlockOwned, PcapError, create_reader};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CORPUS: &str = "../shared/pcaps";

/// (link type, captured bytes) of every frame, or None when pcap-parser cannot read it
/// (NetMon files in the corpus).
fn read_frames(path: &Path) -> Option<Vec<(u32, Vec<u8>)>> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = create_reader(1 << 20, file).ok()?;
    let mut frames = Vec::new();
    let mut legacy_link = 1u32;
    let mut if_links: Vec<u32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline || frames.len() > 2_000_000 {
            break;
        }
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => legacy_link = h.network.0 as u32,
                    PcapBlockOwned::Legacy(b) => {
                        let n = (b.caplen as usize).min(b.data.len());
                        frames.push((legacy_link, b.data.get(..n).unwrap_or(b.data).to_vec()));
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => if_links.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        if_links.push(idb.linktype.0 as u32)
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let link = if_links.get(epb.if_id as usize).copied().unwrap_or(1);
                        let n = (epb.caplen as usize).min(epb.data.len());
                        frames.push((link, epb.data.get(..n).unwrap_or(epb.data).to_vec()));
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let link = if_links.first().copied().unwrap_or(1);
                        frames.push((link, spb.data.to_vec()));
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
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
    Some(frames)
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else {
            let name = p.to_string_lossy();
            if !name.ends_with(".txt") && !name.ends_with(".md") {
                out.push(p);
            }
        }
    }
}

/// tshark's UDP and TCP frame counts from the `io,phs` section: every `udp`/`tcp` line
/// that is not nested under another transport or ICMP (ICMP errors quote a UDP header;
/// tunnels over UDP repeat `udp`).
fn tshark_counts(txt: &str) -> Option<(u64, u64)> {
    let sec = txt.split("## protocol hierarchy").nth(1)?;
    let sec = sec.split("\n## ").next()?;
    let mut stack: Vec<(usize, String)> = Vec::new();
    let (mut udp, mut tcp) = (0u64, 0u64);
    for line in sec.lines() {
        let Some(fpos) = line.find("frames:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let name = line.split_whitespace().next()?.to_string();
        let frames: u64 = line[fpos + 7..].split_whitespace().next()?.parse().ok()?;
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let shadowed = stack
            .iter()
            .any(|(_, n)| matches!(n.as_str(), "udp" | "tcp" | "icmp" | "icmpv6"));
        if !shadowed {
            match name.as_str() {
                "udp" => udp += frames,
                "tcp" => tcp += frames,
                _ => {}
            }
        }
        stack.push((indent, name));
    }
    Some((udp, tcp))
}

#[derive(Default, Debug)]
struct Counts {
    frames: u64,
    udp: u64,
    tcp: u64,
    malformed: BTreeMap<&'static str, u64>,
    non_ip: u64,
    unsupported: u64,
    fragments: u64,
}

fn analyse(frames: &[(u32, Vec<u8>)]) -> Counts {
    let mut c = Counts::default();
    let mut r = Reassembler::new(ReassemblyLimits::default());
    for (i, (link, data)) in frames.iter().enumerate() {
        c.frames += 1;
        let d = decode_frame(*link, data);
        if *link == crate::capture::linktype::ETHERNET {
            // The Ethernet/IPv4/UDP fast path must agree with the general walk.
            assert_eq!(d, super::link::walk(*link, data), "frame {}", i + 1);
        }
        match d {
            Decoded::Ip {
                l4: L4::Udp { .. }, ..
            } => c.udp += 1,
            Decoded::Ip {
                l4: L4::Tcp { .. }, ..
            } => c.tcp += 1,
            Decoded::Malformed { reason, .. } => *c.malformed.entry(reason).or_default() += 1,
            Decoded::NonIp { .. } => c.non_ip += 1,
            Decoded::UnsupportedLink { .. } => c.unsupported += 1,
            Decoded::Fragment(_) => c.fragments += 1,
            Decoded::Ip { .. } => {}
        }
        let is_frag = matches!(d, Decoded::Fragment(_));
        let (mut udp_done, mut tcp_done) = (false, false);
        r.push(
            FrameRef::new(0, i as u64 + 1),
            Ts(i as i64),
            d,
            &mut |dg: Datagram<'_>| match dg.tuple.transport {
                Transport::Udp => udp_done = true,
                _ => tcp_done = true,
            },
        );
        if is_frag {
            c.udp += u64::from(udp_done);
            c.tcp += u64::from(tcp_done);
        }
    }
    c
}

/// Files whose counts differ from tshark for a known reason (checked by hand).
const KNOWN_DIFFERENT: &[(&str, &str)] = &[(
    "tests__cfgs__default__pcap__fuzz-2006-06-26-2594.pcap",
    "frame 86: TCP header cut short (data offset past the end); tshark still counts it \
     under tcp (as a malformed packet), we report decode.tcp_truncated",
)];

#[test]
fn corpus_decodes_like_tshark() {
    let root = Path::new(CORPUS);
    if !root.is_dir() {
        eprintln!("SKIP corpus_decodes_like_tshark: {CORPUS} not found");
        return;
    }
    let mut files = Vec::new();
    captures(root, &mut files);
    let started = Instant::now();
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for f in &files {
        if started.elapsed() > Duration::from_secs(300) {
            eprintln!("corpus: time budget reached, stopping");
            break;
        }
        let Some(frames) = read_frames(f) else {
            eprintln!(
                "corpus: {} not readable by pcap-parser, skipped",
                f.display()
            );
            continue;
        };
        let c = analyse(&frames);
        let txt =
            std::fs::read_to_string(format!("{}.tshark.txt", f.display())).unwrap_or_default();
        let Some((udp, tcp)) = tshark_counts(&txt) else {
            eprintln!("corpus: no protocol hierarchy for {}", f.display());
            continue;
        };
        checked += 1;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if (c.udp, c.tcp) != (udp, tcp) {
            eprintln!(
                "corpus MISMATCH {name}: ours udp {} tcp {} / tshark udp {udp} tcp {tcp} ({c:?})",
                c.udp, c.tcp
            );
            if !KNOWN_DIFFERENT.iter().any(|(n, _)| *n == name) {
                mismatches.push(name);
            }
        } else if !c.malformed.is_empty()
            || c.unsupported > 0
            || c.fragments > 0
            || std::env::var_os("SIPSCOPE_CORPUS_VERBOSE").is_some()
        {
            eprintln!("corpus ok {name} (udp {udp} tcp {tcp}), {c:?}");
        }
    }
    eprintln!("corpus: {checked} files compared");
    assert!(
        mismatches.is_empty(),
        "unexplained mismatches: {mismatches:?}"
    );
}

#[test]
fn ipip_capture_gives_inner_tcp() {
    let p = Path::new(CORPUS).join("irontec__sngrep/tests__ipip.pcap");
    let Some(frames) = read_frames(&p) else {
        eprintln!(
            "SKIP ipip_capture_gives_inner_tcp: {} not found",
            p.display()
        );
        return;
    };
    let mut tunnelled_tcp = 0;
    for (link, data) in &frames {
        if let Decoded::Ip {
            l4: L4::Tcp { payload, .. },
            tunnelled: true,
            ..
        } = decode_frame(*link, data)
        {
            assert!(
                payload.starts_with(b"SIP/2.0")
                    || payload.starts_with(b"INVITE")
                    || payload.starts_with(b"BYE")
            );
            tunnelled_tcp += 1;
        }
    }
    assert_eq!(tunnelled_tcp, 2, "tshark shows 2 frames with ip/ip/tcp");
}

/// A 64 KiB INVITE over TCP (BSD loopback link) split in five segments: the stream is
/// rebuilt whole, in order, and both FINs arrive as empty chunks.
#[test]
fn large_tcp_invite_is_reassembled() {
    let p =
        Path::new(CORPUS).join("OISF__suricata-verify/tests__sip-body-large__sip-body-large.pcap");
    let Some(frames) = read_frames(&p) else {
        eprintln!(
            "SKIP large_tcp_invite_is_reassembled: {} not found",
            p.display()
        );
        return;
    };
    let mut r = Reassembler::new(ReassemblyLimits::default());
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    let mut fins = 0;
    let mut held = Vec::new();
    for (i, (link, data)) in frames.iter().enumerate() {
        let h = r.push(
            FrameRef::new(0, i as u64 + 1),
            Ts(i as i64),
            decode_frame(*link, data),
            &mut |dg: Datagram<'_>| {
                let tcp = dg.tcp.unwrap_or_default();
                assert!(!tcp.gap_before);
                fins += usize::from(tcp.fin);
                if dg.tuple.dst.port == 5060 {
                    to_server.extend_from_slice(dg.payload);
                } else {
                    to_client.extend_from_slice(dg.payload);
                }
            },
        );
        held.push(h);
    }
    assert_eq!(
        to_server.len(),
        65_793,
        "tshark: last segment ends at seq 65794"
    );
    assert!(to_server.starts_with(b"INVITE sip:bob@target.com"));
    let text = String::from_utf8_lossy(&to_server);
    let head_end = text.find("\r\n\r\n").expect("end of headers") + 4;
    let cl: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    assert_eq!(to_server.len() - head_end, cl, "body complete");
    assert!(to_client.starts_with(b"SIP/2.0 100 Trying"));
    assert_eq!(fins, 2);
    assert_eq!(
        held.iter()
            .filter(|h| **h == Some(super::Held::TcpControl))
            .count(),
        8
    );
    let st = r.stats();
    assert_eq!(
        (st.tcp_streams, st.tcp_gaps, st.tcp_retransmitted_segments),
        (2, 0, 0)
    );
}
