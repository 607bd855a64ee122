//! What the tuner maximises: an objective maps a config to a score, higher is better.
//!
//! The seed's convention stays: a score of 0.0, -inf or NaN means "invalid config". Here an objective
//! returns an [`Outcome`], which says *why* a config is invalid; a plain closure returning `f64` is
//! an objective too, and its special values are turned into reasons by [`Outcome::from_score`].

use tuner_spec::config::Config;

/// The result of evaluating one config.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A valid measurement; higher is better.
    Score(f64),
    /// The config could not be measured, with the reason (compile error, launch failure, wrong output…).
    Invalid(String),
}

impl Outcome {
    /// Reads a seed-style score: 0.0, ±inf and NaN are invalid, anything else is a score.
    pub fn from_score(score: f64) -> Outcome {
        if score.is_nan() {
            Outcome::Invalid("objective returned NaN".into())
        } else if score == f64::NEG_INFINITY {
            Outcome::Invalid("objective returned -inf".into())
        } else if score == f64::INFINITY {
            Outcome::Invalid("objective returned +inf".into())
        } else if score == 0.0 {
            Outcome::Invalid("objective returned 0".into())
        } else {
            Outcome::Score(score)
        }
    }

    pub fn score(&self) -> Option<f64> {
        match self {
            Outcome::Score(s) => Some(*s),
            Outcome::Invalid(_) => None,
        }
    }
}

/// Something that scores configs.
///
/// Objectives that gain from seeing several configs at once (parallel compilation, several GPUs) return
/// `true` from [`Objective::batched`] and implement [`Objective::evaluate_batch`]; the tuner then hands
/// them whole batches. Others are called one config at a time, so a panic costs only that config.
pub trait Objective {
    fn evaluate(&mut self, config: &Config) -> Outcome;

    fn batched(&self) -> bool {
        false
    }

    /// Scores a batch; must return one outcome per config, in order.
    fn evaluate_batch(&mut self, configs: &[Config]) -> Vec<Outcome> {
        configs.iter().map(|c| self.evaluate(c)).collect()
    }

    /// Configs the strategy expects to ask for soon, best guess first (never ones already evaluated or
    /// in the batch about to be). An objective may prepare them, e.g. compile them in the background
    /// as the GPU bench does; they may never be asked for. The default does nothing.
    fn prefetch(&mut self, _configs: &[Config]) {}
}

impl<F: FnMut(&Config) -> f64> Objective for F {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        Outcome::from_score(self(config))
    }
}
