//! What choosing a config costs a launch, on the CPU (issue 17; docs/benchmarks.md, "Dispatch cost"):
//! SGEMM's generated table (`sgemm_tuning::TABLE`, the committed entries) asked for the config of a
//! launch, as `KERNEL.plan` asks it.
//!
//! - `cached`: `Table::choose(slot, sizes)` for sizes seen before, cycling over 4 shapes (the hot path:
//!   a read lock and a hash-map lookup);
//! - `by name`: `Table::choose_for(name, cc, sizes)`, which also finds the device's slot by name;
//! - `first`: the first launch of a new shape, which evaluates the rules (constraints and geometry of
//!   every candidate entry) and stores the answer.
//!
//! `cargo run --release -p autotune-kernels --example dispatch_cost [ITERATIONS]`; no GPU needed. One
//! JSON line per measurement, the median of 5 rounds.

use std::hint::black_box;
use std::time::Instant;

use autotune_kernels::sgemm::sgemm_tuning::TABLE;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4_000_000);
    let device = "NVIDIA H100 80GB HBM3";
    let slot = TABLE.device_slot(device, (9, 0));
    let shapes: [[i64; 3]; 4] = [[1024, 1024, 1024], [4096, 4096, 4096], [2048, 2048, 2048], [16384, 256, 4096]];
    for s in &shapes {
        TABLE.choose(slot, s).expect("every shape fits");
    }
    let mut cached = Vec::new();
    let mut by_name = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..iterations {
            let p = TABLE.choose(slot, black_box(&shapes[i & 3])).expect("cached");
            black_box(p.index);
        }
        cached.push(t.elapsed().as_nanos() as f64 / iterations as f64);
        let t = Instant::now();
        for i in 0..iterations {
            let p = TABLE.choose_for(black_box(device), (9, 0), black_box(&shapes[i & 3])).expect("cached");
            black_box(p.index);
        }
        by_name.push(t.elapsed().as_nanos() as f64 / iterations as f64);
    }
    // New shapes: multiples of 128 that every entry's tiles may or may not divide.
    let mut first = Vec::new();
    let mut next = 0i64;
    for _ in 0..5 {
        let n = 2_000;
        let t = Instant::now();
        for _ in 0..n {
            next += 1;
            let m = 128 * (next % 64 + 1);
            let p = TABLE.choose(slot, &[m, 128 * (next / 64 + 1), 1024]).expect("the default fits multiples of 128");
            black_box(p.index);
        }
        first.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    for (what, ns) in [("cached", median(cached)), ("by name", median(by_name)), ("first", median(first))] {
        println!(
            "{{\"type\":\"dispatch\",\"what\":\"{what}\",\"ns_per_launch\":{ns:.1},\"entries\":{},\"cpu\":\"{cpu}\"}}",
            TABLE.entries().len()
        );
    }
}
