//! `--threads 1` and `--threads N` must produce byte-identical JSON: state is single-owner
//! and ordered by frame numbers, never by thread timing or hash order.

mod common;
use sipscope::engine::{Config, DecodeOn, analyze_paths};

fn json(path: &str, threads: usize, batch: usize, decode_on: DecodeOn) -> String {
    let cfg = Config {
        threads,
        batch_frames: batch,
        decode_on,
        ..Config::default()
    };
    let a = analyze_paths(&[path.to_string()], &cfg, None).expect("analysis");
    let findings = sipscope::rules::run(&a, &Default::default(), &Default::default());
    serde_json::to_string(&sipscope::report::build(&a, findings, true)).expect("json")
}

#[test]
fn one_thread_and_many_threads_give_identical_json() {
    let files = common::fixtures_and_corpus();
    assert!(files.len() >= 12);
    for f in &files {
        let one = json(f, 1, 4096, DecodeOn::Balanced);
        // Different thread counts and batch sizes (batch boundaries inside calls) must not
        // matter, nor which thread decodes a batch.
        for (threads, batch, on) in [
            (2, 4096, DecodeOn::Balanced),
            (4, 7, DecodeOn::Balanced),
            (2, 1, DecodeOn::Balanced),
            (2, 7, DecodeOn::Reader),
            (2, 7, DecodeOn::Analysis),
        ] {
            assert!(
                one == json(f, threads, batch, on),
                "{f}: --threads {threads} (batch {batch}, decoded on {on:?}) differs from --threads 1"
            );
        }
    }
    eprintln!("{} captures identical across thread counts", files.len());
}

/// The CLI writes the JSON report row by row while the rules run and fills the findings
/// in last (`report::write_json_deferred`): the bytes must be those of the whole report
/// model serialised at once.
#[test]
fn deferred_findings_json_equals_the_whole_report() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path().to_string_lossy().into_owned();
        if p.ends_with(".json") || p.ends_with(".md") {
            continue;
        }
        let a = analyze_paths(std::slice::from_ref(&p), &Config::default(), None).unwrap();
        let findings = sipscope::rules::run(&a, &Default::default(), &Default::default());
        let whole = serde_json::to_vec_pretty(&sipscope::report::build(&a, findings.clone(), true))
            .unwrap();
        let mut deferred = Vec::new();
        let back =
            sipscope::report::write_json_deferred(&mut deferred, &a, true, || findings.clone())
                .unwrap();
        assert_eq!(back, findings, "{p}");
        assert!(whole == deferred, "{p}: deferred JSON differs");
        n += usize::from(!findings.is_empty());
    }
    assert!(n >= 5, "only {n} fixtures with findings");
}

/// The CLI's JSON comes from the streaming run (`report::analyze_streamed`): with one
/// thread and with several it must be byte-identical, and equal to the whole-model
/// report, on every fixture and public capture (with the example trunk profile too, so
/// the `policy.*` aggregates take part).
#[test]
fn streamed_json_is_the_same_with_any_thread_count_and_equals_the_whole_model() {
    use sipscope::rules::{Profile, Selection, Thresholds};
    let profile = Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/example-trunk.toml"
    )))
    .expect("example profile");
    let th = Thresholds::default();
    let sel = Selection::default();
    let streamed = |f: &str, threads: usize, batch: usize, p: Option<&Profile>| {
        let cfg = Config {
            threads,
            batch_frames: batch,
            ..Config::default()
        };
        let mut run =
            sipscope::report::analyze_streamed(&[f.to_string()], &cfg, None, &th, &sel, p)
                .expect("streamed run");
        let mut out = Vec::new();
        run.write_json(&mut out, true).expect("json");
        out
    };
    let files = common::fixtures_and_corpus();
    for f in &files {
        for p in [None, Some(&profile)] {
            let a = analyze_paths(std::slice::from_ref(f), &Config::default(), None).unwrap();
            let mut whole = Vec::new();
            sipscope::report::write_json_deferred(&mut whole, &a, true, || {
                sipscope::rules::run_with_profile(&a, &th, &sel, p)
            })
            .unwrap();
            let one = streamed(f, 1, 4096, p);
            assert!(
                one == whole,
                "{f} (profile: {}): streamed JSON differs from the whole model's",
                p.is_some()
            );
            for (threads, batch) in [(2, 4096), (2, 7)] {
                assert!(
                    one == streamed(f, threads, batch, p),
                    "{f}: streamed --threads {threads} (batch {batch}) differs from --threads 1"
                );
            }
        }
    }
}
