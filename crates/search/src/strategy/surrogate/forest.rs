//! A compact random forest of regression trees, the model behind the [`Surrogate`] strategy.
//!
//! Why our own and not a crate: the surrogate needs three things that the Rust forest crates we looked at
//! do not give together — every random choice drawn from the caller's seeded generator (so a tuning run
//! is reproducible by seed), the spread of the per-tree predictions (the model's uncertainty, which the
//! acquisition needs), and a fit in about a millisecond on a few hundred points. A forest small enough
//! for that is about two hundred lines, so it lives here with its own tests.
//!
//! The trees are CART regression trees: each node tries a random subset of the features
//! (`max_features`), sorts its samples by each, and takes the threshold between two distinct values that
//! most reduces the weighted squared error; a node stops splitting at `max_depth`, when a side would hold
//! fewer than `min_leaf` samples, or when its targets are all equal. Each tree is fitted on a bootstrap
//! resample. Classification is regression on 0/1 targets: the mean prediction is then a probability.
//!
//! The inputs are the surrogate's [`Features`](super::Features): ordinal per parameter (log2 of a size,
//! or a value's index), so a threshold split on "value ≤ k" matches how kernel parameters behave (tile
//! sizes, block sizes, unroll factors).
//!
//! [`Surrogate`]: super::Surrogate

use rand::seq::index::sample;
use rand::Rng;

/// How a forest is grown.
#[derive(Clone, Debug)]
pub struct ForestParams {
    pub trees: usize,
    pub max_depth: usize,
    /// A split must leave at least this many (bootstrap) samples on each side.
    pub min_leaf: usize,
    /// The fraction of the features each node considers (at least one).
    pub max_features: f64,
    /// Fit each tree on a bootstrap resample (otherwise on all samples).
    pub bootstrap: bool,
}

impl Default for ForestParams {
    fn default() -> ForestParams {
        ForestParams { trees: 32, max_depth: 12, min_leaf: 1, max_features: 0.7, bootstrap: true }
    }
}

const LEAF: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    /// The feature split on, or [`LEAF`].
    feature: u32,
    threshold: f64,
    left: u32,
    right: u32,
    /// The (weighted) mean target of the node's samples.
    value: f64,
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.feature == LEAF {
                return n.value;
            }
            i = if x[n.feature as usize] <= n.threshold { n.left } else { n.right } as usize;
        }
    }
}

/// A fitted forest.
#[derive(Clone, Debug)]
pub struct Forest {
    trees: Vec<Tree>,
    dims: usize,
}

/// Training data, binned: each feature's distinct values, sorted, and each sample's bin per feature.
struct Data<'a> {
    y: &'a [f64],
    w: &'a [f64],
    /// `values[f]`: the distinct values of feature `f`, ascending.
    values: Vec<Vec<f64>>,
    /// `bins[i * dims + f]`: the index of sample `i`'s feature `f` in `values[f]`.
    bins: Vec<u32>,
    dims: usize,
}

impl Data<'_> {
    fn bin(&self, i: usize, f: usize) -> usize {
        self.bins[i * self.dims + f] as usize
    }
}

impl Forest {
    /// Fits a forest to rows `x` (all the same length) with targets `y` and optional sample weights.
    ///
    /// Panics if `x` is empty or the lengths disagree: callers build these from the tuner's history and a
    /// mismatch is a bug, not an input error.
    pub fn fit(x: &[Vec<f64>], y: &[f64], w: Option<&[f64]>, params: &ForestParams, rng: &mut impl Rng) -> Forest {
        assert!(!x.is_empty(), "a forest needs at least one sample");
        assert_eq!(x.len(), y.len(), "one target per sample");
        let dims = x[0].len();
        assert!(x.iter().all(|r| r.len() == dims), "every sample has the same number of features");
        let ones = vec![1.0; x.len()];
        let w = match w {
            Some(w) => {
                assert_eq!(w.len(), x.len(), "one weight per sample");
                w
            }
            None => &ones,
        };
        let values: Vec<Vec<f64>> = (0..dims)
            .map(|f| {
                let mut v: Vec<f64> = x.iter().map(|r| r[f]).collect();
                v.sort_by(f64::total_cmp);
                v.dedup();
                v
            })
            .collect();
        let mut bins = Vec::with_capacity(x.len() * dims);
        for r in x {
            for (f, vals) in values.iter().enumerate() {
                let b = vals.partition_point(|v| v.total_cmp(&r[f]).is_lt());
                bins.push(b as u32);
            }
        }
        let data = Data { y, w, values, bins, dims };
        let mtry = ((dims as f64 * params.max_features).ceil() as usize).clamp(1, dims.max(1));
        let trees = (0..params.trees.max(1))
            .map(|_| {
                let idx: Vec<usize> = if params.bootstrap {
                    (0..x.len()).map(|_| rng.gen_range(0..x.len())).collect()
                } else {
                    (0..x.len()).collect()
                };
                let mut nodes = Vec::new();
                grow(&data, idx, 0, params, mtry, rng, &mut nodes);
                Tree { nodes }
            })
            .collect();
        Forest { trees, dims }
    }

    /// The mean and the variance of the trees' predictions at `x`.
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        debug_assert_eq!(x.len(), self.dims);
        let n = self.trees.len() as f64;
        let (mut s, mut q) = (0.0, 0.0);
        for t in &self.trees {
            let v = t.predict(x);
            s += v;
            q += v * v;
        }
        let mean = s / n;
        (mean, (q / n - mean * mean).max(0.0))
    }

    /// The mean of the trees' predictions at `x`.
    pub fn predict_mean(&self, x: &[f64]) -> f64 {
        self.predict(x).0
    }
}

/// Grows the subtree for samples `idx` and returns its node index.
fn grow(
    data: &Data<'_>,
    idx: Vec<usize>,
    depth: usize,
    params: &ForestParams,
    mtry: usize,
    rng: &mut impl Rng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let (mut sw, mut sy, mut sq) = (0.0, 0.0, 0.0);
    for &i in &idx {
        let (w, y) = (data.w[i], data.y[i]);
        sw += w;
        sy += w * y;
        sq += w * y * y;
    }
    let value = if sw > 0.0 { sy / sw } else { 0.0 };
    let me = nodes.len() as u32;
    nodes.push(Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, value });
    let parent_sse = sq - if sw > 0.0 { sy * sy / sw } else { 0.0 };
    if depth >= params.max_depth || idx.len() < 2 * params.min_leaf.max(1) || parent_sse <= 1e-12 * sw.max(1.0) {
        return me;
    }
    let min_leaf = params.min_leaf.max(1);
    // (gain, feature, last bin on the left)
    let mut best: Option<(f64, usize, usize)> = None;
    // Per-bin count, weight, weighted sum and weighted sum of squares.
    let mut hist: Vec<(usize, f64, f64, f64)> = Vec::new();
    for f in sample(rng, data.dims, mtry).into_iter() {
        hist.clear();
        hist.resize(data.values[f].len(), (0, 0.0, 0.0, 0.0));
        for &i in &idx {
            let h = &mut hist[data.bin(i, f)];
            let (w, y) = (data.w[i], data.y[i]);
            h.0 += 1;
            h.1 += w;
            h.2 += w * y;
            h.3 += w * y * y;
        }
        let (mut lc, mut lw, mut ly, mut lq) = (0usize, 0.0, 0.0, 0.0);
        for (b, h) in hist.iter().enumerate() {
            if h.0 == 0 {
                continue;
            }
            lc += h.0;
            lw += h.1;
            ly += h.2;
            lq += h.3;
            let rc = idx.len() - lc;
            if rc < min_leaf {
                break;
            }
            if lc < min_leaf {
                continue;
            }
            let (rw, ry, rq) = (sw - lw, sy - ly, sq - lq);
            if lw <= 0.0 || rw <= 0.0 {
                continue;
            }
            let sse = (lq - ly * ly / lw) + (rq - ry * ry / rw);
            let gain = parent_sse - sse;
            if gain > 1e-12 && best.map_or(true, |(g, _, _)| gain > g) {
                best = Some((gain, f, b));
            }
        }
    }
    let Some((_, feature, split)) = best else { return me };
    // The threshold sits halfway to the next value present in the node.
    let next =
        idx.iter().map(|&i| data.bin(i, feature)).filter(|&b| b > split).min().expect("both sides are non-empty");
    let threshold = 0.5 * (data.values[feature][split] + data.values[feature][next]);
    let (left, right): (Vec<usize>, Vec<usize>) = idx.into_iter().partition(|&i| data.bin(i, feature) <= split);
    let l = grow(data, left, depth + 1, params, mtry, rng, nodes);
    let r = grow(data, right, depth + 1, params, mtry, rng, nodes);
    let node = &mut nodes[me as usize];
    node.feature = feature as u32;
    node.threshold = threshold;
    node.left = l;
    node.right = r;
    me
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn grid() -> Vec<Vec<f64>> {
        let mut x = Vec::new();
        for a in 0..8 {
            for b in 0..8 {
                x.push(vec![a as f64 / 7.0, b as f64 / 7.0]);
            }
        }
        x
    }

    #[test]
    fn fits_a_step_exactly_without_bootstrap() {
        let x = grid();
        let y: Vec<f64> = x.iter().map(|r| if r[0] > 0.5 { 3.0 } else { -1.0 }).collect();
        let params = ForestParams { trees: 4, bootstrap: false, max_features: 1.0, ..ForestParams::default() };
        let f = Forest::fit(&x, &y, None, &params, &mut ChaCha8Rng::seed_from_u64(1));
        for (r, t) in x.iter().zip(&y) {
            let (m, v) = f.predict(r);
            assert!((m - t).abs() < 1e-9, "{r:?}: {m} vs {t}");
            assert!(v < 1e-12);
        }
    }

    #[test]
    fn ranks_a_smooth_function_and_is_uncertain_where_it_has_no_data() {
        // A peak at (5/7, 2/7); fit on the left half of the grid only.
        let f = |r: &[f64]| -((r[0] - 5.0 / 7.0).powi(2) + (r[1] - 2.0 / 7.0).powi(2));
        let x = grid();
        let y: Vec<f64> = x.iter().map(|r| f(r)).collect();
        let model = Forest::fit(&x, &y, None, &ForestParams::default(), &mut ChaCha8Rng::seed_from_u64(2));
        let best = x.iter().max_by(|a, b| model.predict_mean(a).total_cmp(&model.predict_mean(b))).unwrap();
        assert!(f(best) >= -0.03, "the predicted best {best:?} is near the peak");
        // Rank correlation between prediction and truth is high.
        let pairs = x.len() * (x.len() - 1) / 2;
        let mut concordant = 0;
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let (p, t) = (model.predict_mean(&x[i]) - model.predict_mean(&x[j]), y[i] - y[j]);
                if p * t > 0.0 {
                    concordant += 1;
                }
            }
        }
        assert!(concordant as f64 > 0.8 * pairs as f64, "{concordant}/{pairs} concordant pairs");

        let half: Vec<Vec<f64>> = x.iter().filter(|r| r[0] < 0.5).cloned().collect();
        let yh: Vec<f64> = half.iter().map(|r| if r[1] > 0.5 { 1.0 } else { 0.0 } + r[0]).collect();
        let m = Forest::fit(&half, &yh, None, &ForestParams::default(), &mut ChaCha8Rng::seed_from_u64(3));
        let (_, v_seen) = m.predict(&[0.0, 0.0]);
        let (_, v_edge) = m.predict(&[0.5, 0.5]);
        assert!(v_edge >= v_seen, "variance at a split boundary {v_edge} >= at a well-covered corner {v_seen}");
    }

    #[test]
    fn classifies_with_probabilities_and_respects_weights() {
        let x = grid();
        let y: Vec<f64> = x.iter().map(|r| if r[0] + r[1] > 1.2 { 1.0 } else { 0.0 }).collect();
        let model = Forest::fit(&x, &y, None, &ForestParams::default(), &mut ChaCha8Rng::seed_from_u64(4));
        assert!(model.predict_mean(&[1.0, 1.0]) > 0.9);
        assert!(model.predict_mean(&[0.0, 0.0]) < 0.1);
        let p = model.predict_mean(&[0.6, 0.6]);
        assert!((0.0..=1.0).contains(&p));

        // Two samples at one point with different targets: the weights decide the leaf's value.
        let x = vec![vec![0.0], vec![0.0], vec![1.0]];
        let y = vec![0.0, 10.0, 5.0];
        let params = ForestParams { trees: 1, bootstrap: false, ..ForestParams::default() };
        let m = Forest::fit(&x, &y, Some(&[3.0, 1.0, 1.0]), &params, &mut ChaCha8Rng::seed_from_u64(5));
        assert!((m.predict_mean(&[0.0]) - 2.5).abs() < 1e-9);
    }

    #[test]
    fn is_deterministic_by_seed() {
        let x = grid();
        let y: Vec<f64> = x.iter().map(|r| (r[0] * 7.0).sin() + r[1]).collect();
        let fit = |s| Forest::fit(&x, &y, None, &ForestParams::default(), &mut ChaCha8Rng::seed_from_u64(s));
        let (a, b, c) = (fit(9), fit(9), fit(10));
        let probe = [0.3, 0.8];
        assert_eq!(a.predict(&probe), b.predict(&probe));
        assert!(x.iter().any(|r| a.predict(r) != c.predict(r)));
    }
}
