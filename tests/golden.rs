//! Which rules fire on each capture of the public corpus, reviewed by hand once and kept in
//! `tests/golden/corpus-findings.txt`, so that any change in a diagnosis is a visible
//! decision. Regenerate with `SIPSCOPE_BLESS=1 cargo test --test golden` and review the
//! diff before committing it.

mod common;
use std::collections::BTreeMap;
use std::fmt::Write;

#[test]
fn corpus_findings_match_the_reviewed_golden_file() {
    let files = common::corpus_files();
    if files.is_empty() {
        return;
    }
    let root = common::corpus_dir().unwrap();
    let mut got = String::from(
        "# capture: rule (severity) ×count\n\
         # Reviewed by hand, capture by capture (with tshark where needed): docs/rules-review.md\n\
         # says why each finding is right. A change here is a diagnosis change: review it too.\n",
    );
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let Ok(j) = common::analyze_json(f) else {
            let _ = writeln!(got, "{rel}: ERROR");
            continue;
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for x in j["findings"].as_array().into_iter().flatten() {
            *counts
                .entry(format!(
                    "{} ({})",
                    x["rule"].as_str().unwrap_or("?"),
                    x["severity"].as_str().unwrap_or("?")
                ))
                .or_default() += 1;
        }
        let list: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let _ = writeln!(
            got,
            "{rel}: {}",
            if list.is_empty() {
                "-".to_string()
            } else {
                list.join(", ")
            }
        );
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/corpus-findings.txt");
    if std::env::var_os("SIPSCOPE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(20)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "corpus findings changed (review, then SIPSCOPE_BLESS=1 to accept):\n{}",
            diff.join("\n")
        );
    }
}
