//! The real GPU path end to end: `CudaBench` driven by the generic `Tuner`, and the planted failures.
//! Needs a CUDA GPU (and the `cuda` feature: the CLI binary is the worker); run with
//! `cargo test -p tuner-cli --features cuda -- --ignored`.
#![cfg(feature = "cuda")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tuner_cuda::worker::protocol::{EvalResult, FailureKind};
use tuner_cuda::{CudaBench, CudaBenchOptions};
use tuner_search::{StrategyKind, Tuner};
use tuner_spec::spec::find_specs;

fn kernels() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels")
}

fn bench(spec_file: &str, timeout: Duration) -> CudaBench {
    let text = std::fs::read_to_string(kernels().join(spec_file)).unwrap();
    let spec = find_specs(&text).unwrap().remove(0).unwrap();
    let source = std::fs::read_to_string(kernels().join(&spec.kernel)).unwrap();
    let opts = CudaBenchOptions {
        timeout,
        // The test harness has no `__worker` subcommand; the CLI binary does.
        worker_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_cargo-autotune"))),
        ..CudaBenchOptions::default()
    };
    CudaBench::new(spec.check().unwrap(), &source, opts).unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn the_tuner_drives_the_gpu_benchmark() {
    let bench = bench("src/vector_add.rs", Duration::from_secs(10));
    let space = bench.space().clone();
    let mut tuner = Tuner::new(space, bench).max_evaluations(12).seed(3).boxed_strategy(StrategyKind::Random.build());
    let best = tuner.tune().unwrap();
    assert!(tuner.best_score().unwrap() > 0.0, "{best}");
    assert_eq!(tuner.evaluation_count(), 12);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn planted_failures_are_invalid_and_the_run_finishes() {
    let mut bench = bench("e2e/planted.rs", Duration::from_secs(3));
    let space = bench.space().clone();
    let configs: Vec<_> = space.valid_points().unwrap().iter().map(|p| space.config(p)).collect();
    let evals = bench.evaluate_configs(&configs);
    for e in &evals {
        let mode = e.config.int("mode").unwrap();
        match (&e.result, mode) {
            (EvalResult::Ok(_), 0) => {}
            (EvalResult::Failed(f), 1) => assert_eq!(f.kind, FailureKind::WrongOutput, "{f}"),
            (EvalResult::Failed(f), 2) => assert_eq!(f.kind, FailureKind::Timeout, "{f}"),
            (EvalResult::Failed(f), 3) => assert_eq!(f.kind, FailureKind::Launch, "{f}"),
            (r, m) => panic!("mode {m}: {r:?}"),
        }
    }
    assert_eq!(bench.pool_stats().crashes, 0);
}
