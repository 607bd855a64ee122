//! The one validation of a run's numbers, shared by every entry point: the CLI's flags and the
//! environment variables of the build and of `cargo autotune tune` go through these, and each caller
//! names its flag or variable in the error.
//!
//! The [`Tuner`](crate::Tuner)'s own builder takes any value, as the seed's API did (a budget of 0 runs
//! nothing and says so); these bounds are for values a person typed.

/// A value outside its bounds: what it must be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfBounds(pub &'static str);

/// An evaluation budget: at least 1.
pub fn budget(n: u64) -> Result<usize, OutOfBounds> {
    at_least_one(n, "the budget must be at least 1 evaluation")
}

/// A population (the batch cap of every strategy): at least 1.
pub fn population(n: u64) -> Result<usize, OutOfBounds> {
    at_least_one(n, "the population must be at least 1")
}

/// A batch (configs per model round): at least 1.
pub fn batch(n: u64) -> Result<usize, OutOfBounds> {
    at_least_one(n, "the batch must be at least 1 config")
}

/// A number of seeds to run: at least 1.
pub fn seeds(n: u64) -> Result<usize, OutOfBounds> {
    at_least_one(n, "at least 1 seed must run")
}

/// A sampling temperature: a finite number, at least 0.
pub fn temperature(t: f64) -> Result<f64, OutOfBounds> {
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err(OutOfBounds("the temperature must be a finite number, at least 0"))
    }
}

/// The seeds `first .. first + count`, when none of them overflows a `u64`.
pub fn seed_range(first: u64, count: usize) -> Result<std::ops::Range<u64>, OutOfBounds> {
    let end = u64::try_from(count).ok().and_then(|c| first.checked_add(c));
    end.map(|end| first..end).ok_or(OutOfBounds("the seeds run past the largest seed, 18446744073709551615"))
}

fn at_least_one(n: u64, why: &'static str) -> Result<usize, OutOfBounds> {
    match usize::try_from(n) {
        Ok(0) => Err(OutOfBounds(why)),
        Ok(n) => Ok(n),
        Err(_) => Ok(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(budget(0).is_err());
        assert_eq!(budget(5), Ok(5));
        assert!(population(0).is_err());
        assert!(seeds(0).is_err());
        assert!(temperature(f64::NAN).is_err());
        assert!(temperature(f64::INFINITY).is_err());
        assert!(temperature(-0.1).is_err());
        assert_eq!(temperature(0.0), Ok(0.0));
        assert_eq!(seed_range(3, 2), Ok(3..5));
        assert!(seed_range(u64::MAX, 1).is_err());
        assert_eq!(seed_range(u64::MAX - 1, 1), Ok(u64::MAX - 1..u64::MAX));
    }
}
