//! Streaming finalisation (`engine::analyze_paths_streamed`, docs/performance.md
//! "Memory"): the engine releases each call with its streams, and each stream no call
//! claimed, as the capture clock passes them. Put back together, the released units must
//! be the whole-model analysis: the same calls, the same streams with the same
//! statistics, each stream attached to the same call for the same reason; and the
//! report must be byte-identical.

mod common;
use sipscope::correlate::{Analysis, Call, Stream};
use sipscope::engine::{Config, analyze_paths, analyze_paths_streamed};

/// The units, reassembled into one model as the batch engine builds it.
fn reassemble(units: Vec<Analysis>) -> (Vec<Call>, Vec<Stream>) {
    let mut calls: Vec<(Call, Vec<Stream>)> = Vec::new();
    let mut orphans = Vec::new();
    for u in units {
        let mut streams = u.streams;
        match u.calls.into_iter().next() {
            Some(c) => calls.push((c, streams)),
            None => orphans.append(&mut streams),
        }
    }
    calls.sort_by(|a, b| {
        (a.0.sip.first_frame, &a.0.sip.call_id).cmp(&(b.0.sip.first_frame, &b.0.sip.call_id))
    });
    let mut all: Vec<(Stream, Option<usize>)> = Vec::new();
    for (ci, (_, streams)) in calls.iter_mut().enumerate() {
        for s in streams.drain(..) {
            all.push((s, Some(ci)));
        }
    }
    all.extend(orphans.into_iter().map(|s| (s, None)));
    all.sort_by_key(|(s, _)| s.order);
    let mut out_calls: Vec<Call> = calls
        .into_iter()
        .map(|(mut c, _)| {
            c.streams.clear();
            c
        })
        .collect();
    let mut out_streams = Vec::new();
    for (i, (mut s, ci)) in all.into_iter().enumerate() {
        s.call = ci;
        if let Some(c) = ci.and_then(|ci| out_calls.get_mut(ci)) {
            c.streams.push(i);
        }
        out_streams.push(s);
    }
    (out_calls, out_streams)
}

/// The differences, and the share of units released before the last frame was read.
fn compare(label: &str, path: &str, cfg: &Config) -> (Vec<String>, f64) {
    let whole = analyze_paths(&[path.to_string()], cfg, None).expect("analysis");
    let mut units = Vec::new();
    let progress = sipscope::engine::Progress::default();
    let mut early = 0usize;
    let total = whole.capture.accounting.frames;
    let rest = {
        let mut sink = |u: Analysis| {
            if progress.frames.load(std::sync::atomic::Ordering::Relaxed) < total {
                early += 1;
            }
            units.push(u)
        };
        analyze_paths_streamed(&[path.to_string()], cfg, Some(&progress), &mut sink)
            .expect("streamed")
    };
    let early = early as f64 / units.len().max(1) as f64;
    assert!(rest.calls.is_empty() && rest.streams.is_empty());
    let (calls, streams) = reassemble(units);
    let mut diff = Vec::new();
    if calls.len() != whole.calls.len() || streams.len() != whole.streams.len() {
        diff.push(format!(
            "{label}: {} calls / {} streams released, {} / {} in the whole model",
            calls.len(),
            streams.len(),
            whole.calls.len(),
            whole.streams.len()
        ));
    }
    for (a, b) in calls.iter().zip(&whole.calls) {
        if format!("{a:?}") != format!("{b:?}") {
            diff.push(format!("{label}: call {} differs", b.sip.call_id));
        }
    }
    for (a, b) in streams.iter().zip(&whole.streams) {
        if format!("{a:?}") != format!("{b:?}") {
            diff.push(format!(
                "{label}: stream 0x{:08X} {} → {} differs: released call {:?} {:?}, whole {:?} {:?}",
                b.ssrc, b.src, b.dst, a.call, a.association, b.call, b.association
            ));
        }
    }
    for (name, x, y) in [
        (
            "registrations",
            format!("{:?}", rest.registrations),
            format!("{:?}", whole.registrations),
        ),
        (
            "out_of_dialog",
            format!("{:?}", rest.out_of_dialog),
            format!("{:?}", whole.out_of_dialog),
        ),
        (
            "sip_stats",
            format!("{:?}", rest.sip_stats),
            format!("{:?}", whole.sip_stats),
        ),
        (
            "capture",
            format!("{:?}", rest.capture),
            format!("{:?}", whole.capture),
        ),
        (
            "hosts",
            format!("{:?}", rest.hosts),
            format!("{:?}", whole.hosts),
        ),
    ] {
        if x != y {
            diff.push(format!("{label}: {name} differ"));
        }
    }
    (diff, early)
}

#[test]
fn released_units_are_the_whole_model() {
    let mut diff = Vec::new();
    for f in common::fixtures_and_corpus() {
        diff.extend(compare(&f, &f, &Config::default()).0);
    }
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}

/// A long, busy capture, where units leave mid-capture: 100 calls at once, a third of
/// the callers behind NAT, 5 % failed, registrations and OPTIONS keepalives.
#[test]
fn released_units_are_the_whole_model_on_a_busy_trunk() {
    let p = sipscope::synth::BenchParams {
        seed: 3,
        calls: 300,
        concurrency: 100,
        call_duration_s: 20,
        nat_ratio: 0.3,
        ..Default::default()
    };
    let file = common::BenchFile::new("streaming", &p);
    let f = file.path();
    let (mut diff, early) = compare("bench", &f, &Config::default());
    let (d1, early1) = compare(
        "bench --threads 1",
        &f,
        &Config {
            threads: 1,
            ..Config::default()
        },
    );
    diff.extend(d1);
    assert!(diff.is_empty(), "{}", diff.join("\n"));
    // The point: most units left while the capture was still being read.
    eprintln!("units released before the end: {early:.2} (two threads), {early1:.2} (one)");
    assert!(early > 0.5 && early1 > 0.5, "{early} {early1}");
}

/// Phones that call again and again (`BenchParams::callers`): the same caller addresses
/// and ports come back in later calls, so the correlator must keep each stream with the
/// call of its time, on the capture clock as on the whole capture.
#[test]
fn released_units_are_the_whole_model_when_phones_call_again() {
    let p = sipscope::synth::BenchParams {
        seed: 5,
        calls: 300,
        concurrency: 100,
        call_duration_s: 20,
        nat_ratio: 0.3,
        callers: 120,
        ..Default::default()
    };
    let file = common::BenchFile::new("phones", &p);
    let f = file.path();
    let whole =
        analyze_paths(std::slice::from_ref(&f), &Config::default(), None).expect("analysis");
    let callers: std::collections::BTreeSet<_> =
        whole.calls.iter().map(|c| c.sip.caller.ip).collect();
    assert_eq!(whole.calls.len(), 300);
    assert!(callers.len() <= 120, "{} caller addresses", callers.len());
    let (diff, early) = compare("phones", &f, &Config::default());
    assert!(diff.is_empty(), "{}", diff.join("\n"));
    assert!(early > 0.5, "{early}");
}
