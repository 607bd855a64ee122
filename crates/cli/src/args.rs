//! Flag values, validated by the bounds every entry point shares ([`tuner_search::limits`]), so that a
//! bad number is refused by clap naming the flag, as the build refuses it naming the variable.

use tuner_search::limits;
use tuner_search::StrategyKind;

fn count(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| format!("`{s}` is not a positive integer"))
}

pub fn budget(s: &str) -> Result<usize, String> {
    limits::budget(count(s)?).map_err(|e| e.to_string())
}

pub fn population(s: &str) -> Result<usize, String> {
    limits::population(count(s)?).map_err(|e| e.to_string())
}

pub fn batch(s: &str) -> Result<usize, String> {
    limits::batch(count(s)?).map_err(|e| e.to_string())
}

pub fn seeds(s: &str) -> Result<usize, String> {
    limits::seeds(count(s)?).map_err(|e| e.to_string())
}

pub fn temperature(s: &str) -> Result<f64, String> {
    let t = s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not a number"))?;
    limits::temperature(t).map_err(|e| e.to_string())
}

/// A strategy name, listing this build's strategies (and saying which feature an LLM one needs).
pub fn strategy(s: &str) -> Result<StrategyKind, String> {
    s.trim().parse::<StrategyKind>().map_err(|e| e.to_string())
}
