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

/// A compute capability, `9.0` (or `90`, `sm_90`).
pub fn compute_capability(s: &str) -> Result<(u32, u32), String> {
    let t = s.trim().trim_start_matches("sm_");
    let bad = || format!("`{s}` is not a compute capability such as `9.0`");
    match t.split_once('.') {
        Some((major, minor)) => Ok((major.parse().map_err(|_| bad())?, minor.parse().map_err(|_| bad())?)),
        None if t.len() >= 2 && t.bytes().all(|b| b.is_ascii_digit()) => {
            let (major, minor) = t.split_at(t.len() - 1);
            Ok((major.parse().map_err(|_| bad())?, minor.parse().map_err(|_| bad())?))
        }
        None => Err(bad()),
    }
}

/// A problem size, `NAME=VALUE` (`m=1024`, `n=1<<20` is not taken: a plain integer).
pub fn size(s: &str) -> Result<(String, i64), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=VALUE, e.g. m=1024"))?;
    let value: i64 = value.trim().parse().map_err(|_| format!("`{s}`: `{}` is not an integer", value.trim()))?;
    if value < 1 {
        return Err(format!("`{s}`: a size is at least 1"));
    }
    Ok((name.trim().to_owned(), value))
}
