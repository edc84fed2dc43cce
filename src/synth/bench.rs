//! stub
pub struct BenchParams;
pub struct BenchStats;
pub fn bench_capture() {}
