//! The committed fixtures: small captures, one per behaviour the analyzer must get right,
//! each with an `expect.json` stating what must be found. Expectations come from the
//! scenario parameters (see `scenario::Truth`), never from running an analyzer; the tshark
//! test below cross-checks the counts tshark can see (SIP messages, resent, RTP packets
//! and loss per stream) and that tshark reports no malformed packets or bad checksums.

use super::builder::{
    Endian, FileFormat, Packet, PcapOptions, PcapngInterface, TsResolution, gzip, write_capture,
};
use super::media::Impairments;
use super::scenario::{
    CallScenario, Endpoint, LinkKind, MediaFlow, Nat, Outcome, RegisterScenario, SipTransport,
    Truth, Wire,
};
use crate::capture::linktype;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// One fixture: its files (`<name>.pcap` etc. plus `<name>.expect.json`) and expectations.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    pub name: &'static str,
    pub description: &'static str,
    /// (file name, bytes), the capture first; the expect file is added by [`write_fixtures`].
    pub files: Vec<(String, Vec<u8>)>,
    pub expect: Value,
}

/// 2024-01-01T00:00:00Z: all fixtures start here so they sort and diff nicely.
pub const EPOCH_NS: i64 = 1_704_067_200 * 1_000_000_000;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn alice() -> Endpoint {
    Endpoint::new("alice", "example.com", v4(10, 0, 0, 10), 40000)
}

fn bob() -> Endpoint {
    Endpoint::new("bob", "example.com", v4(203, 0, 113, 5), 50000)
}

fn eth() -> LinkKind {
    LinkKind::Ethernet { vlans: Vec::new() }
}

fn pcap_us() -> FileFormat {
    FileFormat::Pcap(PcapOptions::default())
}

struct Built {
    packets: Vec<Packet>,
    truth: Truth,
}

fn run_call(c: &CallScenario, w: Wire) -> Built {
    let mut w = w;
    let mut truth = Truth {
        state_sequence_errors: true,
        ..Default::default()
    };
    c.emit(&mut w, &mut truth);
    Built {
        packets: w.finish(),
        truth,
    }
}

fn make(
    name: &'static str,
    description: &'static str,
    ext: &str,
    fmt: &FileFormat,
    b: Built,
    gz: bool,
) -> Fixture {
    // Fixture generation is pure in-memory work; a failure here is a programming error.
    let mut bytes = write_capture(fmt, &b.packets).unwrap_or_default();
    if gz {
        bytes = gzip(&bytes).unwrap_or_default();
    }
    Fixture {
        name,
        description,
        files: vec![(format!("{name}.{ext}"), bytes)],
        expect: b.truth.to_json(description),
    }
}

fn normal_call() -> Fixture {
    let mut c = CallScenario::new("normal-call-1@10.0.0.10", 101, EPOCH_NS, alice(), bob());
    c.talk_ms = 4000;
    c.caller_ssrc = 0x1111_1111;
    c.callee_ssrc = 0x2222_2222;
    c.rtcp = true;
    c.rtcp_interval_ms = 2000;
    c.ring_ms = 2000;
    make(
        "normal-call",
        "INVITE/100/180/200/ACK/BYE/200 over UDP; PCMU both ways for 4 s with RTCP SR+SDES every 2 s and SR+SDES+BYE at the end",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn failed_call() -> Fixture {
    let mut c = CallScenario::new("failed-call-1@10.0.0.10", 102, EPOCH_NS, alice(), bob());
    c.outcome = Outcome::Rejected {
        code: 486,
        reason: "Busy Here".into(),
    };
    c.ring_ms = 1500;
    c.media = MediaFlow::None;
    make(
        "failed-call",
        "INVITE/100/180/486 Busy Here/ACK; no media",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn cancelled_call() -> Fixture {
    let mut c = CallScenario::new("cancelled-call-1@10.0.0.10", 103, EPOCH_NS, alice(), bob());
    c.outcome = Outcome::Cancelled;
    c.ring_ms = 3000;
    c.media = MediaFlow::None;
    make(
        "cancelled-call",
        "INVITE/100/180, caller CANCELs after 3 s: 200 (CANCEL), 487 Request Terminated, ACK",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn register_challenge() -> Fixture {
    let ua = Endpoint::new("carol", "example.com", v4(10, 0, 0, 30), 0);
    let mut r = RegisterScenario::new(104, EPOCH_NS, ua, SocketAddr::new(v4(203, 0, 113, 1), 5060));
    r.challenge = true;
    r.expires = 3600;
    r.granted = 120;
    r.refreshes = 1;
    r.refresh_ms = 60_000;
    r.options = 1;
    r.options_answered = true;
    r.crlf_keepalives = 2;
    r.unregister = true;
    let mut w = Wire::new(eth());
    let mut truth = Truth::default();
    r.emit(&mut w, &mut truth);
    make(
        "register-challenge",
        "REGISTER → 401 (digest challenge) → REGISTER with credentials → 200 (expires=120); two CRLF keepalives (not SIP messages) and an OPTIONS ping answered 200; a refresh after 60 s → 200; unregister (Expires: 0) → 200",
        "pcap",
        &pcap_us(),
        Built {
            packets: w.finish(),
            truth,
        },
        false,
    )
}

fn tcp_sip() -> Fixture {
    let mut c = CallScenario::new("tcp-sip-1@10.0.0.10", 105, EPOCH_NS, alice(), bob());
    c.transport = SipTransport::Tcp {
        split_invite: true,
        coalesce_provisional: true,
    };
    c.talk_ms = 3000;
    make(
        "tcp-sip",
        "A call over TCP (handshake, proper seq/ack): the INVITE is split across two segments; 100 Trying and 180 Ringing travel in one segment; PCMU both ways over UDP",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn fragmented_invite() -> Fixture {
    let mut c = CallScenario::new(
        "fragmented-invite-1@10.0.0.10",
        106,
        EPOCH_NS,
        alice(),
        bob(),
    );
    c.sdp_padding = 2600;
    c.talk_ms = 3000;
    let mut w = Wire::new(eth());
    w.frag_order = vec![2, 0, 1];
    make(
        "fragmented-invite",
        "INVITE with a ~3 KB SDP over UDP, sent as three IPv4 fragments delivered out of order (last, first, middle); the rest of the call is normal",
        "pcap",
        &pcap_us(),
        run_call(&c, w),
        false,
    )
}

fn rtp_impairments() -> Fixture {
    let mut c = CallScenario::new("rtp-impairments-1@10.0.0.10", 107, EPOCH_NS, alice(), bob());
    c.talk_ms = 4000;
    c.caller_ssrc = 0x3333_3333;
    c.callee_ssrc = 0x4444_4444;
    c.caller_start_seq = 1000;
    c.callee_start_seq = 20000;
    c.caller_impair = Impairments {
        drop_seqs: vec![1050, 1051, 1100],
        loss_ratio: 0.0,
        jitter_ms: 4.0,
        delays: vec![(1150, 60)],
        duplicate_seqs: vec![1180, 1181],
    };
    c.callee_impair = Impairments {
        loss_ratio: 0.02,
        jitter_ms: 8.0,
        ..Default::default()
    };
    c.rtcp = true;
    c.rtcp_interval_ms = 2000;
    make(
        "rtp-impairments",
        "Answered call; alice→bob loses seq 1050-1051 and 1100, seq 1150 arrives 60 ms late (reordered), 1180 and 1181 are duplicated, up to 4 ms jitter; bob→alice has 2 % seeded random loss and up to 8 ms jitter; RTCP reports the loss",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn ssrc_change() -> Fixture {
    let mut c = CallScenario::new("ssrc-change-1@10.0.0.10", 108, EPOCH_NS, alice(), bob());
    c.talk_ms = 4000;
    c.caller_ssrc = 0x5555_5555;
    c.callee_ssrc = 0x6666_6666;
    c.caller_ssrc_change = Some((100, 0x5555_AAAA));
    make(
        "ssrc-change",
        "Answered call; after 2 s alice's stream restarts with a new SSRC, sequence and timestamp base on the same 5-tuple (two streams)",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn dtmf() -> Fixture {
    let mut c = CallScenario::new("dtmf-1@10.0.0.10", 109, EPOCH_NS, alice(), bob());
    c.talk_ms = 4000;
    c.caller_ssrc = 0x7777_7777;
    c.dtmf = vec!['1', '2', '3'];
    make(
        "dtmf",
        "Answered call with telephone-event/8000 (PT 101) negotiated; alice sends RFC 4733 digits 1, 2, 3 (100 ms each, end packet sent three times) inside her PCMU stream",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn nat_media() -> Fixture {
    let mut a = alice();
    a.ip = v4(198, 51, 100, 7);
    a.sip_port = 5062;
    a.rtp_port = 40002;
    a.nat = Some(Nat {
        private_ip: v4(192, 168, 1, 10),
        private_sip_port: 5060,
        private_rtp_port: 40000,
    });
    let mut c = CallScenario::new("nat-media-1@192.168.1.10", 110, EPOCH_NS, a, bob());
    c.talk_ms = 4000;
    c.caller_ssrc = 0x8888_8888;
    c.callee_ssrc = 0x9999_9999;
    make(
        "nat-media",
        "Caller behind NAT: Via/Contact/SDP say 192.168.1.10:5060 / 192.168.1.10:40000, the wire carries 198.51.100.7:5062 and media from the translated port 198.51.100.7:40002; bob latches onto the public address",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn ipv6_vlan() -> Fixture {
    let a = Endpoint::new(
        "alice",
        "example.com",
        "2001:db8::10".parse().unwrap_or(v4(0, 0, 0, 0)),
        40000,
    );
    let b = Endpoint::new(
        "bob",
        "example.com",
        "2001:db8:1::5".parse().unwrap_or(v4(0, 0, 0, 0)),
        50000,
    );
    let mut c = CallScenario::new("ipv6-vlan-1@2001-db8--10", 111, EPOCH_NS, a, b);
    c.talk_ms = 3000;
    let fmt = FileFormat::Pcap(PcapOptions {
        resolution: TsResolution::Nano,
        ..PcapOptions::default()
    });
    make(
        "ipv6-vlan",
        "A normal call over IPv6 inside 802.1Q VLAN 100 (nanosecond pcap)",
        "pcap",
        &fmt,
        run_call(&c, Wire::new(LinkKind::Ethernet { vlans: vec![100] })),
        false,
    )
}

fn pcapng_multi_if() -> Fixture {
    let mut c = CallScenario::new("pcapng-multi-if-1@10.0.0.10", 112, EPOCH_NS, alice(), bob());
    c.talk_ms = 3000;
    c.rtcp = true;
    let mut w = Wire::new(LinkKind::Sll);
    w.links.push(eth());
    w.sip_iface = 0;
    w.media_iface = 1;
    let mut b = run_call(&c, w);
    if let Some(p) = b.packets.first_mut() {
        p.comment = Some("first INVITE of the call".into());
    }
    let fmt = FileFormat::Pcapng {
        endian: Endian::Little,
        interfaces: vec![
            PcapngInterface {
                linktype: linktype::LINUX_SLL,
                snaplen: 0,
                tsresol: 9,
                name: Some("any".into()),
            },
            PcapngInterface {
                linktype: linktype::ETHERNET,
                snaplen: 0,
                tsresol: 9,
                name: Some("eth1".into()),
            },
        ],
        drops: vec![(0, 0), (1, 3)],
    };
    make(
        "pcapng-multi-if",
        "pcapng with two interfaces at ns resolution: SIP captured on a Linux SLL interface, RTP/RTCP on an Ethernet interface; a packet comment on the INVITE; ISBs report 3 drops on the second interface",
        "pcapng",
        &fmt,
        b,
        false,
    )
}

fn invite_timeout() -> Fixture {
    let mut c = CallScenario::new("invite-timeout-1@10.0.0.10", 113, EPOCH_NS, alice(), bob());
    c.outcome = Outcome::NoAnswer;
    make(
        "invite-timeout",
        "INVITE never answered: retransmitted at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s (Timer A doubling from T1 = 500 ms) until Timer B",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

fn no_ack() -> Fixture {
    let mut c = CallScenario::new("no-ack-1@10.0.0.10", 114, EPOCH_NS, alice(), bob());
    c.outcome = Outcome::NoAck;
    c.media = MediaFlow::None;
    c.ring_ms = 1000;
    make(
        "no-ack",
        "200 OK never ACKed: retransmitted (T1 doubling, capped at T2 = 4 s), callee sends BYE after 32 s; gzip-compressed pcap",
        "pcap.gz",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        true,
    )
}

fn early_media_auth() -> Fixture {
    let mut c = CallScenario::new(
        "early-media-auth-1@10.0.0.10",
        115,
        EPOCH_NS,
        alice(),
        bob(),
    );
    c.auth = Some(true);
    c.early_media = true;
    c.ring_ms = 2000;
    c.talk_ms = 3000;
    c.callee_ssrc = 0xABCD_0001;
    make(
        "early-media-auth",
        "INVITE → 407 Proxy Authentication Required → ACK → INVITE with credentials → 100 → 180 → 183 with SDP and early media from bob → 200 → ACK → talk → BYE",
        "pcap",
        &pcap_us(),
        run_call(&c, Wire::new(eth())),
        false,
    )
}

/// All fixtures, in a stable order.
pub fn fixtures() -> Vec<Fixture> {
    vec![
        normal_call(),
        failed_call(),
        cancelled_call(),
        register_challenge(),
        tcp_sip(),
        fragmented_invite(),
        rtp_impairments(),
        ssrc_change(),
        dtmf(),
        nat_media(),
        ipv6_vlan(),
        pcapng_multi_if(),
        invite_timeout(),
        no_ack(),
        early_media_auth(),
    ]
}

fn expect_bytes(f: &Fixture) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(&f.expect).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

/// All files of all fixtures (captures and `<name>.expect.json`).
pub fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in fixtures() {
        let e = expect_bytes(&f);
        out.extend(f.files);
        out.push((format!("{}.expect.json", f.name), e));
    }
    out
}

/// Writes every fixture file into `dir` (created if needed); returns the paths written.
pub fn write_fixtures(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for (name, bytes) in fixture_files() {
        let p = dir.join(name);
        std::fs::write(&p, bytes)?;
        paths.push(p);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }

    #[test]
    fn fixtures_are_deterministic() {
        assert_eq!(fixture_files(), fixture_files());
    }

    #[test]
    fn fixtures_are_small_and_named() {
        let all = fixtures();
        assert!(all.len() >= 12);
        for f in &all {
            for (n, b) in &f.files {
                assert!(n.starts_with(f.name));
                assert!(b.len() < 100 * 1024, "{n} is {} bytes", b.len());
                assert!(b.len() > 24, "{n} is empty");
            }
            assert_eq!(f.expect["description"], f.description);
        }
    }

    #[test]
    fn fixtures_are_up_to_date() {
        let dir = fixtures_dir();
        if std::env::var("SIPSCOPE_REGEN_FIXTURES").as_deref() == Ok("1") {
            write_fixtures(&dir).expect("write fixtures");
            return;
        }
        let mut stale = Vec::new();
        for (name, bytes) in fixture_files() {
            match std::fs::read(dir.join(&name)) {
                Ok(on_disk) if on_disk == bytes => {}
                _ => stale.push(name),
            }
        }
        assert!(
            stale.is_empty(),
            "fixtures out of date: {stale:?}; regenerate with `SIPSCOPE_REGEN_FIXTURES=1 cargo test --lib synth::fixture` and commit fixtures/"
        );
    }

    fn tshark(args: &[&str]) -> Option<String> {
        let out = Command::new("tshark").args(args).output().ok()?;
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn number_after(text: &str, label: &str) -> Option<u64> {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(label)
                .and_then(|r| r.trim().parse().ok())
        })
    }

    /// (src, sport, dst, dport, ssrc) → (packets, lost) from `-z rtp,streams`.
    fn rtp_rows(text: &str) -> Vec<(String, String, u32, i64)> {
        let mut rows = Vec::new();
        for l in text.lines() {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 10 || !c[6].starts_with("0x") {
                continue;
            }
            let src = format!("{}:{}", c[2], c[3]);
            let dst = format!("{}:{}", c[4], c[5]);
            // the payload column may contain ", " so locate "(x%)" after the lost count
            let Some(pct) = c
                .iter()
                .position(|t| t.starts_with('(') && t.ends_with("%)"))
            else {
                continue;
            };
            let (Some(pk), Some(lo)) = (c.get(pct.wrapping_sub(2)), c.get(pct.wrapping_sub(1)))
            else {
                continue;
            };
            let (Ok(p), Ok(lost)) = (pk.parse(), lo.parse()) else {
                continue;
            };
            rows.push((
                format!("{src}>{dst}"),
                c[6].to_ascii_uppercase().replace("0X", "0x"),
                p,
                lost,
            ));
        }
        rows
    }

    fn addr_plain(s: &str) -> String {
        // tshark prints IPv6 without brackets
        match s.parse::<SocketAddr>() {
            Ok(a) => format!("{}:{}", a.ip(), a.port()),
            Err(_) => s.to_string(),
        }
    }

    #[test]
    fn tshark_agrees_with_expectations() {
        if tshark(&["--version"]).is_none() {
            eprintln!("tshark not installed: skipping tshark cross-check");
            return;
        }
        let dir = std::env::temp_dir().join(format!("sipscope-synth-{}", std::process::id()));
        let paths = write_fixtures(&dir).expect("write");
        let mut failures = Vec::new();
        for f in fixtures() {
            let Some(file) = paths
                .iter()
                .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(&f.files[0].0))
            else {
                continue;
            };
            let fp = file.to_string_lossy().to_string();
            let sip = tshark(&["-r", &fp, "-q", "-z", "sip,stat"]).unwrap_or_default();
            let n = number_after(&sip, "Number of SIP messages:");
            let r = number_after(&sip, "Number of resent SIP messages:");
            if n != f.expect["sip_messages"].as_u64() {
                failures.push(format!(
                    "{}: sip_messages tshark {n:?} expect {}",
                    f.name, f.expect["sip_messages"]
                ));
            }
            if r != f.expect["sip_resent"].as_u64() {
                failures.push(format!(
                    "{}: sip_resent tshark {r:?} expect {}",
                    f.name, f.expect["sip_resent"]
                ));
            }
            let rtp = tshark(&[
                "-r",
                &fp,
                "-o",
                "rtp.heuristic_rtp:TRUE",
                "-q",
                "-z",
                "rtp,streams",
            ])
            .unwrap_or_default();
            let rows = rtp_rows(&rtp);
            let streams = f.expect["streams"].as_array().cloned().unwrap_or_default();
            if rows.len() != streams.len() {
                failures.push(format!(
                    "{}: tshark sees {} streams, expect {}",
                    f.name,
                    rows.len(),
                    streams.len()
                ));
            }
            for s in &streams {
                let key = format!(
                    "{}>{}",
                    addr_plain(s["src"].as_str().unwrap_or("")),
                    addr_plain(s["dst"].as_str().unwrap_or(""))
                );
                let ssrc = s["ssrc"].as_str().unwrap_or("").to_string();
                match rows.iter().find(|r| r.0 == key && r.1 == ssrc) {
                    Some(row) => {
                        if Some(u64::from(row.2)) != s["packets"].as_u64()
                            || Some(row.3) != s["lost"].as_i64()
                        {
                            failures.push(format!(
                                "{}: {key} {ssrc}: tshark {}/{} expect {}/{}",
                                f.name, row.2, row.3, s["packets"], s["lost"]
                            ));
                        }
                    }
                    None => failures.push(format!(
                        "{}: stream {key} {ssrc} not seen by tshark",
                        f.name
                    )),
                }
            }
            let expert = tshark(&[
                "-r",
                &fp,
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "udp.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
                "-o",
                "rtp.heuristic_rtp:TRUE",
                "-q",
                "-z",
                "expert",
            ])
            .unwrap_or_default();
            for bad in [
                "Malformed",
                "malformed",
                "Bad checksum",
                "checksum is incorrect",
                "[incorrect",
            ] {
                if expert.contains(bad) {
                    failures.push(format!("{}: tshark expert says {bad}:\n{expert}", f.name));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
