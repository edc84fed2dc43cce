//! SDP carried in a multipart body (SIP-I/SIP-T trunks: SDP beside the encapsulated ISUP
//! message): the media must be found through that SDP exactly as through a plain one.

use sipscope::capture::linktype;
use sipscope::correlate::{Analysis, Association};
use sipscope::engine::{Config, analyze_paths};
use sipscope::sip::state::CallState;
use sipscope::synth::builder::{FileFormat, PcapOptions, write_capture};
use sipscope::synth::media;
use sipscope::synth::scenario::{LinkKind, Wire};
use sipscope::synth::siptext::{NameAddr, PCMU, Sdp, SdpMedia, SipMsg, Via};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
}

/// A SIP-I body: an ISUP part and an SDP part whose Content-Type is `sdp_type`.
fn sip_i_body(sdp: &str, sdp_type: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(
        b"--unique-boundary-1\r\nContent-Type: application/isup;version=itu-t92+\r\n\
          Content-Disposition: signal;handling=optional\r\n\r\n\x01\x00\x49\x00\x00\x03\r\n",
    );
    b.extend_from_slice(
        format!("--unique-boundary-1\r\nContent-Type: {sdp_type}\r\n\r\n{sdp}\r\n").as_bytes(),
    );
    b.extend_from_slice(b"--unique-boundary-1--\r\n");
    b
}

/// One answered call between two gateways whose offer and answer travel as SIP-I
/// multiparts, with 50 PCMU packets each way on the announced ports.
fn sip_i_call(sdp_type: &str) -> Analysis {
    let (a, b) = (ip(10), ip(20));
    let sip = |h: IpAddr| SocketAddr::new(h, 5060);
    let mut w = Wire::new(LinkKind::Ethernet { vlans: Vec::new() });
    let mut inv = SipMsg::request("INVITE", "sip:+4930123456@192.0.2.20", "sipi-1", 1);
    inv.via.push(Via {
        transport: "UDP".into(),
        sent_by: format!("{a}:5060"),
        branch: "z9hG4bKsipi1".into(),
        rport: None,
        received: None,
    });
    inv.from = NameAddr {
        display: None,
        uri: "sip:+4940111@192.0.2.10".into(),
        tag: Some("f1".into()),
    };
    inv.to = NameAddr::new("sip:+4930123456@192.0.2.20");
    inv.contact = Some((format!("sip:gw@{a}:5060"), None));
    let offer = Sdp::new("gw-a", 1, a, vec![SdpMedia::audio(30000, vec![PCMU])]).render();
    inv.content_type = Some("multipart/mixed;boundary=unique-boundary-1".into());
    inv.body = sip_i_body(&offer, sdp_type);
    w.udp(0, T0, sip(a), sip(b), &inv.render());

    let mut ok = SipMsg::response_to(&inv, 200, "OK");
    ok.to.tag = Some("t1".into());
    ok.contact = Some((format!("sip:gw@{b}:5060"), None));
    let answer = Sdp::new("gw-b", 2, b, vec![SdpMedia::audio(40000, vec![PCMU])]).render();
    ok.content_type = Some("multipart/mixed;boundary=unique-boundary-1".into());
    ok.body = sip_i_body(&answer, sdp_type);
    w.udp(0, T0 + 100 * MS, sip(b), sip(a), &ok.render());

    // An in-dialog request from the caller.
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        let mut m = SipMsg::request(method, "sip:gw@192.0.2.20:5060", "sipi-1", cseq);
        m.via = inv.via.clone();
        m.via[0].branch = branch.into();
        m.from = inv.from.clone();
        m.to = ok.to.clone();
        m
    };
    let ack = in_dialog("ACK", 1, "z9hG4bKsipi2");
    w.udp(0, T0 + 110 * MS, sip(a), sip(b), &ack.render());

    for k in 0..50u16 {
        let t = T0 + 200 * MS + i64::from(k) * 20 * MS;
        let p = |ssrc| media::rtp_packet(k == 0, 0, k, u32::from(k) * 160, ssrc, &[0xFF; 160]);
        let (ra, rb) = (SocketAddr::new(a, 30000), SocketAddr::new(b, 40000));
        w.udp(0, t, ra, rb, &p(0x1111));
        w.udp(0, t + MS, rb, ra, &p(0x2222));
    }

    let bye = in_dialog("BYE", 2, "z9hG4bKsipi3");
    w.udp(0, T0 + 1300 * MS, sip(a), sip(b), &bye.render());
    let bye_ok = SipMsg::response_to(&bye, 200, "OK");
    w.udp(0, T0 + 1310 * MS, sip(b), sip(a), &bye_ok.render());

    let bytes = write_capture(
        &FileFormat::Pcap(PcapOptions {
            linktype: linktype::ETHERNET,
            ..PcapOptions::default()
        }),
        &w.finish(),
    )
    .expect("pcap");
    let path = std::env::temp_dir().join(format!(
        "sipscope-sipi-{}-{}.pcap",
        std::process::id(),
        sdp_type.len()
    ));
    std::fs::write(&path, bytes).expect("write");
    let a = analyze_paths(&[path.display().to_string()], &Config::default(), None);
    let _ = std::fs::remove_file(&path);
    a.expect("analyses")
}

#[test]
fn sdp_in_a_sip_i_multipart_announces_the_media() {
    let a = sip_i_call("application/sdp");
    assert_eq!(a.calls.len(), 1);
    let call = &a.calls[0];
    assert_eq!(call.sip.state, CallState::Completed);
    assert_eq!(call.sip.sdp.len(), 1, "one offer/answer exchange");
    assert!(
        call.sip.sdp[0].answer.is_some(),
        "the answer's SDP was found too"
    );
    assert_eq!(call.streams.len(), 2, "both directions attached");
    for &i in &call.streams {
        let s = &a.streams[i];
        assert_eq!(s.association, Some(Association::Sdp), "stream {i}");
        assert!(s.announced, "stream {i} found through the SDP");
        assert_eq!(s.stats.packets, 50);
    }
}

#[test]
fn a_multipart_without_an_sdp_part_announces_nothing() {
    // The same call with the SDP part labelled as opaque data: no SDP exchange, and the
    // media is only found by the RTP heuristic.
    let a = sip_i_call("application/octet-stream");
    assert_eq!(a.calls.len(), 1);
    assert!(a.calls[0].sip.sdp.is_empty());
    assert!(a.streams.iter().all(|s| !s.announced));
    assert!(
        a.streams
            .iter()
            .all(|s| s.association != Some(Association::Sdp))
    );
}
