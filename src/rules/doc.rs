//! `docs/rules.md`, generated from the registry (id, severity, title, explanation,
//! remediation, thresholds) and the profile reference, so the documentation cannot drift
//! from the code: a test compares the committed file with [`markdown`].

use super::registry;
use std::fmt::Write;

/// The profile section: every field of [`super::Profile`], what it means, which rule uses it.
const PROFILE_DOC: &str = r#"## Policy profiles (`--profile FILE.toml`)

The `policy.*` rules compare a capture with what one provider's trunk accepts. They run
only when a profile is given, and each field left out (or an empty list) means "no
requirement". `profiles/example-trunk.toml` is a complete, commented example modelled on
a real provider's trunk specification.

"The trunk" is the provider's signalling side: addresses in `signalling_networks`, or,
when that list is empty, every address that is not ours (`local_networks`, by default all
private addresses). The rules judge what we send to the trunk, because that is what the
provider's specification limits.

| field | type | meaning | rule |
| --- | --- | --- | --- |
| `name` | string | shown in findings and reports | — |
| `transports` | list of `udp`, `tcp`, `tls` | transports the trunk accepts | `policy.transport` |
| `methods` | list of method names | methods the trunk handles | `policy.method` |
| `codecs` | list of SDP encoding names (`PCMA`, `PCMU`, `G722`, ...) | audio codecs the trunk supports (telephone-event and CN are not codecs here) | `policy.codec` |
| `dtmf` | list of `rfc2833`, `info`, `inband` | DTMF modes the trunk accepts | `policy.dtmf` |
| `t38` | bool | whether T.38 fax may be offered | `policy.t38` |
| `number_format.request_uri`, `.from`, `.to`, `.p_asserted_identity` | `any`, `e164-plus`, `e164` | number format per header of INVITEs to the trunk (`+31201234567` / `31201234567`, 8–15 digits) | `policy.number-format` |
| `p_asserted_identity_required` | bool | INVITEs to the trunk must carry P-Asserted-Identity (Remote-Party-ID does not count) | `policy.caller-id` |
| `privacy` | list of Privacy values (`id`, `none`, ...) | accepted Privacy header values; `Privacy: id` always needs P-Asserted-Identity | `policy.caller-id` |
| `local_networks` | list of CIDR | our own addresses (default: private addresses) | all |
| `signalling_networks` | list of CIDR | the provider's SIP addresses | `policy.peer-address`, all |
| `media_networks` | list of CIDR | the provider's RTP addresses (default: `signalling_networks`) | `policy.peer-address`, `policy.rtp-port-range` |
| `rtp_ports` | `{ min, max }` | the provider's RTP port range | `policy.rtp-port-range` |
| `max_channels` | integer | concurrent call limit (answered calls, answer to BYE) | `policy.channels` |
| `keepalive` | `options`, `crlf`, `register` | keepalive the provider expects; with `options`, every OPTIONS to the trunk must get 200 OK | `policy.keepalive` |
| `keepalive_interval_s` | seconds | longest expected keepalive interval; also replaces the threshold `keepalive_max_s` | `policy.keepalive`, `keepalive.interval` |
| `nat_binding_timeout_s` | seconds | NAT binding lifetime to assume; replaces the threshold `nat_timeout_s` | `reg.*`, `keepalive.missing` |
| `destinations.allow` / `.deny` | list of number prefixes | destination whitelist / blacklist (deny wins), matched with or without `+` | `policy.destination` |
"#;

/// The whole of `docs/rules.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(
        "# Diagnosis rules\n\n\
         <!-- Generated from the rule registry (src/rules); do not edit by hand. Regenerate with\n\
         `SIPSCOPE_BLESS=1 cargo test --test rules docs_rules_md_is_up_to_date`. -->\n\n\
         Every rule has a stable id `family.name`, a default severity (a finding may be\n\
         raised or lowered from it when the evidence says so; the rule's text tells when), the\n\
         thresholds it uses (all settable in a `--config` TOML file, see `Thresholds`), and what\n\
         to do about it. `sipscope rules` lists them and `sipscope explain ID` prints one.\n\n",
    );
    let mut family = "";
    s.push_str("| id | severity | title |\n| --- | --- | --- |\n");
    for r in registry() {
        let m = r.meta();
        let _ = writeln!(
            s,
            "| [`{}`](#{}) | {} | {} |",
            m.id,
            m.id.replace('.', ""),
            m.severity.as_str(),
            m.title
        );
    }
    for r in registry() {
        let m = r.meta();
        if m.family() != family {
            family = m.family();
            let _ = writeln!(s, "\n## {family}");
        }
        let _ = writeln!(s, "\n### {}\n", m.id);
        let _ = writeln!(s, "**{}** — {}\n", m.severity.as_str(), m.title);
        let _ = writeln!(s, "{}\n", m.explanation);
        let _ = writeln!(s, "*Remediation:* {}\n", m.remediation);
        let _ = writeln!(s, "*Thresholds:* {}", m.thresholds);
    }
    s.push('\n');
    s.push_str(PROFILE_DOC);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_section_and_a_table_row() {
        let md = markdown();
        for r in registry() {
            let id = r.meta().id;
            assert!(md.contains(&format!("\n### {id}\n")), "{id}");
            assert!(md.contains(&format!("| [`{id}`]")), "{id}");
        }
        assert!(md.contains("## Policy profiles"));
    }
}
