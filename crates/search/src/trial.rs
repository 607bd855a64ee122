//! One evaluation of the search: what the tuner records and every strategy reads.
//!
//! It sits below both the [`Tuner`](crate::Tuner) and the strategies, which the tuner drives and which
//! read the history it keeps, so neither imports the other's module for it.

use std::time::Duration;

use tuner_spec::{Config, Point};

/// One evaluation, in the order it happened.
#[derive(Clone, Debug)]
pub struct Trial {
    pub point: Point,
    pub config: Config,
    /// The score, when the config was valid.
    pub score: Option<f64>,
    /// Why the config was invalid, when it was.
    pub failure: Option<String>,
    /// Wall time the objective spent on this config (a batch's time is shared evenly).
    pub elapsed: Duration,
}
