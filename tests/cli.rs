//! The binary's contract: exit codes, error messages, output formats, broken pipes.

use std::io::Read;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipscope"))
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn not_a_capture_is_exit_2_with_one_line() {
    let dir = std::env::temp_dir().join(format!("sipscope-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "this is not a capture\n").unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let cases = [
        (text.to_string_lossy().into_owned(), "not a pcap or pcapng"),
        (empty.to_string_lossy().into_owned(), "empty"),
        (dir.to_string_lossy().into_owned(), "directory"),
        (
            dir.join("missing.pcap").to_string_lossy().into_owned(),
            "No such file",
        ),
    ];
    for (path, needle) in cases {
        let out = bin().args(["analyze", &path]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains(needle),
            "{path}: stderr {err:?} lacks {needle:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{path}: {err}");
        assert!(!err.contains("panicked"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_error_is_exit_2() {
    let out = bin().args(["analyze"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin().args(["no-such-command"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin().args(["--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("analyze"));
}

#[test]
fn json_report_has_the_documented_top_level_fields() {
    let out = bin()
        .args(["analyze", "--format", "json", &fixture("normal-call.pcap")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "schema_version",
        "capture",
        "calls",
        "registrations",
        "streams",
        "sip_stats",
        "findings",
    ] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    assert_eq!(j["calls"].as_array().map(|c| c.len()), Some(1));
}

#[test]
fn text_report_fits_100_columns() {
    let out = bin()
        .args(["analyze", "--color", "never", &fixture("normal-call.pcap")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("== Calls (1) =="), "{text}");
    for l in text.lines() {
        assert!(
            l.chars().count() <= 100,
            "line too long ({}): {l}",
            l.chars().count()
        );
    }
    assert!(!text.contains('\x1b'), "no colour when not asked");
}

#[test]
fn broken_pipe_is_not_an_error() {
    let mut child = bin()
        .args(["analyze", "--format", "json", &fixture("normal-call.pcap")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end of stdout at once.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `-o` naming a file that cannot be created fails before any input is read: the capture
/// here is stdin, kept open and empty, so a run that read it first would never finish.
#[test]
fn an_unwritable_output_fails_before_the_capture_is_read() {
    let bad = std::env::temp_dir()
        .join(format!("sipscope-no-dir-{}", std::process::id()))
        .join("report.out");
    for format in ["json", "text"] {
        let mut child = bin()
            .args(["analyze", "--format", format, "-o"])
            .arg(&bad)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _stdin = child.stdin.take();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.wait();
        let status = status.unwrap_or_else(|| panic!("{format}: still reading stdin after 20 s"));
        assert_eq!(status.code(), Some(2), "{format}: {err}");
        assert!(err.contains("report.out"), "{format}: {err}");
    }
}

/// `-o` naming one of the input captures (here through a hard link) is refused before
/// anything is opened for writing: the capture is left as it was.
#[test]
fn the_output_may_not_be_an_input_capture() {
    let dir = std::env::temp_dir().join(format!("sipscope-cli-same-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("call.pcap");
    let link = dir.join("link.pcap");
    let bytes = std::fs::read(fixture("normal-call.pcap")).unwrap();
    std::fs::write(&cap, &bytes).unwrap();
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(&cap, &link).unwrap();
    for (format, out) in [("json", &cap), ("text", &link)] {
        let o = bin()
            .args(["analyze", "--format", format, "-o"])
            .arg(out)
            .arg(&cap)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{format}: {err}");
        assert!(err.contains("refusing to overwrite"), "{format}: {err}");
        assert_eq!(
            std::fs::read(&cap).unwrap(),
            bytes,
            "{format}: the capture changed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdin_is_read_with_dash() {
    let data = std::fs::read(fixture("normal-call.pcap")).unwrap();
    let mut child = bin()
        .args(["analyze", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&data).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["calls"].as_array().map(|c| c.len()), Some(1));
}

#[test]
fn fail_on_gates_the_exit_code() {
    // no-ack has an error finding (sip.ack-missing); normal-call has none.
    let out = bin()
        .args([
            "analyze",
            "-q",
            "--fail-on",
            "error",
            &fixture("no-ack.pcap.gz"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = bin()
        .args([
            "analyze",
            "-q",
            "--fail-on",
            "error",
            "--disable",
            "sip,media",
            &fixture("no-ack.pcap.gz"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "disabled families must not gate"
    );
    let out = bin()
        .args([
            "analyze",
            "-q",
            "--fail-on",
            "info",
            &fixture("normal-call.pcap"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = bin()
        .args(["analyze", "-q", &fixture("no-ack.pcap.gz")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "without --fail-on findings never change the exit code"
    );
}

#[test]
fn rules_and_explain_come_from_the_registry() {
    let out = bin().args(["rules"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for id in [
        "sip.ack-missing",
        "reg.binding-expired-inbound-lost",
        "nat.media-to-unroutable",
        "alg.two-capture-diff",
        "policy.codec",
    ] {
        assert!(text.contains(id), "{id} missing from `sipscope rules`");
    }
    let out = bin().args(["explain", "sip.ack-missing"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("How to fix it") && text.contains("64·T1"));
    let out = bin().args(["explain", "no.such-rule"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn vantage_needs_exactly_two_captures() {
    let out = bin()
        .args(["analyze", "--vantage", &fixture("normal-call.pcap")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args([
            "analyze",
            "-q",
            "--vantage",
            "--format",
            "json",
            &fixture("normal-call.pcap"),
            &fixture("normal-call.pcap"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "alg.two-capture-diff"),
        "identical captures: nothing changed"
    );
}
