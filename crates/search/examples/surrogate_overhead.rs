//! The surrogate's cost per proposal: fit both forests on a 200-config history and rank the candidates
//! for one batch, on one core.
//!
//! ```text
//! cargo run --release -p tuner-runtime --example surrogate_overhead [-- --history 200 --batch 20 --reps 15]
//! ```
//!
//! The history is a real surrogate run on each problem (so the best configs cluster as they do in
//! practice); the figures are the median and maximum time of one `propose` call (a whole batch) over
//! `--reps` calls, each with a fresh strategy and generator: CPU time of the calling thread (the
//! surrogate is single-threaded, so this is its cost on one core, however busy the machine) and wall
//! time. Problems: the synthetic SGEMM-like space and its big variant (too
//! large to scan: neighbourhood and sampled candidates), the former narrowed to just under the exhaustive-scan
//! limit (every unseen config scored for exploration, the costliest case) and a replay table.

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

use std::collections::HashSet;
use std::time::Instant;

use rand::SeedableRng;
use tuner_search::strategy::{Context, Rng, Surrogate};
use tuner_search::{Config, Outcome, Point, Space, Strategy, Tuner};

/// CPU time this thread has run, in ns (Linux: the first field of /proc/thread-self/schedstat), which
/// other processes on a busy machine do not inflate as they do wall time.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn measure(name: &str, space: &Space, outcome: &dyn Fn(&Config) -> Outcome, history: usize, batch: usize, reps: usize) {
    let objective = |c: &Config| match outcome(c) {
        Outcome::Score(s) => s,
        Outcome::Invalid(_) => 0.0,
    };
    let mut tuner = Tuner::new(space.clone(), objective)
        .max_evaluations(history)
        .population_size(batch)
        .seed(1)
        .verbose(false)
        .strategy(Surrogate::new());
    let _ = tuner.tune();
    let trials = tuner.history().to_vec();
    let seen: HashSet<Point> = trials.iter().map(|t| t.point.clone()).collect();
    let mut times = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    let mut candidates = 0;
    for rep in 0..reps {
        let mut rng = Rng::seed_from_u64(rep as u64);
        let mut ctx = Context {
            space,
            history: &trials,
            seen: &seen,
            rng: &mut rng,
            population_size: batch,
            temperature: 0.8,
            remaining: batch,
        };
        let mut s = Surrogate::new();
        let (t0, c0) = (Instant::now(), thread_cpu_ns());
        let out = s.propose(&mut ctx, batch);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            cpu.push((b - a) as f64 / 1e6);
        }
        assert_eq!(out.len(), batch, "a full batch");
        candidates = s.report().get("last_candidates").and_then(|v| v.as_u64()).unwrap_or(0);
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let cpu_median = cpu.get(cpu.len() / 2).map_or("-".to_owned(), |c| format!("{c:.1}"));
    let cpu_max = cpu.last().map_or("-".to_owned(), |c| format!("{c:.1}"));
    println!(
        "| {name} | {} | {} | {candidates} | {cpu_median} | {cpu_max} | {:.1} | {:.1} |",
        trials.len(),
        batch,
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str, default: &str| -> String {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.into())
    };
    let history: usize = get("--history", "200").parse()?;
    let batch: usize = get("--batch", "20").parse()?;
    let reps: usize = get("--reps", "15").parse()?;
    println!("| problem | history | batch | candidates scored | CPU ms, median | CPU ms, max | wall ms, median | wall ms, max |");
    println!("|---|---|---|---|---|---|---|---|");
    for p in [synthetic::gemm(false), synthetic::gemm(true)] {
        measure(&p.name, &p.space, &|c| p.outcome(c), history, batch, reps);
    }
    // Just under the exhaustive-scan limit: the worst case for exploration's cost.
    let p = synthetic::gemm(false);
    let narrowed =
        p.space.with_constraints(&["swizzle == 0".to_owned(), "pad == 0".to_owned(), "unroll == 1".to_owned()])?;
    let name = format!("synthetic-gemm, {} configs (scanned)", narrowed.valid_count().unwrap_or(0));
    measure(&name, &narrowed, &|c| p.outcome(c), history, batch, reps);
    let table = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/reduce.json");
    let replay = tuner_search::Replay::load(table)?;
    measure("reduce.json", replay.space(), &|c| replay.outcome(c), history, batch, reps);
    Ok(())
}
