//! Where the time of a kernel tune goes (issue 6, docs/benchmarks.md "Cost"): runs the same loop as
//! `cargo autotune tune` (`tuning::tune_kernel` over a [`CudaBench`], the default strategy unless
//! `AUTOTUNE_STRATEGY` says otherwise) on one kernel of this crate and splits its wall time into
//!
//! - startup: compiling the default config and starting the worker (which measures the reference);
//! - compile: waiting for NVRTC, for every batch (in child processes, in parallel within a batch; a
//!   config compiled ahead in the background, `Objective::prefetch`, costs only what is left of its
//!   compile when it is asked for);
//! - benchmark: the worker measuring the batch (module load, warm-up, timed launches, output check);
//! - LLM: time inside the strategy's model calls (0 here unless an endpoint is configured: it is folded
//!   into "other", since the strategy does not report it separately);
//! - other: the strategy's own work and bookkeeping (the rest).
//!
//! `tune_cost [KERNEL] [BUDGET]` (default `sgemm 100`), from the repository root; prints one JSON line,
//! with the best time found after each quarter of the budget (`best_ms_after`). The options come from
//! the environment as for `cargo build` (`AUTOTUNE_STRATEGY`, `AUTOTUNE_SEED`, `AUTOTUNE_BATCH`,
//! `AUTOTUNE_POPULATION`).
//! Needs a CUDA GPU. The entry it finds is not written anywhere.

use std::time::{Duration, Instant};

use tuner_runtime::build::tuning::{tune_kernel, TuneOptions};
use tuner_runtime::cuda::{CudaBench, CudaBenchOptions};
use tuner_runtime::device::DeviceFingerprint;
use tuner_runtime::KernelObjective;
use tuner_runtime::{Config, Objective, Outcome};

/// The real-GPU objective with a stopwatch on each phase of a batch.
struct Timed {
    bench: CudaBench,
    compile: Duration,
    measure: Duration,
    batches: usize,
}

impl Objective for Timed {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        self.evaluate_batch(std::slice::from_ref(config)).pop().expect("one outcome per config")
    }

    fn batched(&self) -> bool {
        self.bench.batched()
    }

    fn prefetch(&mut self, configs: &[Config]) {
        self.bench.prefetch(configs)
    }

    fn evaluate_batch(&mut self, configs: &[Config]) -> Vec<Outcome> {
        self.batches += 1;
        let t = Instant::now();
        let compiled = self.bench.compile(configs);
        self.compile += t.elapsed();
        let t = Instant::now();
        let evals = self.bench.evaluate_compiled(configs, compiled);
        self.measure += t.elapsed();
        evals
            .into_iter()
            .map(|e| match e.result {
                tuner_runtime::cuda::worker::protocol::EvalResult::Ok(m) => Outcome::Score(1.0 / m.time_ms),
                tuner_runtime::cuda::worker::protocol::EvalResult::Failed(f) => Outcome::Invalid(f.to_string()),
            })
            .collect()
    }
}

impl KernelObjective for Timed {
    fn time_ms(&self, config: &Config) -> Option<f64> {
        self.bench.time_ms(config)
    }
    fn describe(&self) -> String {
        self.bench.describe()
    }
}

fn json_num(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map_or("null".into(), |v| v.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The benchmark's workers and compile processes are this executable run again.
    if let Some(code) = tuner_runtime::cuda::serve::serve_if_worker_arg() {
        std::process::exit(code);
    }
    let kernel = std::env::args().nth(1).unwrap_or_else(|| "sgemm".into());
    let budget: usize = std::env::args().nth(2).map(|b| b.parse()).transpose()?.unwrap_or(100);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if root.exists() { root.to_path_buf() } else { std::path::PathBuf::from("kernels") };
    let scan = tuner_runtime::build::scan::scan_crate(&root)?;
    let k = scan.kernels.iter().find(|k| k.spec.name == kernel).ok_or("no such kernel in the crate")?;
    let source = String::from_utf8_lossy(&k.source).into_owned();
    let mut options: TuneOptions = tuner_runtime::build::Settings::from_env()?.tune_options();
    options.max_evaluations = budget;

    let start = Instant::now();
    let bench = CudaBench::new(k.spec.clone(), &source, CudaBenchOptions::default())?;
    let startup = start.elapsed();
    let device = DeviceFingerprint::from(&bench.device);
    let mut timed = Timed { bench, compile: Duration::ZERO, measure: Duration::ZERO, batches: 0 };
    let t = Instant::now();
    let entry = tune_kernel(&k.spec, &k.source_blake3, &device, &mut timed, &options, &[])?;
    let search = t.elapsed();
    let configs = timed.bench.evaluations.len();
    let compile_sum: f64 = timed.bench.evaluations.iter().filter_map(|e| e.compile_ms).sum();
    let (prefetched, compiled_on_demand) = timed.bench.prefetch_hits();
    // The best time after every quarter of the budget (the default config is the first evaluation).
    let times: Vec<Option<f64>> = timed.bench.evaluations.iter().map(|e| e.result.time_ms()).collect();
    let best_after: Vec<String> = (1..=4)
        .map(|q| {
            let n = (budget * q / 4).min(times.len());
            let best = times[..n].iter().flatten().copied().fold(f64::INFINITY, f64::min);
            format!("\"{n}\":{}", json_num(Some(best)))
        })
        .collect();
    drop(timed.bench);
    let total = start.elapsed();
    let other = search.saturating_sub(timed.compile + timed.measure);
    let s = |d: Duration| d.as_secs_f64();
    println!(
        "{{\"kernel\":{kernel:?},\"device\":{:?},\"strategy\":{:?},\"budget\":{budget},\"population\":{},\"batch\":{},\"evaluations\":{},\
         \"configs_measured\":{configs},\"batches\":{},\"wall_s\":{:.3},\"startup_s\":{:.3},\"compile_s\":{:.3},\
         \"benchmark_s\":{:.3},\"llm_s\":0.0,\"other_s\":{:.3},\"compile_cpu_s\":{:.3},\"best\":{},\
         \"best_ms\":{},\"default_ms\":{},\"compile_threads\":{},\"prefetched\":{prefetched},\"compiled_on_demand\":{compiled_on_demand},\"best_ms_after\":{{{}}}}}",
        device.name,
        format!("{:?}", options.strategy).to_lowercase(),
        options.population_size,
        options.batch.map_or("null".into(), |b| b.to_string()),
        entry.tuning.evaluations,
        timed.batches,
        s(total),
        s(startup),
        s(timed.compile),
        s(timed.measure),
        s(other) + s(total.saturating_sub(startup + search)),
        compile_sum / 1e3,
        format!("{{{}}}", entry.best.iter().map(|(k, v)| format!("{k:?}:{v}")).collect::<Vec<_>>().join(",")),
        json_num(entry.best_time_ms),
        json_num(entry.default_time_ms),
        tuner_runtime::cuda::compile::default_threads(),
        best_after.join(","),
    );
    Ok(())
}
