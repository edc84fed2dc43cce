//! Report rows spilled to disk (`report::RowSpill`) come back byte-identical and in report
//! order: for every fixture and public capture, each call and stream row pretty-prints the
//! same after the round trip through the spill file, and rows pushed in reverse come back
//! sorted by their key (calls: first frame, then Call-ID; streams: discovery order), which
//! is the order of the report. Findings too: pushed in the order the rules gave them, they
//! come back in the report's order, equal to the original findings.

mod common;
use serde::Serialize;
use sipscope::engine::{Config, analyze_paths};
use sipscope::report::{CallOut, RowSpill, StreamOut, call_out, stream_out};
use sipscope::types::FrameRef;

fn pretty<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::pretty(&mut out);
    v.serialize(&mut ser).expect("serialise");
    String::from_utf8(out).expect("utf-8")
}

/// Rows spilled in reverse report order and read back sorted: (calls, streams) checked.
fn check(label: &str, paths: &[String], failures: &mut Vec<String>) -> (usize, usize) {
    let a = analyze_paths(paths, &Config::default(), None).expect("analysis");
    let t0 = a.capture.first_ts.unwrap_or_default();
    let mut spill = RowSpill::new().expect("spill file");

    // Calls: the report lists them by (first frame, Call-ID).
    let calls: Vec<((FrameRef, String), CallOut)> = a
        .calls
        .iter()
        .map(|c| ((c.sip.first_frame, c.sip.call_id.clone()), call_out(t0, c)))
        .collect();
    if !calls.windows(2).all(|w| w[0].0 <= w[1].0) {
        failures.push(format!("{label}: the report's calls are not in key order"));
    }
    for (k, row) in calls.iter().rev() {
        spill.push_call(k.clone(), row).expect("push call");
    }
    // What calls_sorted must give: the push order, stably sorted by key.
    let mut want: Vec<&((FrameRef, String), CallOut)> = calls.iter().rev().collect();
    want.sort_by(|x, y| x.0.cmp(&y.0));

    // Streams: the report lists them by discovery order.
    let streams: Vec<(u64, StreamOut)> = a
        .streams
        .iter()
        .map(|s| (s.order, stream_out(&a, t0, s)))
        .collect();
    if !streams.windows(2).all(|w| w[0].0 <= w[1].0) {
        failures.push(format!(
            "{label}: the report's streams are not in key order"
        ));
    }
    for (o, row) in streams.iter().rev() {
        spill.push_stream(*o, row).expect("push stream");
    }
    let mut want_s: Vec<&(u64, StreamOut)> = streams.iter().rev().collect();
    want_s.sort_by_key(|x| x.0);

    assert_eq!(spill.calls(), calls.len(), "{label}");
    assert_eq!(spill.streams(), streams.len(), "{label}");

    let mut n = 0;
    for (i, got) in spill.calls_sorted().expect("read calls").enumerate() {
        let got = got.expect("call row");
        let (key, row) = want[i];
        let (g, w) = (pretty(&got), pretty(row));
        if g != w {
            failures.push(format!(
                "{label}: call #{i} {key:?} differs after the spill:\n--- original\n{w}\n--- read back\n{g}"
            ));
        }
        n += 1;
    }
    assert_eq!(n, calls.len(), "{label}: calls read back");
    let mut n = 0;
    for (i, got) in spill.streams_sorted().expect("read streams").enumerate() {
        let got = got.expect("stream row");
        let (order, row) = want_s[i];
        let (g, w) = (pretty(&got), pretty(row));
        if g != w {
            failures.push(format!(
                "{label}: stream #{i} (order {order}) differs after the spill:\n--- original\n{w}\n--- read back\n{g}"
            ));
        }
        n += 1;
    }
    assert_eq!(n, streams.len(), "{label}: streams read back");

    // Findings, as the rules give them (unsorted), must come back as the report sorts
    // them, byte for byte.
    let given: Vec<sipscope::rules::Finding> =
        sipscope::rules::run(&a, &Default::default(), &Default::default())
            .into_iter()
            .rev()
            .collect();
    let want_f = {
        let mut v = given.clone();
        v.sort_by(sipscope::rules::finding_order);
        v
    };
    for f in given {
        spill.push_finding(f).expect("push finding");
    }
    assert_eq!(spill.findings(), want_f.len(), "{label}");
    let back: Vec<sipscope::rules::Finding> = spill
        .findings_sorted()
        .expect("read findings")
        .map(|f| f.expect("finding row"))
        .collect();
    if pretty(&back) != pretty(&want_f) {
        failures.push(format!("{label}: findings differ after the spill"));
    }
    FINDINGS.fetch_add(back.len(), std::sync::atomic::Ordering::Relaxed);
    (calls.len(), streams.len())
}

/// Findings round-tripped over all captures.
static FINDINGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn every_row_round_trips_byte_identically_in_report_order() {
    let files = common::fixtures_and_corpus();
    assert!(files.len() >= 12);
    let mut failures = Vec::new();
    let (mut calls, mut streams) = (0, 0);
    for f in &files {
        let (c, s) = check(f, std::slice::from_ref(f), &mut failures);
        calls += c;
        streams += s;
    }
    // Several input files: every frame is a "FILE:FRAME" string.
    let fx = |n: &str| format!("{}/fixtures/{n}", env!("CARGO_MANIFEST_DIR"));
    let multi = [
        fx("normal-call.pcap"),
        fx("dtmf.pcap"),
        fx("nat-media.pcap"),
    ];
    let (c, s) = check("fixtures merged", &multi, &mut failures);
    assert!(
        c >= 3 && s >= 3,
        "the merged fixtures have calls and streams"
    );
    calls += c;
    streams += s;
    eprintln!(
        "{} captures: {calls} call rows and {streams} stream rows round-tripped",
        files.len() + 1
    );
    let findings = FINDINGS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{findings} findings round-tripped");
    assert!(
        calls > 0 && streams > 0 && findings > 0,
        "nothing was checked"
    );
    assert!(
        failures.is_empty(),
        "{} rows differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
