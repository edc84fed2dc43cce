//! Corpus comparison: `SipState` fed from the UDP payloads of every capture in
//! `../shared/pcaps` must reproduce the `## -q -z sip,stat` section of its `.tshark.txt`
//! (and agree with the `## -q -z voip,calls` table). A tiny pcap/pcapng + link/IP/UDP
//! walker of its own stands in for the real decoder (written elsewhere). Captures whose SIP
//! rides on TCP, IP fragments or tunnels are skipped with a notice: the end-to-end test
//! covers them.

use super::{CallState, SipLimits, SipOutput, SipPacket, SipState};
use crate::sip::wire::{looks_like_sip, parse};
use crate::types::{Endpoint, FiveTuple, FrameRef, Transport, Ts};
use pcap_parser::{PcapBlockOwned, PcapError, create_reader, pcapng::Block};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Default)]
struct Walk {
    /// SIP on TCP, fragments, tunnels or unknown links were seen: the comparison cannot be exact.
    unsupported: Vec<&'static str>,
}

fn be16(d: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?]))
}

/// (src, dst, udp payload) of one frame, if it is plain UDP.
fn udp_of<'a>(
    linktype: i32,
    d: &'a [u8],
    w: &mut Walk,
) -> Option<(IpAddr, IpAddr, u16, u16, &'a [u8])> {
    let ip = match linktype {
        1 => {
            let mut off = 12;
            let mut et = be16(d, off)?;
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = be16(d, off)?;
            }
            off += 2;
            match et {
                0x0800 | 0x86dd => d.get(off..)?,
                0x8864 => {
                    let ppp = be16(d, off + 6)?;
                    if ppp != 0x0021 && ppp != 0x0057 {
                        return None;
                    }
                    d.get(off + 8..)?
                }
                _ => return None,
            }
        }
        113 => d.get(16..)?,
        276 => d.get(20..)?,
        0 | 108 => d.get(4..)?,
        101 | 12 | 14 | 228 | 229 => d,
        _ => {
            w.unsupported.push("link type");
            return None;
        }
    };
    let v = ip.first()? >> 4;
    let (src, dst, proto, l4) = if v == 4 {
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        let frag = be16(ip, 6)?;
        let total = usize::from(be16(ip, 2)?);
        if frag & 0x3fff != 0 {
            w.unsupported.push("IP fragments");
            return None;
        }
        let s = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
        let t = Ipv4Addr::new(*ip.get(16)?, *ip.get(17)?, *ip.get(18)?, *ip.get(19)?);
        let end = total.min(ip.len());
        (IpAddr::V4(s), IpAddr::V4(t), *ip.get(9)?, ip.get(ihl..end)?)
    } else if v == 6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(ip.get(8..24)?);
        let mut b = [0u8; 16];
        b.copy_from_slice(ip.get(24..40)?);
        let mut nh = *ip.get(6)?;
        let mut off = 40;
        while matches!(nh, 0 | 43 | 60) {
            nh = *ip.get(off)?;
            off += (usize::from(*ip.get(off + 1)?) + 1) * 8;
        }
        if nh == 44 {
            w.unsupported.push("IP fragments");
            return None;
        }
        (
            IpAddr::V6(Ipv6Addr::from(a)),
            IpAddr::V6(Ipv6Addr::from(b)),
            nh,
            ip.get(off..)?,
        )
    } else {
        return None;
    };
    match proto {
        17 => {
            let sp = be16(l4, 0)?;
            let dp = be16(l4, 2)?;
            let len = usize::from(be16(l4, 4)?);
            let end = if len >= 8 {
                len.min(l4.len())
            } else {
                l4.len()
            };
            Some((src, dst, sp, dp, l4.get(8..end)?))
        }
        6 => {
            let doff = usize::from(l4.get(12)? >> 4) * 4;
            if l4.get(doff..).is_some_and(looks_like_sip) {
                w.unsupported.push("SIP over TCP");
            }
            None
        }
        4 | 41 | 47 => {
            w.unsupported.push("tunnel");
            None
        }
        _ => None,
    }
}

/// Feed a capture; None when pcap-parser cannot read it.
fn run(path: &Path) -> Option<(SipOutput, Walk)> {
    let f = std::fs::File::open(path).ok()?;
    let mut rd = create_reader(1 << 20, f).ok()?;
    let mut st = SipState::new(SipLimits::default());
    let mut w = Walk::default();
    let mut legacy_lt = 1;
    let mut nanos = false;
    let mut ifs: Vec<(i32, u64, i64)> = Vec::new();
    let mut frame = 0u64;
    let mut guard = 0u32;
    loop {
        guard += 1;
        if guard > 5_000_000 {
            break;
        }
        match rd.next() {
            Ok((off, block)) => {
                let pkt: Option<(i32, Ts, &[u8])> = match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_lt = h.network.0;
                        nanos = h.is_nanosecond_precision();
                        None
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let frac = i64::from(b.ts_usec) * if nanos { 1 } else { 1000 };
                        Some((
                            legacy_lt,
                            Ts(i64::from(b.ts_sec) * 1_000_000_000 + frac),
                            b.data,
                        ))
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        ifs.push((
                            i32::from(idb.linktype.0 as u16),
                            idb.ts_resolution().unwrap_or(1_000_000),
                            idb.ts_offset(),
                        ));
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (lt, res, tso) = ifs
                            .get(epb.if_id as usize)
                            .copied()
                            .unwrap_or((1, 1_000_000, 0));
                        let (s, frac) = epb.decode_ts(tso.max(0) as u64, res);
                        let ns = i64::from(s) * 1_000_000_000
                            + (i128::from(frac) * 1_000_000_000 / i128::from(res.max(1))) as i64;
                        Some((lt, Ts(ns), epb.data))
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let lt = ifs.first().map(|x| x.0).unwrap_or(1);
                        Some((lt, Ts(0), spb.data))
                    }
                    _ => None,
                };
                if let Some((lt, ts, data)) = pkt {
                    frame += 1;
                    if let Some((s, d, sp, dp, payload)) = udp_of(lt, data, &mut w)
                        && looks_like_sip(payload)
                        && let Some(m) = parse(payload)
                    {
                        let msg = Arc::new(m);
                        let sdp = crate::sip::state::message_sdp(&msg);
                        let p = SipPacket {
                            msg: &msg,
                            frame: FrameRef::new(0, frame),
                            ts,
                            tuple: FiveTuple {
                                src: Endpoint::new(s, sp),
                                dst: Endpoint::new(d, dp),
                                transport: Transport::Udp,
                            },
                            size: payload.len(),
                            fragmented: false,
                            sdp: sdp.as_ref(),
                        };
                        st.on_message(&p);
                    }
                }
                rd.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if rd.refill().is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some((st.finish(), w))
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    messages: u64,
    resent: u64,
    responses: BTreeMap<u16, u64>,
    requests: BTreeMap<String, u64>,
    setup: (u64, u64, u64),
}

fn section<'a>(txt: &'a str, name: &str) -> Option<&'a str> {
    let start = txt.find(name)?;
    let rest = txt.get(start + name.len()..)?;
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest.get(..end)
}

fn expected_stat(txt: &str) -> Option<Expected> {
    let s = section(txt, "## -q -z sip,stat")?;
    let mut e = Expected::default();
    let mut in_codes = false;
    let num = |l: &str| {
        l.split(':')
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    for l in s.lines() {
        if let Some(v) = l.strip_prefix("Number of SIP messages:") {
            e.messages = v.trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix("Number of resent SIP messages:") {
            e.resent = v.trim().parse().ok()?;
        } else if l.starts_with("* SIP Status Codes") {
            in_codes = true;
        } else if l.starts_with("* List of SIP Request") {
            in_codes = false;
        } else if let Some(v) = l.strip_prefix("* Average setup time") {
            e.setup.0 = v.trim().trim_end_matches("ms").trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix(" Min") {
            e.setup.1 = v.trim().trim_end_matches("ms").trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix(" Max") {
            e.setup.2 = v.trim().trim_end_matches("ms").trim().parse().ok()?;
        } else if l.ends_with("Packets") {
            let (name, _) = l.rsplit_once(':')?;
            let n = num(&format!(":{}", l.rsplit_once(':')?.1))?;
            if in_codes {
                let code = name.trim().strip_prefix("SIP ")?.get(..3)?.parse().ok()?;
                e.responses.insert(code, n);
            } else {
                e.requests.insert(name.trim().to_string(), n);
            }
        }
    }
    Some(e)
}

fn ours_stat(o: &SipOutput) -> Expected {
    let s = &o.stats;
    let setup = s
        .setup_time_ms
        .map(|t| (t.avg as u64, t.min as u64, t.max as u64))
        .unwrap_or((0, 0, 0));
    Expected {
        messages: s.messages,
        resent: s.resent,
        responses: s.responses.clone(),
        requests: s.requests.clone(),
        setup,
    }
}

/// (call-id, state text) rows of the voip,calls table.
fn expected_calls(txt: &str) -> Vec<(String, String)> {
    let Some(s) = section(txt, "## -q -z voip,calls") else {
        return Vec::new();
    };
    s.lines()
        .filter_map(|l| {
            let cid = l.split("call-id=").nth(1)?.trim().to_string();
            let mut it = l.split_whitespace();
            it.next()?.parse::<f64>().ok()?;
            it.next()?.parse::<f64>().ok()?;
            let after = l
                .trim_start()
                .splitn(3, char::is_whitespace)
                .nth(2)?
                .trim_start();
            let after = after.get(
                after.find(|c: char| !c.is_whitespace() && !c.is_ascii_digit() && c != '.')?..,
            )?;
            let state = after.split("re-INVITEs=").next()?.trim().to_string();
            Some((cid, state))
        })
        .collect()
}

fn state_agrees(ours: CallState, code: Option<u16>, theirs: &str) -> bool {
    let code_in = |t: &str| {
        t.split('(')
            .nth(1)
            .and_then(|x| x.trim_end_matches(')').parse::<u16>().ok())
    };
    match ours {
        CallState::CallSetup | CallState::Ringing => theirs.starts_with("CALL SETUP"),
        CallState::InCall => theirs.starts_with("IN CALL"),
        CallState::Completed => theirs == "COMPLETED" || theirs == "BYE without 2xx",
        CallState::Cancelled => {
            theirs.starts_with("CANCELLED") && code_in(theirs).is_none_or(|c| Some(c) == code)
        }
        CallState::Rejected => {
            (theirs.starts_with("REJECTED") && code_in(theirs) == code)
                || theirs == "BYE without 2xx"
        }
        CallState::Unknown => false,
    }
}

fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let Ok(dirs) = std::fs::read_dir("../shared/pcaps") else {
        return v;
    };
    for d in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if !p.to_string_lossy().ends_with(".tshark.txt") && p.is_file() {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn corpus_matches_tshark_sip_stat_and_voip_calls() {
    let caps = captures();
    if caps.is_empty() {
        eprintln!("SKIP: ../shared/pcaps not present");
        return;
    }
    let mut stat_bad = Vec::new();
    let mut calls_bad = Vec::new();
    let mut compared = 0;
    let mut call_rows = 0;
    for p in caps.iter().take(500) {
        let txt_path = PathBuf::from(format!("{}.tshark.txt", p.display()));
        let Ok(txt) = std::fs::read_to_string(&txt_path) else {
            continue;
        };
        let Some(exp) = expected_stat(&txt) else {
            continue;
        };
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((out, w)) = run(p) else {
            eprintln!("SKIP {name}: not readable by the test's pcap reader");
            continue;
        };
        let ours = ours_stat(&out);
        if !w.unsupported.is_empty() && ours != exp {
            let mut u = w.unsupported.clone();
            u.sort();
            u.dedup();
            eprintln!("SKIP {name}: {u:?} (covered end-to-end)");
            continue;
        }
        compared += 1;
        if ours != exp {
            stat_bad.push(format!("{name}:\n  tshark {exp:?}\n  ours   {ours:?}"));
        }
        let rows = expected_calls(&txt);
        let by_id: BTreeMap<&str, &super::SipCall> =
            out.calls.iter().map(|c| (c.call_id.as_str(), c)).collect();
        call_rows += rows.len();
        for (cid, st) in &rows {
            match by_id.get(cid.as_str()) {
                Some(c) if state_agrees(c.state, c.final_code, st) => {}
                Some(c) => calls_bad.push(format!(
                    "{name} {cid}: tshark '{st}', ours {:?} {:?}",
                    c.state, c.final_code
                )),
                None => calls_bad.push(format!("{name} {cid}: tshark '{st}', ours: no call")),
            }
        }
        if rows.len() != out.calls.len() && !rows.is_empty() {
            calls_bad.push(format!(
                "{name}: {} calls in tshark table, {} ours",
                rows.len(),
                out.calls.len()
            ));
        }
    }
    eprintln!("compared {compared} captures, {call_rows} voip,calls rows");
    for b in &stat_bad {
        eprintln!("SIP,STAT MISMATCH {b}");
    }
    for b in calls_bad.iter().take(50) {
        eprintln!("VOIP,CALLS MISMATCH {b}");
    }
    assert!(compared > 10, "too few captures compared");
    assert!(call_rows > 100, "too few calls compared");
    assert!(
        stat_bad.is_empty(),
        "{} sip,stat mismatches",
        stat_bad.len()
    );
    assert!(
        calls_bad.is_empty(),
        "{} voip,calls mismatches",
        calls_bad.len()
    );
}
