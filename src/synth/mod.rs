//! The deterministic capture builder: scenario code → pcap/pcapng bytes. Used to generate
//! the committed `fixtures/`, by tests, by the benchmark generator, and by `sipscope synth`.
//!
//! Owns: packet construction (Ethernet/VLAN/SLL/raw, IPv4/IPv6 with checksums, UDP, TCP,
//! IP fragmentation, IP-in-IP and GRE), pcap/pcapng writing (both timestamp resolutions,
//! several interfaces, optional gzip), SIP and SDP text builders, RTP/RTCP/telephone-event
//! generators with controllable loss, jitter, reordering and duplication, call and
//! registration scenarios, the committed fixtures with their expected results, and the
//! benchmark capture generator. Everything is a pure function of its inputs (own seeded
//! PRNG, no clock), so fixtures are byte-for-byte reproducible on every machine.
//!
//! Layering: uses only `crate::types` and `crate::capture::linktype`.

pub mod bench;
pub mod builder;
pub mod fixture;
pub mod media;
pub mod packet;
pub mod scenario;
pub mod siptext;

pub use bench::{BenchParams, BenchStats, bench_capture};
pub use builder::{
    Endian, FileFormat, Packet, PcapOptions, PcapWriter, PcapngInterface, PcapngWriter,
    TsResolution, gzip, write_capture,
};
pub use fixture::{Fixture, fixtures, write_fixtures};

/// SplitMix64: tiny, fast, good enough statistically for test traffic, and (unlike an
/// external crate) guaranteed never to change its stream between versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// Lower-case hex token of `n` characters (tags, branches, nonces).
    pub fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n);
        let mut x = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                x = self.next_u64();
            }
            s.push(HEX[(x & 15) as usize] as char);
            x >>= 4;
        }
        s
    }
}

/// The SplitMix64 finaliser: a stateless 64-bit mix, used where a value must be a pure
/// function of its coordinates (the benchmark generator draws loss/jitter per packet
/// without keeping per-stream PRNG state).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stateless uniform [0, 1) from a key.
pub fn unit_f64(key: u64) -> f64 {
    (mix64(key) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_seed_dependent() {
        let a: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..8)
            .scan(Rng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn rng_ranges() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(10) < 10);
        }
        assert_eq!(r.below(0), 0);
        let h = r.hex(20);
        assert_eq!(h.len(), 20);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
