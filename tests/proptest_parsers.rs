//! Property tests over the parsers: arbitrary and mutated-valid input never panics and
//! never yields a span or length outside its input; structured messages built by the
//! synth SIP builder parse back to what was built.
//!
//! Mutated-valid inputs (a well-formed frame/message with bytes overwritten, inserted or
//! cut) reach far deeper into the parsers than uniform random bytes, which mostly stop
//! at the first check.

#![forbid(unsafe_code)]

use proptest::prelude::*;
use sipscope::capture::linktype;
use sipscope::decode::{Decoded, L4, decode_frame};
use sipscope::rtp::{self, rtcp};
use sipscope::sip::wire::{self, Method, StartLine, StreamFrame};
use sipscope::synth::media;
use sipscope::synth::packet::{self, Link};
use sipscope::synth::siptext::{NameAddr, PCMU, Sdp, SdpMedia, SipMsg, Via};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const LINKS: [u32; 13] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::PPP,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    linktype::RAW_BSD12,
    linktype::RAW_BSD14,
    linktype::PPP_ETHER,
    147,
];

/// One edit applied to a valid input.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        1 => (any::<usize>(), 1usize..32).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut v: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = v.len().max(1);
        match e {
            Edit::Set(i, b) => {
                if let Some(x) = v.get_mut(i % n) {
                    *x = *b;
                }
            }
            Edit::Insert(i, bytes) => {
                let at = i % (v.len() + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Edit::Remove(i, k) => {
                let at = i % n;
                let end = at.saturating_add(*k).min(v.len());
                if at < end {
                    v.drain(at..end);
                }
            }
            Edit::Truncate(i) => v.truncate(i % n),
        }
    }
    v
}

fn ip_of(v6: bool, last: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(last)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }
}

/// A valid frame on one of the link types the builder can produce, carrying UDP or TCP.
fn valid_frame() -> impl Strategy<Value = (u32, Vec<u8>)> {
    (
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..200),
        any::<u16>(),
    )
        .prop_map(|(lk, v6, tcp, payload, port)| {
            let (s, d) = (ip_of(v6, 1), ip_of(v6, 2));
            let ipp = if tcp {
                let seg = packet::tcp(s, port, d, 5060, 1, 0, 0x18, 1000, &payload);
                packet::ip(s, d, 6, 7, &seg)
            } else {
                packet::udp_ip(s, port, d, 5060, 7, &payload)
            };
            let link = match lk {
                0 => Link::Raw,
                1 => Link::Sll {
                    pkttype: 0,
                    addr: [2, 0, 0, 0, 0, 1],
                },
                2 => Link::Ethernet {
                    src: [2; 6],
                    dst: [4; 6],
                    vlans: vec![],
                },
                _ => Link::Ethernet {
                    src: [2; 6],
                    dst: [4; 6],
                    vlans: vec![10, 20],
                },
            };
            (link.linktype(), link.wrap(&ipp))
        })
}

/// The payload a decode result points at lies inside the frame (no invented bytes).
fn check_decoded(frame: &[u8], d: Decoded<'_>) {
    let inside = |p: &[u8]| {
        let (o, i) = (frame.as_ptr() as usize, p.as_ptr() as usize);
        p.is_empty() || (i >= o && i + p.len() <= o + frame.len())
    };
    match d {
        Decoded::Ip {
            l4: L4::Udp { payload, .. } | L4::Tcp { payload, .. },
            ..
        } => assert!(inside(payload)),
        Decoded::Fragment(f) => assert!(inside(f.data)),
        _ => {}
    }
}

fn check_sip(data: &[u8]) {
    let _ = wire::looks_like_sip(data);
    if let Some(m) = wire::parse(data) {
        let n = m.raw.len() as u32;
        let ok = |s: &std::ops::Range<u32>| s.start <= s.end && s.end <= n;
        assert!(ok(&m.start_line), "start line {:?}", m.start_line);
        assert!(ok(&m.body), "body {:?}", m.body);
        let (StartLine::Request { uri: s, .. } | StartLine::Response { reason: s, .. }) = &m.start;
        assert!(ok(s));
        for h in &m.headers {
            assert!(ok(&h.name) && ok(&h.value) && ok(&h.line), "{h:?}");
        }
        let _ = (m.call_id(), m.cseq(), m.vias(), m.from_hdr(), m.contacts());
        if let Some(sdp) = m.sdp_body() {
            // The SDP (whole body or a multipart's part) lies inside the body.
            let body = m.body_bytes();
            let (b0, s0) = (body.as_ptr() as usize, sdp.as_ptr() as usize);
            assert!(
                s0 >= b0 && s0 + sdp.len() <= b0 + body.len(),
                "SDP outside the body"
            );
        }
    }
}

fn check_stream(data: &[u8]) {
    let mut rest = data;
    // Each step consumes at least one byte or stops: at most len+1 steps.
    for _ in 0..=data.len() {
        let n = match wire::stream_frame(rest) {
            StreamFrame::Incomplete => return,
            StreamFrame::Complete(n) | StreamFrame::Keepalive(n) | StreamFrame::Garbage(n) => n,
        };
        assert!(n > 0, "zero-length frame at {} left", rest.len());
        assert!(n <= rest.len(), "frame {n} beyond buffer {}", rest.len());
        rest = &rest[n..];
        if rest.is_empty() {
            return;
        }
    }
    panic!("stream_frame made no progress");
}

fn sip_text() -> impl Strategy<Value = Vec<u8>> {
    (
        "[A-Za-z0-9.@-]{1,40}",
        1u32..100_000,
        prop_oneof![
            Just("INVITE"),
            Just("BYE"),
            Just("REGISTER"),
            Just("OPTIONS")
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(cid, cseq, method, compact, multipart)| {
            let mut m = SipMsg::request(method, "sip:bob@example.com", &cid, cseq);
            m.compact = compact;
            m.via.push(Via {
                transport: "UDP".into(),
                sent_by: "10.0.0.1:5060".into(),
                branch: "z9hG4bK1".into(),
                rport: Some(None),
                received: None,
            });
            m.from = NameAddr::new("sip:alice@example.com");
            m.to = NameAddr::new("sip:bob@example.com");
            let sdp = Sdp::new(
                "alice",
                1,
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                vec![SdpMedia::audio(4000, vec![PCMU])],
            );
            let m = m.with_sdp(&sdp.render());
            if !multipart {
                return m.render();
            }
            // SIP-I style: the SDP as one part of a multipart/mixed body.
            let mut mp = m.clone();
            mp.content_type = Some("multipart/mixed;boundary=bnd".into());
            let mut body = b"--bnd\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n".to_vec();
            body.extend_from_slice(b"--bnd\r\nContent-Type: application/sdp\r\n\r\n");
            body.extend_from_slice(&m.body);
            body.extend_from_slice(b"\r\n--bnd--\r\n");
            mp.body = body;
            mp.render()
        })
}

fn rtp_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..16,
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(cc, ext, pad, padlen, payload)| {
            let mut p = media::rtp_packet(false, 0, 1, 160, 0x1234_5678, &[]);
            if let Some(b) = p.first_mut() {
                *b = 0x80 | (u8::from(pad) << 5) | (u8::from(ext) << 4) | cc;
            }
            for i in 0..u32::from(cc) {
                p.extend_from_slice(&i.to_be_bytes());
            }
            if ext {
                p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
            }
            p.extend_from_slice(&payload);
            if pad {
                p.push(padlen);
            }
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn sip_parse_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        check_sip(&data);
    }

    #[test]
    fn sip_parse_mutated(msg in sip_text(), edits in prop::collection::vec(edit(), 0..8)) {
        check_sip(&apply(msg, &edits));
    }

    #[test]
    fn stream_frame_random_and_mutated(
        a in sip_text(),
        b in sip_text(),
        junk in prop::collection::vec(any::<u8>(), 0..40),
        edits in prop::collection::vec(edit(), 0..6),
    ) {
        let mut buf = a;
        buf.extend_from_slice(b"\r\n\r\n");
        buf.extend_from_slice(&junk);
        buf.extend_from_slice(&b);
        check_stream(&buf);
        check_stream(&apply(buf, &edits));
        check_stream(&junk);
    }

    #[test]
    fn sdp_parse_never_panics(
        msg in sip_text(),
        edits in prop::collection::vec(edit(), 0..8),
        random in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let body_at = msg.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
        let body = msg.get(body_at..).unwrap_or(&[]).to_vec();
        for input in [apply(body, &edits), random] {
            let s = sipscope::sdp::parse(&input);
            for m in &s.media {
                let _ = (s.media_addr(m), s.media_direction(m), m.payload_types(), m.codec(0));
            }
        }
    }

    #[test]
    fn decode_frame_every_link_type(
        (link, frame) in valid_frame(),
        edits in prop::collection::vec(edit(), 0..6),
        random in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let mutated = apply(frame.clone(), &edits);
        for l in LINKS {
            check_decoded(&frame, decode_frame(l, &frame));
            check_decoded(&mutated, decode_frame(l, &mutated));
            check_decoded(&random, decode_frame(l, &random));
        }
        // Unmutated frames on their own link type must decode to IP.
        let own = decode_frame(link, &frame);
        prop_assert!(matches!(own, Decoded::Ip { .. }), "valid frame not IP: {:?}", own);
    }

    #[test]
    fn rtp_and_rtcp_never_panic(
        pkt in rtp_packet(),
        edits in prop::collection::vec(edit(), 0..4),
        random in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        for d in [pkt.clone(), apply(pkt, &edits), random] {
            let _ = (rtp::looks_like_rtp(&d), rtp::looks_like_rtcp(&d));
            if let Some(h) = rtp::parse_rtp(&d) {
                prop_assert!(h.payload_offset.saturating_add(h.payload_len) <= d.len());
                prop_assert_eq!(h.payload(&d).len(), h.payload_len);
            }
            let _ = rtcp::parse_compound(&d);
        }
    }

    #[test]
    fn rtcp_compound_mutated(edits in prop::collection::vec(edit(), 0..6)) {
        let mut c = media::rtcp_rr(0x1111, &[]);
        c.extend_from_slice(&media::rtcp_sdes_cname(0x1111, "alice@example.com"));
        c.extend_from_slice(&media::rtcp_bye(0x1111, Some("bye")));
        let whole = rtcp::parse_compound(&c);
        prop_assert!(whole.1.is_none(), "valid compound flagged: {:?}", whole.1);
        prop_assert_eq!(whole.0.len(), 3);
        let _ = rtcp::parse_compound(&apply(c, &edits));
    }

    /// Synth-built messages parse back to what was built.
    #[test]
    fn synth_sip_round_trip(
        cid in "[A-Za-z0-9.@_-]{1,60}",
        cseq in 0u32..u32::MAX,
        method in prop_oneof![
            Just("INVITE"), Just("ACK"), Just("BYE"), Just("CANCEL"), Just("REGISTER"),
            Just("OPTIONS"), Just("PRACK"), Just("UPDATE"), Just("INFO"), Just("SUBSCRIBE"),
            Just("NOTIFY"), Just("REFER"), Just("MESSAGE"), Just("PUBLISH"),
        ],
        code in 100u16..700,
        compact in any::<bool>(),
        reason in "[A-Za-z ]{1,30}",
    ) {
        let mut req = SipMsg::request(method, "sip:bob@example.com", &cid, cseq);
        req.compact = compact;
        req.via.push(Via {
            transport: "UDP".into(),
            sent_by: "10.0.0.1:5060".into(),
            branch: "z9hG4bKabc".into(),
            rport: None,
            received: None,
        });
        req.from = NameAddr::new("sip:alice@example.com");
        req.to = NameAddr::new("sip:bob@example.com");
        let rsp = SipMsg::response_to(&req, code, reason.trim());

        let p = wire::parse(&req.render()).expect("built request parses");
        let got = p.call_id();
        prop_assert_eq!(got.as_deref(), Some(cid.as_str()));
        let want = Method::from_bytes(method.as_bytes());
        prop_assert_eq!(p.method(), Some(&want));
        let cs = p.cseq().expect("CSeq");
        prop_assert_eq!(cs.seq, cseq);
        prop_assert_eq!(&cs.method, &want);

        let r = wire::parse(&rsp.render()).expect("built response parses");
        prop_assert_eq!(r.status(), Some(code));
        let got = r.call_id();
        prop_assert_eq!(got.as_deref(), Some(cid.as_str()));
        prop_assert_eq!(r.cseq().map(|c| c.seq), Some(cseq));
        let got = r.reason();
        prop_assert_eq!(got.as_deref(), Some(reason.trim()));
    }
}
