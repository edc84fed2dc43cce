//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/pcaps` beside the repository, if present.
pub fn corpus_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("NOTICE: ../shared/pcaps not found; skipping the public-corpus tests");
        None
    }
}

/// Every capture file of the corpus (everything but the .txt/.md notes), sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let Some(dir) = corpus_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("txt") | Some("md")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The section of a `.tshark.txt` file that follows `## <title>` up to the next `## `.
pub fn section<'a>(text: &'a str, title: &str) -> Option<&'a str> {
    let start = text.find(&format!("## {title}"))?;
    let rest = &text[start..];
    let body_start = rest.find('\n')? + 1;
    let body = &rest[body_start..];
    let end = body.find("\n## ").map(|e| e + 1).unwrap_or(body.len());
    Some(&body[..end])
}

/// One row of `tshark -q -z rtp,streams` (4.0 layout; older 12-column rows are parsed too).
#[derive(Debug, Clone, PartialEq)]
pub struct TsharkStream {
    pub src: String,
    pub dst: String,
    pub ssrc: String,
    pub payload: String,
    pub packets: u64,
    pub lost: i64,
    pub min_delta: Option<f64>,
    pub mean_delta: Option<f64>,
    pub max_delta: f64,
    pub min_jitter: Option<f64>,
    pub mean_jitter: f64,
    pub max_jitter: f64,
    pub problems: bool,
}

fn ep(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Parse the rows of an rtp,streams table.
pub fn parse_rtp_streams(section: &str) -> Vec<TsharkStream> {
    let mut out = Vec::new();
    for line in section.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some(ssrc_i) = t.iter().position(|x| x.starts_with("0x") && x.len() == 10) else {
            continue;
        };
        let problems = t.last() == Some(&"X");
        let end = if problems { t.len() - 1 } else { t.len() };
        let nums = &t[..end];
        // From the right: 6 floats (4.0 layout) or 3 (old layout), then "(x%)", lost, pkts.
        let Some(pct_i) = nums
            .iter()
            .rposition(|x| x.starts_with('(') && x.ends_with("%)"))
        else {
            continue;
        };
        let floats: Vec<f64> = nums[pct_i + 1..]
            .iter()
            .filter_map(|x| x.parse().ok())
            .collect();
        let lost: i64 = nums[pct_i - 1].parse().unwrap_or(0);
        let packets: u64 = nums[pct_i - 2].parse().unwrap_or(0);
        let payload = nums[ssrc_i + 1..pct_i - 2].join(" ");
        let (src, dst) = if ssrc_i >= 6 {
            (
                ep(t[ssrc_i - 4], t[ssrc_i - 3]),
                ep(t[ssrc_i - 2], t[ssrc_i - 1]),
            )
        } else {
            continue;
        };
        let s = if floats.len() >= 6 {
            TsharkStream {
                src,
                dst,
                ssrc: t[ssrc_i].to_string(),
                payload,
                packets,
                lost,
                min_delta: Some(floats[0]),
                mean_delta: Some(floats[1]),
                max_delta: floats[2],
                min_jitter: Some(floats[3]),
                mean_jitter: floats[4],
                max_jitter: floats[5],
                problems,
            }
        } else if floats.len() == 3 {
            TsharkStream {
                src,
                dst,
                ssrc: t[ssrc_i].to_string(),
                payload,
                packets,
                lost,
                min_delta: None,
                mean_delta: None,
                max_delta: floats[0],
                min_jitter: None,
                max_jitter: floats[1],
                mean_jitter: floats[2],
                problems,
            }
        } else {
            continue;
        };
        out.push(s);
    }
    out
}

/// `Number of SIP messages` and `Number of resent SIP messages` of a sip,stat section.
pub fn parse_sip_stat(section: &str) -> Option<(u64, u64)> {
    let mut msgs = None;
    let mut resent = None;
    for l in section.lines() {
        if let Some(v) = l.strip_prefix("Number of SIP messages: ") {
            msgs = v.trim().parse().ok();
        }
        if let Some(v) = l.strip_prefix("Number of resent SIP messages: ") {
            resent = v.trim().parse().ok();
        }
    }
    Some((msgs?, resent?))
}

/// Analyse one capture with the default configuration and return the JSON report.
pub fn analyze_json(path: &Path) -> Result<serde_json::Value, String> {
    let cfg = sipscope::engine::Config::default();
    let a = sipscope::engine::analyze_paths(&[path.to_string_lossy().into_owned()], &cfg, None)
        .map_err(|e| e.to_string())?;
    let findings = sipscope::rules::run(&a, &Default::default(), &Default::default());
    let rep = sipscope::report::build(&a, findings, true);
    serde_json::to_value(&rep).map_err(|e| e.to_string())
}

/// Every capture of `fixtures/` and of the public corpus (when present), sorted.
pub fn fixtures_and_corpus() -> Vec<String> {
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path().to_string_lossy().into_owned())
                    .filter(|p| !p.ends_with(".json") && !p.ends_with(".md"))
                    .collect()
            })
            .unwrap_or_default();
    files.extend(
        corpus_files()
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned()),
    );
    files.sort();
    files
}

/// The streaming-finalisation check (`tests/call_local.rs`): run the call-local rules
/// (`rules::call_local`, marked `call_local` in their metadata) on the whole analysis and on each call alone (its streams
/// re-indexed; each orphan stream alone), as a finalised unit would see the capture: the
/// first timestamp known, the clock at the unit's last packet plus `rules::CALL_SETTLE_S`,
/// nothing else of the capture known yet. `profile` is the trunk policy, for the
/// `policy.*` rules. Returns the findings that differ.
pub fn per_call_diff(
    a: &sipscope::correlate::Analysis,
    th: &sipscope::rules::Thresholds,
    profile: Option<&sipscope::rules::Profile>,
) -> Vec<String> {
    use sipscope::correlate::{Analysis, Call, Stream};
    use sipscope::rules::{Selection, Thresholds, call_local};
    let run = |a: &Analysis, th: &Thresholds, sel: &Selection| {
        sipscope::rules::run_with_profile(a, th, sel, profile)
    };
    // The model the streaming engine hands out for one unit.
    let unit = |a: &Analysis, call: Option<&Call>, streams: Vec<Stream>| {
        Analysis::unit(
            a.capture.first_ts,
            a.capture.last_ts,
            call.map(|c| c.sip.clone()),
            streams,
        )
    };
    let sel = Selection {
        only: call_local().iter().map(|s| s.to_string()).collect(),
        disable: Vec::new(),
    };
    let whole: Vec<String> = run(a, th, &sel).iter().map(|f| format!("{f:?}")).collect();
    let mut parts = Vec::new();
    for (ci, c) in a.calls.iter().enumerate() {
        let streams: Vec<Stream> = a
            .streams
            .iter()
            .filter(|s| s.call == Some(ci))
            .cloned()
            .collect();
        parts.extend(run(&unit(a, Some(c), streams), th, &sel));
    }
    for s in a.streams.iter().filter(|s| s.call.is_none()) {
        parts.extend(run(&unit(a, None, vec![s.clone()]), th, &sel));
    }
    let parts: Vec<String> = parts.iter().map(|f| format!("{f:?}")).collect();
    multiset_diff(whole, parts, "only on the whole capture", "only per call")
}

/// The findings (`{:?}` of each) on one side only, each labelled with its side and
/// shortened to rule, subject and summary.
fn multiset_diff(
    mut a: Vec<String>,
    mut b: Vec<String>,
    only_a: &str,
    only_b: &str,
) -> Vec<String> {
    let short = |k: &str| k.split(", explanation:").next().unwrap_or(k).to_string();
    a.sort();
    b.sort();
    let mut diff = Vec::new();
    for x in &a {
        match b.binary_search(x) {
            Ok(i) => {
                b.remove(i);
            }
            Err(_) => diff.push(format!("{only_a}: {}", short(x))),
        }
    }
    for x in b {
        diff.push(format!("{only_b}: {}", short(&x)));
    }
    diff
}

/// The rules that are not call-local, run on the whole model and as a streaming engine
/// runs them (`rules::run_released`: each aggregate sees the units in reverse report
/// order, and every rule decides on a model without calls or streams): the differences.
/// Empty when every such rule is either a true running aggregate or reads no call or
/// stream at all.
#[allow(dead_code)]
pub fn released_diff(
    a: &sipscope::correlate::Analysis,
    th: &sipscope::rules::Thresholds,
    profile: Option<&sipscope::rules::Profile>,
) -> Vec<String> {
    use sipscope::correlate::Analysis;
    use sipscope::rules::{Selection, VANTAGE_RULE, call_local, registry, run_released, units};
    let local = call_local();
    let sel = Selection {
        only: registry()
            .iter()
            .map(|r| r.meta().id)
            .filter(|id| !local.contains(id) && *id != VANTAGE_RULE)
            .map(|s| s.to_string())
            .collect(),
        disable: Vec::new(),
    };
    let whole = sipscope::rules::run_with_profile(a, th, &sel, profile);
    let released = Analysis {
        calls: Vec::new(),
        streams: Vec::new(),
        ..a.clone()
    };
    let mut us: Vec<_> = units(a).collect();
    us.reverse();
    let parts = run_released(&released, us.into_iter(), th, &sel, profile);
    let show = |v: &[sipscope::rules::Finding]| v.iter().map(|f| format!("{f:?}")).collect();
    let mut diff = multiset_diff(
        show(&whole),
        show(&parts),
        "only on the whole model",
        "only released",
    );
    if diff.is_empty() && whole != parts {
        diff.push("same findings in another order".to_string());
    }
    diff
}

/// A benchmark capture written to a temporary file, removed when dropped.
#[allow(dead_code)]
pub struct BenchFile(pub std::path::PathBuf);

#[allow(dead_code)]
impl BenchFile {
    pub fn new(tag: &str, p: &sipscope::synth::BenchParams) -> BenchFile {
        let mut bytes = Vec::new();
        sipscope::synth::bench_capture(&mut bytes, p).expect("bench capture");
        let path = std::env::temp_dir().join(format!("sipscope-{tag}-{}.pcap", std::process::id()));
        std::fs::write(&path, &bytes).expect("write the capture");
        BenchFile(path)
    }
    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for BenchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
