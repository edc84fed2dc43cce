//! Real NAT, real user agents: `tests/netns/nat-call.sh` builds three network namespaces
//! (phone, a Linux NAT router with iptables MASQUERADE, provider), places one SIPp call
//! through the NAT and captures on the provider side. The diagnosis must see the NAT and,
//! when the callee sends no audio, one-way audio with its cause; with symmetric RTP through
//! the NAT it must not claim one-way audio. Skipped (with a notice) without root, iproute2,
//! iptables, sipp or tcpdump; `.ci/run` installs them.

use serde_json::Value;
use std::process::Command;

fn scenario(mode: &str) -> Option<Value> {
    let out =
        std::env::temp_dir().join(format!("sipscope-netns-{}-{mode}.pcap", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/nat-call.sh");
    let st = Command::new("bash")
        .arg(script)
        .arg(&out)
        .arg(mode)
        .output()
        .ok()?;
    if st.status.code() == Some(77) {
        eprintln!(
            "NOTICE: netns NAT test skipped: {}",
            String::from_utf8_lossy(&st.stdout).trim()
        );
        return None;
    }
    assert!(
        st.status.success(),
        "nat-call.sh {mode} failed: {}{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    let r = Command::new(env!("CARGO_BIN_EXE_sipscope"))
        .args(["analyze", "--format", "json"])
        .arg(&out)
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&out);
    assert_eq!(r.status.code(), Some(0));
    serde_json::from_slice(&r.stdout).ok()
}

fn rules(j: &Value) -> Vec<(String, String)> {
    j["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["summary"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn call_through_a_real_nat() {
    let Some(echo) = scenario("echo") else { return };
    let r = rules(&echo);
    assert_eq!(echo["calls"].as_array().map(|c| c.len()), Some(1), "{r:?}");
    assert_eq!(echo["calls"][0]["state"], "COMPLETED");
    assert!(
        r.iter().any(|(id, s)| id == "nat.private-sdp"
            && s.contains("10.77.0.2")
            && s.contains("198.51.100.1")),
        "{r:?}"
    );
    assert!(
        r.iter().any(|(id, _)| id == "nat.media-port-translated"),
        "{r:?}"
    );
    assert!(
        !r.iter().any(|(id, _)| id == "media.one-way"),
        "symmetric RTP through the NAT is two-way: {r:?}"
    );
    // Both directions of media were attached to the call.
    let streams = echo["streams"].as_array().cloned().unwrap_or_default();
    assert!(
        streams.iter().any(|s| s["src"] == "198.51.100.2:6000")
            && streams.iter().any(|s| s["src"] == "198.51.100.1:6000")
    );
    assert!(
        streams.iter().all(|s| !s["call_id"].is_null()),
        "every stream belongs to the call"
    );

    let Some(silent) = scenario("silent") else {
        return;
    };
    let r = rules(&silent);
    let one_way: Vec<_> = r.iter().filter(|(id, _)| id == "media.one-way").collect();
    assert_eq!(one_way.len(), 1, "{r:?}");
    assert!(
        one_way[0]
            .1
            .contains("198.51.100.1:6000 → 198.51.100.2:6000")
            && one_way[0].1.contains("private address 10.77.0.2"),
        "{one_way:?}"
    );
}
