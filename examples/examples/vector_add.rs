//! The seed's example on the generic API: tune vector add's block size, items per thread and vector
//! width with a closure objective (higher is better, 0.0 invalid).
//!
//! `cargo run -p autotune-examples --example vector_add` replays recorded H100 measurements (no GPU);
//! `cargo run -p autotune-examples --features cuda --example vector_add -- --gpu` measures for real.

use autotune_examples::Kernel;
use tuner_runtime::{Config, Tuner};

fn main() -> anyhow::Result<()> {
    let mut kernel = Kernel::load("vector_add")?;
    let space = kernel.space()?;
    let default = kernel.default_config()?;
    let default_score = kernel.score(&default);
    let (best, score, evaluations) = {
        let mut tuner = Tuner::new(space, |cfg: &Config| -> f64 { kernel.score(cfg) })
            .max_evaluations(50)
            .population_size(20)
            .temperature(0.8)
            .verbose(true)
            .seed(7)
            // Ctrl-C is the caller's choice: here it stops after the evaluation in progress, and
            // `tune()` returns the best so far.
            .stop_flag(tuner_runtime::stop_on_ctrl_c()?);
        let best = tuner.tune()?;
        (best, tuner.best_score().unwrap_or(0.0), tuner.evaluation_count())
    };
    // Scores are 1 / time in ms.
    let (time, default_time) = (1.0 / score, 1.0 / default_score);
    println!("best {best} after {evaluations} evaluations: {time:.4} ms ({})", kernel.throughput(&best, time));
    println!(
        "default {default}: {default_time:.4} ms ({}); {:.2}x",
        kernel.throughput(&default, default_time),
        default_time / time
    );
    if let Some((config, time)) = kernel.optimum() {
        println!("(the table's optimum: {time:.4} ms, {config})");
    }
    Ok(())
}
