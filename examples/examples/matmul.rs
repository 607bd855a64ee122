//! SGEMM (4096³, fp32): a nine-parameter space with constraints, searched by the built-in strategies
//! side by side on the same budget, as the build script would search it: from the spec's default config,
//! measured first and counted in the budget.
//!
//! `cargo run -p autotune-examples --example matmul` replays recorded H100 measurements (no GPU); add
//! `--features cuda` and `-- --gpu` to measure on a real GPU.

use autotune_examples::Kernel;
use tuner_runtime::{Config, StrategyKind, Tuner};

fn main() -> anyhow::Result<()> {
    let mut kernel = Kernel::load("sgemm")?;
    let space = kernel.space()?;
    let default = kernel.default_config()?;
    let default_time = 1.0 / kernel.score(&default);
    println!("default {default}: {default_time:.3} ms ({})", kernel.throughput(&default, default_time));
    let strategies = [
        ("random", StrategyKind::Random),
        ("de", StrategyKind::De),
        ("local", StrategyKind::Local),
        ("surrogate", StrategyKind::Surrogate),
    ];
    for (name, strategy) in strategies {
        let (best, score) = {
            let mut tuner = Tuner::new(space.clone(), |cfg: &Config| kernel.score(cfg))
                .max_evaluations(60)
                .verbose(false)
                .seed(1)
                .boxed_strategy(strategy.build())
                .start_with(std::slice::from_ref(&default))?;
            let best = tuner.tune()?;
            (best, tuner.best_score().unwrap_or(0.0))
        };
        let time = 1.0 / score;
        println!(
            "{name:>9}: {time:.3} ms ({}), {:.2}x the default: {best}",
            kernel.throughput(&best, time),
            default_time / time
        );
    }
    if let Some((config, time)) = kernel.optimum() {
        println!("(the table's optimum: {time:.4} ms, {config})");
    }
    Ok(())
}
