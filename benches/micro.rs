//! Micro-benchmarks of the hot building blocks, on real frames of a committed fixture:
//! frame decode (packets/s), SIP parse (messages/s), SDP parse, RTP statistics update.
//! Run with `cargo bench --bench micro`. Whole-run numbers come from `benches/run.sh`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sipscope::capture::{Batch, MergedReader};
use sipscope::decode::{Decoded, L4, decode_frame};
use sipscope::rtp::{StreamStats, parse_rtp};
use sipscope::types::{FrameRef, Ts};
use std::hint::black_box;

struct Frames {
    link: Vec<u32>,
    data: Vec<Vec<u8>>,
}

fn load(path: &str) -> Frames {
    let mut r = MergedReader::open(&[path.to_string()]).expect("fixture");
    let mut b = Batch::new();
    let mut f = Frames {
        link: Vec::new(),
        data: Vec::new(),
    };
    while r.next_batch(&mut b, 4096).expect("read") {
        for x in b.iter() {
            f.link.push(x.link);
            f.data.push(x.data.to_vec());
        }
        b.clear();
    }
    f
}

fn udp_payloads(f: &Frames) -> Vec<Vec<u8>> {
    f.link
        .iter()
        .zip(&f.data)
        .filter_map(|(l, d)| match decode_frame(*l, d) {
            Decoded::Ip {
                l4: L4::Udp { payload, .. },
                ..
            } => Some(payload.to_vec()),
            _ => None,
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let frames = load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/normal-call.pcap"
    ));
    let payloads = udp_payloads(&frames);
    let sip: Vec<&Vec<u8>> = payloads
        .iter()
        .filter(|p| sipscope::sip::wire::looks_like_sip(p))
        .collect();
    let rtp: Vec<_> = payloads
        .iter()
        .filter_map(|p| parse_rtp(p))
        .filter(|h| h.ssrc == 0x1111_1111)
        .collect();
    let invite = sip.first().map(|p| p.to_vec()).unwrap_or_default();
    let sdp_body = sipscope::sip::wire::parse(&invite)
        .map(|m| m.body_bytes().to_vec())
        .unwrap_or_default();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.data.len() as u64));
    g.bench_function("decode_frame (fixture frames)", |b| {
        b.iter(|| {
            for (l, d) in frames.link.iter().zip(&frames.data) {
                black_box(decode_frame(*l, black_box(d)));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(sip.len() as u64));
    g.bench_function("parse (call messages)", |b| {
        b.iter(|| {
            for p in &sip {
                black_box(sipscope::sip::wire::parse(black_box(p)));
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse INVITE + extract", |b| {
        b.iter(|| {
            let m = sipscope::sip::wire::parse(black_box(&invite));
            black_box(m.map(|m| {
                (
                    m.call_id().map(|c| c.len()),
                    m.cseq(),
                    m.top_via_branch().map(|b| b.len()),
                )
            }))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sdp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse offer", |b| {
        b.iter(|| black_box(sipscope::sdp::parse(black_box(&sdp_body))))
    });
    g.finish();

    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(rtp.len() as u64));
    g.bench_function("StreamStats::update (one stream)", |b| {
        b.iter(|| {
            let mut s = StreamStats::new(FrameRef::new(0, 1), Ts(0), 8000);
            for (i, h) in rtp.iter().enumerate() {
                s.update(FrameRef::new(0, i as u64 + 1), Ts(i as i64 * 20_000_000), h);
            }
            black_box(s.summary())
        })
    });
    g.finish();
}

criterion_group!(micro, benches);
criterion_main!(micro);
