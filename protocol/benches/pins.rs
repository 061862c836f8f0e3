//! Criterion benchmarks of PIN generation and verification.

fn main() {}
