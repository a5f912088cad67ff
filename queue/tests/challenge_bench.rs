//! Benchmark, not a test: native (Rust, one core) time to solve join challenges of 12, 16 and
//! 20 bits, the median of several random challenges (docs/operations.md, "Abuse and
//! identity"). Run with
//! `cargo test --release -p queue --test challenge_bench -- --ignored --nocapture`.

use queue::challenge::{solve, solves};
use std::time::Instant;

#[test]
#[ignore]
fn solve_time_per_difficulty_native() {
    const RUNS: usize = 21;
    for bits in [12u32, 16, 20] {
        let mut ms = Vec::new();
        let mut hashes = Vec::new();
        for _ in 0..RUNS {
            // A challenge-shaped string (about as long as a real one), random each run.
            let id: [u8; 16] = rand::random();
            let challenge = format!(
                "AbCdEfGh.eyJlIjoiYmVuY2giLCJiIjoxNiwieCI6MTgwMDAwMDEyMDAwMCwibiI6Ij{}In0.c2lnbmF0dXJlX3NpZ25hdHVyZV9zaWduYXR1cmVfc2ln",
                id.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            let t = Instant::now();
            let nonce = solve(&challenge, bits);
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(solves(&challenge, &nonce, bits));
            hashes.push(nonce.parse::<u64>().unwrap() + 1);
        }
        let rate = hashes.iter().sum::<u64>() as f64 / ms.iter().sum::<f64>() / 1000.0;
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        hashes.sort_unstable();
        println!(
            "native, {bits} bits: median {:.1} ms over {RUNS} runs (min {:.1}, max {:.1}), median {} hashes, {rate:.2} M hashes/s",
            ms[RUNS / 2], ms[0], ms[RUNS - 1], hashes[RUNS / 2]
        );
    }
}
