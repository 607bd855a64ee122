//! Attention forward (flash-attention style, fp16 in, fp32 accumulate): tune the tile shapes and the
//! softmax variant, then report TFLOP/s against the default.
//!
//! `cargo run -p autotune-examples --example attention` replays recorded H100 measurements (no GPU); add
//! `--features cuda` and `-- --gpu` to measure on a real GPU.

use autotune_examples::Kernel;
use tuner_runtime::{Config, StrategyKind, Tuner};

fn main() -> anyhow::Result<()> {
    let mut kernel = Kernel::load("attention")?;
    let space = kernel.space()?;
    let default = kernel.default_config()?;
    let default_time = 1.0 / kernel.score(&default);
    let (best, score, history) = {
        let mut tuner = Tuner::new(space, |cfg: &Config| kernel.score(cfg))
            .max_evaluations(40)
            .verbose(false)
            .seed(3)
            .boxed_strategy(StrategyKind::Local.build());
        let best = tuner.tune()?;
        let invalid = tuner.history().iter().filter(|t| t.score.is_none()).count();
        (best, tuner.best_score().unwrap_or(0.0), (tuner.evaluation_count(), invalid))
    };
    let time = 1.0 / score;
    println!("{} evaluations ({} invalid)", history.0, history.1);
    println!("best    {best}: {time:.3} ms ({})", kernel.throughput(&best, time));
    println!("default {default}: {default_time:.3} ms ({})", kernel.throughput(&default, default_time));
    println!("speed-up {:.2}x", default_time / time);
    if let Some((config, time)) = kernel.optimum() {
        println!("(the table's optimum: {time:.4} ms, {config})");
    }
    Ok(())
}
