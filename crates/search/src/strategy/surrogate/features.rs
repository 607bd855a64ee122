//! What the surrogate's forests see of a config.
//!
//! Each parameter is one feature: `log2(value)` for a parameter whose values are all positive integers
//! (tile sizes, block sizes, unroll factors, vector widths), else its value's index in the declared list.
//! Trees only compare a feature with thresholds, so any order-preserving scale would do for these alone;
//! the log matters for the **pair features**: for two such parameters `a` and `b`, `log2(a) + log2(b)`
//! and `log2(a) − log2(b)`, the logs of `a·b` and `a/b`. Kernel performance is driven by exactly such
//! products and ratios — threads per block (`bm/tm · bn/tn`), tile areas, work per thread, shared memory
//! (`(bm + bn)·bk`) — and an axis-aligned tree needs many splits to carve a diagonal boundary out of two
//! separate axes, which a history of 20–50 trials cannot support. With the pairs, a single split can.
//!
//! But pairs grow with the square of the parameters: 9 log-scaled parameters give 72 pair features next
//! to 9 of their own, and a forest fitted on 20–50 trials then finds spurious splits among them. So
//! they are only added up to a number of parameters ([`crate::strategy::SurrogateSettings::max_pair_params`],
//! 5 by default), where they were measured to help (docs/surrogate.md: softmax, 5 parameters, 0.89 →
//! 0.98 of seeds within 2% at 50 evaluations) and not where they hurt (the synthetic SGEMM-like space,
//! 9 parameters, 0.30 → 0.03).

use tuner_spec::space::{Point, Space};
use tuner_spec::value::Value;

/// The feature map of one space.
pub struct Features {
    /// Per parameter: the feature value of each of its values.
    columns: Vec<Vec<f64>>,
    /// Parameter pairs `(i, j)` with log-scaled columns; each adds a sum and a difference feature.
    pairs: Vec<(usize, usize)>,
}

impl Features {
    /// The feature map of `space`, with the pair features when it has at most `max_pair_params`
    /// log-scaled parameters (0: never).
    pub fn new(space: &Space, max_pair_params: usize) -> Features {
        let mut logged = Vec::new();
        let columns = space
            .params()
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let ints: Option<Vec<i64>> = p
                    .values
                    .iter()
                    .map(|v| if let Value::Int(i) = v { (*i > 0).then_some(*i) } else { None })
                    .collect();
                match ints {
                    Some(ints) if ints.len() > 1 => {
                        logged.push(k);
                        ints.iter().map(|&i| (i as f64).log2()).collect()
                    }
                    _ => (0..p.values.len()).map(|i| i as f64).collect(),
                }
            })
            .collect();
        let pairs = if logged.len() <= max_pair_params {
            logged.iter().enumerate().flat_map(|(n, &i)| logged[n + 1..].iter().map(move |&j| (i, j))).collect()
        } else {
            Vec::new()
        };
        Features { columns, pairs }
    }

    /// How many features a point has.
    pub fn len(&self) -> usize {
        self.columns.len() + 2 * self.pairs.len()
    }

    /// The features of `point`.
    pub fn of(&self, point: &Point) -> Vec<f64> {
        let base: Vec<f64> = point.0.iter().zip(&self.columns).map(|(&i, c)| c[i as usize]).collect();
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&base);
        for &(i, j) in &self.pairs {
            out.push(base[i] + base[j]);
            out.push(base[i] - base[j]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_integers_are_logged_and_paired_others_are_indices() {
        let space = Space::builder()
            .param("bm", [32, 64, 128])
            .param("tm", [2, 8])
            .param("kind", ["a", "b", "c"])
            .param("off", [0, 1])
            .build()
            .expect("a valid space");
        let f = Features::new(&space, 2);
        // bm and tm are logged and paired; kind and off (a zero) keep their indices.
        assert_eq!(f.len(), 4 + 2);
        assert_eq!(f.of(&Point(vec![2, 1, 1, 1])), vec![7.0, 3.0, 1.0, 1.0, 10.0, 4.0]);
        // Pairs only up to `max_pair_params` log-scaled parameters: bm and tm are two.
        assert_eq!(Features::new(&space, 1).len(), 4);
        let plain = Features::new(&space, 0);
        assert_eq!(plain.of(&Point(vec![0, 0, 2, 0])), vec![5.0, 1.0, 2.0, 0.0]);
    }
}
