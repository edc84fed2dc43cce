//! The deterministic capture builder: scenario code → pcap/pcapng bytes. Used to generate
//! the committed `fixtures/`, by tests, by the benchmark generator, and by `sipscope synth`.
//!
//! Owns: packet construction (Ethernet/VLAN/SLL/raw, IPv4/IPv6 with checksums, UDP, TCP,
//! IP fragmentation), pcap/pcapng writing (both timestamp resolutions, several
//! interfaces), SIP message text builders, RTP/RTCP/telephone-event generators with
//! controllable loss, jitter, reordering and duplication. Everything is a pure function of
//! its inputs (seeded PRNG, no clock), so fixtures are byte-for-byte reproducible.

pub mod builder;

/// Write every fixture into `dir` (stub until the builder lands).
pub fn write_fixtures(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let _ = dir;
    Ok(Vec::new())
}
