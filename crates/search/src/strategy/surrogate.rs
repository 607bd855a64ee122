//! Model-based search: random forests fitted to the history rank candidate configs.
//!
//! Each batch, the strategy
//! 1. fits a **performance forest** ([`forest`]) to the valid trials only: inputs are the [`Features`]
//!    of the config (log2 of each positive-integer parameter, the index of any other, and the log of the
//!    product and of the ratio of each pair of them in spaces with few such parameters), the target is `ln(score)`
//!    standardised (kernel times span orders of magnitude; the log keeps a few very slow configs from
//!    dominating the squared-error splits) — or the score itself when some scores are not positive (a
//!    closure may return `-time`);
//! 2. fits a **feasibility forest** to every trial, valid = 1 and failed = 0, once anything has failed.
//!    Failures are a separate signal and never a number in the performance model: Kernel Tuner's
//!    `bayes_opt` feeds a failed config's placeholder score into its model, which then believes the whole
//!    neighbourhood of a failure is slow — and on GPUs failures (too many registers, too much shared
//!    memory) sit right next to the fastest configs, so that model steers away from the optimum. Here the
//!    probability of running only scales the acquisition, and softly (its square root): a config next to
//!    failures still ranks high when the performance model likes it;
//! 3. fills part of the batch (1 − [`SurrogateSettings::explore`]) by **exploitation**: the
//!    neighbourhoods of the best configs so far (the configs that differ in one parameter, or in up to
//!    three where one gives too few: [`Surrogate::neighbourhood`]) and the configs met by climbing the
//!    predicted mean from each of them, ranked by the forest's predicted mean;
//!    Every [`SurrogateSettings::incumbent_every`] trials one pick is an **incumbent move** instead: the
//!    unseen config nearest the best so far that the forest predicts best, because the mean alone can
//!    leave the best config's own surroundings unvisited for a whole run;
//! 4. fills the rest by **exploration**: every unseen valid point when the space has at most
//!    [`FULL_SCAN`] of them, otherwise a random sample hill-climbed on the acquisition (so the cost does
//!    not grow with the size of the space), ranked by **expected improvement** over the forest's mean and
//!    the spread between its trees (SMAC's recipe).
//!
//! ## Why this acquisition
//!
//! We measured the alternatives on our replay tables (the H100 SGEMM table included) and on synthetic
//! SGEMM-like spaces (numbers in docs/surrogate.md): EI alone over the whole space explores too much for
//! budgets of 50–100 in batches of 10–20, ranking neighbourhoods by the predicted mean alone gets stuck
//! where failures surround the optimum, and LFBO's top-quantile classifier (Helion's default), UCB and
//! Kriging-believer batches did no better than the regression forest's mean and EI. The split — exploit
//! neighbourhoods by the mean, explore globally by EI — was the most robust across all of them, and the
//! shares, neighbourhood size and pair features were chosen on all the spaces at once: settings tuned on
//! the SGEMM table alone broke the synthetic full grids.
//!
//! ## Batches
//!
//! Each batch is one model round, and the fewer configs a round picks, the more each pick learns from.
//! So by default the surrogate picks **one config per round** on every objective. On the replay tables
//! that raised the fraction of seeds within 2% at 50 evaluations from 0.33 to 0.80 on the synthetic
//! SGEMM-like space and from 0.53 to 0.61 on the H100 SGEMM table. On the H100 itself (SGEMM 4096³,
//! 100 evaluations) it reached 2% of the best time seen in 17 of 24 runs by evaluation 50, against 3 of
//! 30 with batches of 10 (docs/surrogate.md has the replay numbers, docs/benchmarks.md the GPU ones).
//!
//! The price is wall time on a GPU: the bench compiles a batch in parallel (16 processes), and one
//! config per round compiles one at a time. The bench wins most of it back by compiling the round's
//! runners-up in the background ([`Strategy::likely_next`], `cuda/prefetch.rs`): a median 38 s per
//! 100-evaluation tune against 48 s without, and 31–42 s with batches of 10 (depending on the device
//! call). [`SurrogateSettings::max_batch`] (`AUTOTUNE_BATCH` /
//! `cargo autotune tune --batch` at build time) trades evaluations for wall time; [`MAX_BATCH`] is the
//! batch that keeps the compiler busy. Exploration keeps its share over the whole run (a batch explores
//! as many configs as `floor(trials × share)` grows by), so batches of one alternate between the two
//! kinds of pick.
//!
//! One model must still pick the several configs of a batch. Picking the top `n` puts them all into one
//! leaf region of the forest; instead each pick multiplies the acquisition of the candidates one
//! parameter away from it by [`SurrogateSettings::penalty`], which spreads the batch over the few most
//! promising neighbourhoods.
//!
//! ## Start and determinism
//!
//! Until the history holds [`init_size`] trials (at least two valid), the strategy proposes a
//! space-filling design: best-candidate sampling (each point the farthest of a few random ones from
//! those already chosen), which covers every parameter's range without the corner bias of maximin.
//! Every random choice — bootstrap samples, feature subsets, candidate samples, ties — comes from the
//! context's seeded generator, and candidates are kept in deterministic order (never a hash map's), so a
//! run is reproducible by seed.

mod features;
mod forest;

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::Rng as _;

use super::{Context, Strategy};
use crate::trial::Trial;
use tuner_spec::space::Point;

pub use features::Features;
pub use forest::{Forest, ForestParams};

/// Spaces with at most this many valid points have every unseen point scored for exploration.
pub const FULL_SCAN: usize = 4_096;
/// Spaces with at most this many valid points have neighbourhoods found by scanning them.
const SCAN_LIMIT: usize = 50_000;
/// The widest neighbourhood: configs differing from the centre in at most this many parameters.
const MAX_RADIUS: usize = 3;
/// Random points sampled for exploration in a larger space.
const RANDOM_CANDIDATES: usize = 1_024;
/// Runners-up kept of each kind for [`Strategy::likely_next`].
const NEXT: usize = 8;

/// How many trials the space-filling start holds before the model takes over.
pub fn init_size(dims: usize) -> usize {
    (2 * dims).clamp(8, 16)
}

/// The surrogate's knobs; the defaults are the measured best (docs/surrogate.md).
#[derive(Clone, Debug, PartialEq)]
pub struct SurrogateSettings {
    /// The fraction of each batch chosen by expected improvement over the whole space (the rest
    /// exploits the neighbourhoods of the best configs).
    pub explore: f64,
    /// The factor a pick applies to the acquisition of candidates one parameter away from it.
    pub penalty: f64,
    /// The exponent of the feasibility probability in the acquisition (0 ignores failures, 1 is the
    /// usual constrained EI).
    pub feasibility_power: f64,
    /// How many of the best configs seed the neighbourhood candidates.
    pub top_seeds: usize,
    /// Trees in the performance forest (the feasibility forest has half as many).
    pub trees: usize,
    /// The longest climb on the predicted mean from each of the best configs.
    pub climb_steps: usize,
    /// The most configs per batch (each batch is one model round) on an objective that evaluates a
    /// batch at once (compiling it in parallel: the GPU bench). 1 by default, as on every objective:
    /// [`MAX_BATCH`] keeps the compiler busy at the price of worse picks (module docs, "Batches").
    pub max_batch: usize,
    /// The most configs per batch on an objective that evaluates one config at a time (a closure, a
    /// replay table), where a smaller batch costs nothing but model fits: a larger `max_batch`, chosen
    /// for wall time on a GPU, leaves this at 1.
    pub sequential_batch: usize,
    /// Trials in the space-filling start; `None` is twice the number of parameters, from 8 to 16.
    pub init: Option<usize>,
    /// Give the forests the products and ratios of parameter pairs (`surrogate/features.rs`) when the
    /// space has at most this many log-scaled (positive-integer) parameters; 0 never does.
    pub max_pair_params: usize,
    /// The fewest configs a neighbourhood holds: its radius grows until it does.
    pub neighbourhood: usize,
    /// Every this many trials one pick is an incumbent move: the unseen config nearest the best so far
    /// (fewest parameters changed) that the model predicts best. 0 never makes one.
    pub incumbent_every: usize,
}

impl Default for SurrogateSettings {
    fn default() -> SurrogateSettings {
        SurrogateSettings {
            explore: 0.4,
            penalty: 0.7,
            feasibility_power: 0.5,
            top_seeds: 8,
            trees: 32,
            climb_steps: 8,
            max_batch: 1,
            sequential_batch: 1,
            init: None,
            max_pair_params: 5,
            neighbourhood: 8,
            incumbent_every: 10,
        }
    }
}

/// The model-based strategy; see the module docs.
#[derive(Default)]
pub struct Surrogate {
    settings: SurrogateSettings,
    fits: usize,
    candidates: usize,
    /// The last round's runners-up ([`Strategy::likely_next`]).
    next: Vec<Point>,
}

impl Surrogate {
    pub fn new() -> Surrogate {
        Surrogate::default()
    }

    pub fn with_settings(settings: SurrogateSettings) -> Surrogate {
        Surrogate { settings, ..Surrogate::default() }
    }

    /// The default settings but batches of at most `max_batch` (at least 1) on a batched objective.
    pub fn with_max_batch(max_batch: usize) -> Surrogate {
        Surrogate::with_settings(SurrogateSettings { max_batch: max_batch.max(1), ..SurrogateSettings::default() })
    }
}

/// How a candidate is ranked (an index into [`Model::acquisition`]'s result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rank {
    /// The predicted mean (exploitation).
    Mean = 0,
    /// Expected improvement (exploration).
    Ei = 1,
}

/// A candidate with its acquisitions.
type Scored = (Point, [f64; 2]);

/// The fitted models and what the acquisition needs from the history.
struct Model {
    features: Features,
    perf: Forest,
    feasible: Option<Forest>,
    /// The best standardised target so far.
    best: f64,
    /// The median standardised target so far.
    median: f64,
    feasibility_power: f64,
}

impl Model {
    /// Fits both forests, or `None` while fewer than two trials are valid.
    fn fit(ctx: &mut Context<'_>, settings: &SurrogateSettings) -> Option<Model> {
        let valid: Vec<&Trial> = ctx.history.iter().filter(|t| t.score.is_some_and(f64::is_finite)).collect();
        if valid.len() < 2 {
            return None;
        }
        let features = Features::new(ctx.space, settings.max_pair_params);
        // Failed trials are not in `valid`: they never reach the performance model.
        let x: Vec<Vec<f64>> = valid.iter().map(|t| features.of(&t.point)).collect();
        let scores: Vec<f64> = valid.iter().map(|t| t.score.expect("filtered to valid trials")).collect();
        let raw: Vec<f64> =
            if scores.iter().all(|s| *s > 0.0) { scores.iter().map(|s| s.ln()).collect() } else { scores };
        let mean = raw.iter().sum::<f64>() / raw.len() as f64;
        let sd = (raw.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / raw.len() as f64).sqrt().max(1e-12);
        let y: Vec<f64> = raw.iter().map(|y| (y - mean) / sd).collect();
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sorted = y.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let params = ForestParams { trees: settings.trees.max(1), ..ForestParams::default() };
        let perf = Forest::fit(&x, &y, None, &params, ctx.rng);
        let feasible = if ctx.history.iter().any(|t| t.score.is_none()) {
            let x: Vec<Vec<f64>> = ctx.history.iter().map(|t| features.of(&t.point)).collect();
            let y: Vec<f64> = ctx.history.iter().map(|t| if t.score.is_some() { 1.0 } else { 0.0 }).collect();
            let params = ForestParams { trees: (settings.trees / 2).max(1), ..ForestParams::default() };
            Some(Forest::fit(&x, &y, None, &params, ctx.rng))
        } else {
            None
        };
        Some(Model { features, perf, feasible, best, median, feasibility_power: settings.feasibility_power })
    }

    /// Both acquisitions of `p` (higher is better, always positive), each scaled by its chance of
    /// running: `[mean, ei]`, indexed by [`Rank`].
    fn acquisition(&self, p: &Point) -> [f64; 2] {
        let x = self.features.of(p);
        let (mu, var) = self.perf.predict(&x);
        // exp keeps the mean positive and monotone, so the feasibility factor can scale it.
        let a = [(mu - self.best).exp(), expected_improvement(mu, var.sqrt(), self.best)];
        match &self.feasible {
            Some(f) => {
                let k = f.predict_mean(&x).clamp(0.0, 1.0).powf(self.feasibility_power);
                [a[0] * k, a[1] * k]
            }
            None => a,
        }
    }
}

/// EI of a normal belief N(mu, sigma²) over `best`, for maximisation; a small floor keeps the ranking
/// informative where the trees agree (sigma = 0) and nothing beats `best`.
fn expected_improvement(mu: f64, sigma: f64, best: f64) -> f64 {
    let floor = 1e-9 * (1.0 + (mu - best).exp().min(1.0));
    if sigma < 1e-12 {
        return (mu - best).max(0.0) + floor;
    }
    let z = (mu - best) / sigma;
    ((mu - best) * normal_cdf(z) + sigma * normal_pdf(z)).max(0.0) + floor
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The [`NEXT`] best of `scored` by `rank`, best first (ties in candidate order: deterministic).
fn runners_up(scored: &[Scored], rank: Rank) -> Vec<Point> {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[b].1[rank as usize].total_cmp(&scored[a].1[rank as usize]).then(a.cmp(&b)));
    order.into_iter().take(NEXT).map(|i| scored[i].0.clone()).collect()
}

fn hamming(a: &Point, b: &Point) -> usize {
    a.0.iter().zip(&b.0).filter(|(x, y)| x != y).count()
}

/// Adds `p` to `out` when it is unseen and new; `set` mirrors `out` for quick lookup.
fn push_fresh(ctx: &Context<'_>, p: Point, out: &mut Vec<Point>, set: &mut HashSet<Point>) {
    if !ctx.seen(&p) && !set.contains(&p) {
        set.insert(p.clone());
        out.push(p);
    }
}

/// Up to `want` unseen valid random points (fewer when the space runs out).
fn random_fresh(ctx: &mut Context<'_>, want: usize, out: &mut Vec<Point>, set: &mut HashSet<Point>) {
    if let Some(all) = ctx.space.valid_points() {
        let unseen = all.len().saturating_sub(ctx.seen.len());
        if unseen <= want.saturating_mul(4) {
            // Nearly exhausted: take the unseen points in a random order.
            let mut rest: Vec<&Point> = all.iter().filter(|p| !ctx.seen(p) && !set.contains(*p)).collect();
            rest.shuffle(ctx.rng);
            for p in rest.into_iter().take(want) {
                set.insert(p.clone());
                out.push(p.clone());
            }
            return;
        }
        let start = out.len();
        for _ in 0..want * 8 {
            if out.len() - start >= want {
                break;
            }
            let p = all[ctx.rng.gen_range(0..all.len())].clone();
            push_fresh(ctx, p, out, set);
        }
        return;
    }
    let start = out.len();
    for _ in 0..want * 8 {
        if out.len() - start >= want {
            break;
        }
        let p = ctx.space.random_point(ctx.rng);
        push_fresh(ctx, p, out, set);
    }
}

impl Surrogate {
    /// Best-candidate sampling: each point is the farthest (in the encoding) of a few random unseen ones
    /// from the points already evaluated or chosen.
    fn space_filling(&self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        const TRIES: usize = 8;
        let mut pool = Vec::new();
        let mut pool_set = HashSet::new();
        random_fresh(ctx, n * TRIES, &mut pool, &mut pool_set);
        let mut chosen: Vec<Vec<f64>> = ctx.history.iter().map(|t| ctx.space.encode(&t.point)).collect();
        let mut out = Vec::with_capacity(n);
        let mut taken = vec![false; pool.len()];
        let encoded: Vec<Vec<f64>> = pool.iter().map(|p| ctx.space.encode(p)).collect();
        while out.len() < n && out.len() < pool.len() {
            let mut best: Option<(f64, usize)> = None;
            for _ in 0..TRIES {
                let i = ctx.rng.gen_range(0..pool.len());
                if taken[i] {
                    continue;
                }
                let d = chosen
                    .iter()
                    .map(|c| c.iter().zip(&encoded[i]).map(|(a, b)| (a - b).powi(2)).sum::<f64>())
                    .fold(f64::INFINITY, f64::min);
                if best.map_or(true, |(bd, _)| d > bd) {
                    best = Some((d, i));
                }
            }
            let i = match best {
                Some((_, i)) => i,
                None => match taken.iter().position(|t| !t) {
                    Some(i) => i,
                    None => break,
                },
            };
            taken[i] = true;
            chosen.push(encoded[i].clone());
            out.push(pool[i].clone());
        }
        out
    }

    /// The valid points around `p` (not `p` itself): those differing from it in at most `r` parameters,
    /// with `r` the smallest radius (up to [`MAX_RADIUS`]) that holds at least
    /// [`SurrogateSettings::neighbourhood`] of them. In a full grid one parameter already gives a dozen or
    /// more; in a sparse space (a replay table recording a sample of the configs, or one cut up by
    /// constraints) a config has only a handful of one-parameter neighbours and hundreds of configs are
    /// local optima among them — on the H100 SGEMM table 409 of 2 200 are, 12 with two parameters, 2
    /// with three — so a fixed radius of one strands the search.
    fn neighbourhood(&self, ctx: &Context<'_>, p: &Point) -> Vec<Point> {
        let want = self.settings.neighbourhood;
        if let Some(all) = ctx.space.valid_points().filter(|all| all.len() <= SCAN_LIMIT) {
            let dist: Vec<usize> = all.iter().map(|q| hamming(p, q)).collect();
            // How many configs lie at each distance up to MAX_RADIUS; the radius is the first whose
            // running total reaches `want`.
            let mut at = [0usize; MAX_RADIUS + 1];
            for &d in dist.iter().filter(|&&d| d <= MAX_RADIUS) {
                at[d] += 1;
            }
            let mut r = 1;
            while r < MAX_RADIUS && at[1..=r].iter().sum::<usize>() < want {
                r += 1;
            }
            return all.iter().zip(&dist).filter(|(_, &d)| d >= 1 && d <= r).map(|(q, _)| q.clone()).collect();
        }
        let mut out = ctx.space.neighbours_within(p, u32::MAX);
        if out.len() < want {
            let mut set: HashSet<Point> = out.iter().cloned().collect();
            set.insert(p.clone());
            for q in out.clone() {
                for r in ctx.space.neighbours_within(&q, u32::MAX) {
                    if set.insert(r.clone()) {
                        out.push(r);
                    }
                }
            }
        }
        out
    }

    /// The unseen configs nearest the best config so far: those differing from it in the fewest
    /// parameters (up to [`MAX_RADIUS`] in a space small enough to scan, one otherwise).
    fn incumbent_moves(&self, ctx: &Context<'_>) -> Vec<Point> {
        let Some(best) = ctx.best(1).first().map(|t| t.point.clone()) else { return Vec::new() };
        if let Some(all) = ctx.space.valid_points().filter(|all| all.len() <= SCAN_LIMIT) {
            let mut at: Vec<Vec<Point>> = vec![Vec::new(); MAX_RADIUS + 1];
            for q in all.iter().filter(|q| !ctx.seen(q)) {
                let d = hamming(&best, q);
                if (1..=MAX_RADIUS).contains(&d) {
                    at[d].push(q.clone());
                }
            }
            return at.into_iter().find(|v| !v.is_empty()).unwrap_or_default();
        }
        ctx.space.neighbours_within(&best, u32::MAX).into_iter().filter(|q| !ctx.seen(q)).collect()
    }

    /// Exploitation candidates: the neighbourhoods ([`Self::neighbourhood`]) of the best configs, and
    /// the configs met by climbing the predicted mean from each of them (a steepest-ascent walk over
    /// those neighbourhoods, which reaches the model's optimum near a good config even when it is
    /// several parameters away).
    fn local_candidates(&self, ctx: &mut Context<'_>, model: &Model) -> Vec<Scored> {
        let (mut out, mut set) = (Vec::new(), HashSet::new());
        let top: Vec<Point> = ctx.best(self.settings.top_seeds).into_iter().map(|t| t.point.clone()).collect();
        // Each is the first step of the climb from its config too.
        let hoods: Vec<Vec<Point>> = top.iter().map(|p| self.neighbourhood(ctx, p)).collect();
        for q in hoods.iter().flatten() {
            push_fresh(ctx, q.clone(), &mut out, &mut set);
        }
        let mut scored: Vec<Scored> = out
            .into_iter()
            .map(|p| {
                let a = model.acquisition(&p);
                (p, a)
            })
            .collect();
        for (start, hood) in top.iter().zip(&hoods) {
            let mut here = start.clone();
            let mut here_acq = model.acquisition(&here)[Rank::Mean as usize];
            for step in 0..self.settings.climb_steps {
                let later;
                let around: &[Point] = if step == 0 {
                    hood
                } else {
                    later = self.neighbourhood(ctx, &here);
                    &later
                };
                let mut next: Option<(Point, [f64; 2])> = None;
                for q in around {
                    let a = model.acquisition(q);
                    if a[Rank::Mean as usize] > next.as_ref().map_or(here_acq, |(_, b)| b[Rank::Mean as usize]) {
                        next = Some((q.clone(), a));
                    }
                }
                let Some((q, a)) = next else { break };
                if !ctx.seen(&q) && set.insert(q.clone()) {
                    scored.push((q.clone(), a));
                }
                here = q;
                here_acq = a[Rank::Mean as usize];
            }
        }
        scored
    }

    /// Exploration candidates: every unseen valid point of a small space, else a random sample that is
    /// hill-climbed on the acquisition for two rounds.
    fn global_candidates(&self, ctx: &mut Context<'_>, model: &Model) -> Vec<Scored> {
        let score = |pts: &[Point]| -> Vec<Scored> { pts.iter().map(|p| (p.clone(), model.acquisition(p))).collect() };
        if let Some(all) = ctx.space.valid_points() {
            if all.len() <= FULL_SCAN {
                let unseen: Vec<Point> = all.iter().filter(|p| !ctx.seen(p)).cloned().collect();
                return score(&unseen);
            }
        }
        let (mut pts, mut set) = (Vec::new(), HashSet::new());
        random_fresh(ctx, RANDOM_CANDIDATES, &mut pts, &mut set);
        let mut out = score(&pts);
        for _ in 0..2 {
            let mut order: Vec<usize> = (0..out.len()).collect();
            order.sort_by(|&a, &b| out[b].1[Rank::Ei as usize].total_cmp(&out[a].1[Rank::Ei as usize]).then(a.cmp(&b)));
            let mut new = Vec::new();
            for &i in order.iter().take(self.settings.top_seeds) {
                for q in ctx.space.neighbours(&out[i].0) {
                    push_fresh(ctx, q, &mut new, &mut set);
                }
            }
            out.extend(score(&new));
        }
        out
    }

    /// Appends up to `n` of `scored` to `out`, greedily by acquisition; every point already in `out`
    /// and every pick penalises the candidates one parameter away from it. Candidates marked external
    /// are taken at most `external_cap` times; the count taken is returned.
    fn pick(
        &self,
        ctx: &mut Context<'_>,
        mut scored: Vec<(Point, [f64; 2], bool)>,
        rank: Rank,
        n: usize,
        external_cap: usize,
        out: &mut Vec<Point>,
    ) -> usize {
        scored.retain(|(p, _, _)| !out.contains(p));
        // A random order first, so that ties in the acquisition are broken by the seed.
        scored.shuffle(ctx.rng);
        let mut acq: Vec<f64> = scored.iter().map(|(_, a, _)| a[rank as usize]).collect();
        let external: Vec<bool> = scored.iter().map(|(_, _, e)| *e).collect();
        let cands: Vec<Point> = scored.into_iter().map(|(p, _, _)| p).collect();
        let penalise = |acq: &mut [f64], pick: &Point| {
            for (a, c) in acq.iter_mut().zip(&cands) {
                if hamming(c, pick) <= 1 {
                    *a *= self.settings.penalty;
                }
            }
        };
        for o in out.iter() {
            penalise(&mut acq, o);
        }
        let mut taken = vec![false; cands.len()];
        let mut externals = 0;
        for _ in 0..n {
            let mut best: Option<usize> = None;
            for (i, a) in acq.iter().enumerate() {
                let allowed = !external[i] || externals < external_cap;
                if !taken[i] && allowed && best.map_or(true, |b| *a > acq[b]) {
                    best = Some(i);
                }
            }
            let Some(i) = best else { break };
            taken[i] = true;
            externals += external[i] as usize;
            penalise(&mut acq, &cands[i]);
            out.push(cands[i].clone());
        }
        externals
    }

    /// Proposes `n` points, taking some from `external` (another source's proposals, e.g. an LLM's):
    /// the `guaranteed` ones the model ranks highest (if it expects them to beat the median config
    /// measured so far), then more as they win their place among the surrogate's own exploitation
    /// candidates, at most `cap` in all. Returns the batch and how many of
    /// it came from `external`. Before the model is fitted, external points (up to `cap`) come first
    /// and the space-filling start fills the rest.
    pub(crate) fn propose_with(
        &mut self,
        ctx: &mut Context<'_>,
        n: usize,
        external: &[Point],
        guaranteed: usize,
        cap: usize,
    ) -> (Vec<Point>, usize) {
        if n == 0 {
            return (Vec::new(), 0);
        }
        let cap = cap.min(n);
        let external: Vec<Point> = {
            let (mut v, mut set) = (Vec::new(), HashSet::new());
            for p in external.iter().filter(|p| ctx.space.is_valid(p)) {
                push_fresh(ctx, p.clone(), &mut v, &mut set);
            }
            v
        };
        let dims = ctx.space.params().len();
        let settings = self.settings.clone();
        let init = settings.init.unwrap_or_else(|| init_size(dims));
        let model = if ctx.history.len() >= init { Model::fit(ctx, &settings) } else { None };
        let Some(model) = model else {
            let mut out: Vec<Point> = external.into_iter().take(cap).collect();
            let taken = out.len();
            let filling = self.space_filling(ctx, n - taken);
            let fresh: Vec<Point> = filling.into_iter().filter(|p| !out.contains(p)).collect();
            out.extend(fresh);
            self.top_up(ctx, n, &mut out);
            return (out, taken);
        };
        self.fits += 1;
        let mut out = Vec::with_capacity(n);
        // The external proposals the model likes best, guaranteed a place.
        let mut ext: Vec<(Point, [f64; 2])> = external.iter().map(|p| (p.clone(), model.acquisition(p))).collect();
        ext.sort_by(|a, b| b.1[Rank::Mean as usize].total_cmp(&a.1[Rank::Mean as usize]));
        // Guaranteed only when the model expects better than the median config measured so far (and
        // likely to run): a source that keeps proposing poor configs is filtered out entirely.
        let bar = (model.median - model.best).exp();
        let first = ext.iter().take(guaranteed.min(cap)).take_while(|(_, a)| a[Rank::Mean as usize] >= bar).count();
        out.extend(ext.iter().take(first).map(|(p, _)| p.clone()));
        // An incumbent move when the trial count crosses a multiple of `incumbent_every`: the model's
        // mean alone can leave the best config's own surroundings unvisited for a whole run.
        let every = settings.incumbent_every;
        let trials = ctx.history.len();
        if every > 0 && out.len() < n && (trials + n) / every > trials / every {
            let moves = self.incumbent_moves(ctx);
            let best = moves
                .into_iter()
                .filter(|p| !out.contains(p))
                .map(|p| {
                    let a = model.acquisition(&p)[Rank::Mean as usize];
                    (p, a)
                })
                .reduce(|a, b| if b.1 > a.1 { b } else { a });
            out.extend(best.map(|(p, _)| p));
        }
        let local = self.local_candidates(ctx, &model);
        let global = self.global_candidates(ctx, &model);
        self.candidates = local.len() + global.len() + ext.len();
        // The exploration share of this batch: the run's count so far, floor(trials × share), grows by
        // this much, so batches of one alternate and the run explores its share whatever the batch.
        let share = settings.explore.clamp(0.0, 1.0);
        let trials = ctx.history.len() as f64;
        let explore = ((((trials + n as f64) * share).floor() - (trials * share).floor()) as usize).min(n);
        // The runners-up of each kind, for `likely_next` (ranked here, before the picks consume them).
        let by_mean = runners_up(&local, Rank::Mean);
        let by_ei = runners_up(&global, Rank::Ei);
        let mut pool: Vec<(Point, [f64; 2], bool)> = local.into_iter().map(|(p, a)| (p, a, false)).collect();
        for (p, a) in ext.into_iter().skip(first) {
            match pool.iter_mut().find(|(q, _, _)| *q == p) {
                Some(entry) => entry.2 = true,
                None => pool.push((p, a, true)),
            }
        }
        let exploit = (n - explore).saturating_sub(out.len());
        let more = self.pick(ctx, pool, Rank::Mean, exploit, cap - first, &mut out);
        let global: Vec<(Point, [f64; 2], bool)> = global.into_iter().map(|(p, a)| (p, a, false)).collect();
        // Exploration takes its share, and whatever the neighbourhoods could not fill.
        let rest = n - out.len();
        self.pick(ctx, global, Rank::Ei, rest, 0, &mut out);
        self.top_up(ctx, n, &mut out);
        self.next.clear();
        for (a, b) in by_mean.into_iter().zip(by_ei) {
            for p in [a, b] {
                if !out.contains(&p) && !self.next.contains(&p) {
                    self.next.push(p);
                }
            }
        }
        (out, first + more)
    }

    /// Fills `out` up to `n` with unseen random points.
    fn top_up(&self, ctx: &mut Context<'_>, n: usize, out: &mut Vec<Point>) {
        if out.len() < n {
            let mut set: HashSet<Point> = out.iter().cloned().collect();
            let want = n - out.len();
            random_fresh(ctx, want, out, &mut set);
        }
    }
}

/// The largest batch worth asking of the surrogate: enough configs to keep a GPU host's parallel
/// compilation busy, and the hybrid's batch while it has an LLM (one model call per batch). Larger
/// batches pick worse: on the H100 SGEMM table (30 seeds, docs/surrogate.md) batches of 20 reached the
/// 2% band in 0.30 / 0.53 of seeds at 50 / 100 evaluations against 0.47 / 0.87 with batches of 10.
pub const MAX_BATCH: usize = 10;

impl Strategy for Surrogate {
    fn batch_size(&self, population_size: usize) -> usize {
        population_size.min(self.settings.max_batch.max(1))
    }

    fn sequential_batch_size(&self, population_size: usize) -> usize {
        population_size.min(self.settings.sequential_batch.max(1))
    }

    fn name(&self) -> &str {
        "surrogate"
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        self.propose_with(ctx, n, &[], 0, 0).0
    }

    /// The best remaining candidates of the last round, alternately by predicted mean (exploitation)
    /// and by expected improvement (exploration); none before the model is fitted.
    fn likely_next(&self) -> Vec<Point> {
        self.next.clone()
    }

    fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("model_fits".into(), self.fits.into());
        m.insert("last_candidates".into(), self.candidates.into());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Rng;
    use rand::SeedableRng;
    use tuner_spec::space::Space;

    fn space() -> Space {
        Space::builder().param("a", 0..8).param("b", 0..8).build().expect("a valid space")
    }

    fn trial(space: &Space, a: u32, b: u32, score: Option<f64>) -> Trial {
        let point = Point(vec![a, b]);
        Trial {
            config: space.config(&point),
            point,
            score,
            failure: score.is_none().then(|| "launch failed".to_owned()),
            elapsed: std::time::Duration::ZERO,
        }
    }

    /// Fits the model on `history` with a fixed seed; returns the performance forest's prediction at
    /// every grid point and whether a feasibility model was fitted.
    fn fit(space: &Space, history: &[Trial]) -> (Vec<(f64, f64)>, bool) {
        let seen: HashSet<Point> = history.iter().map(|t| t.point.clone()).collect();
        let mut rng = Rng::seed_from_u64(5);
        let mut ctx =
            Context { space, history, seen: &seen, rng: &mut rng, population_size: 4, temperature: 0.8, remaining: 10 };
        let model = Model::fit(&mut ctx, &SurrogateSettings::default()).expect("enough valid trials");
        let all = space.valid_points().expect("small space");
        (all.iter().map(|p| model.perf.predict(&model.features.of(p))).collect(), model.feasible.is_some())
    }

    #[test]
    fn failed_trials_never_reach_the_performance_model() {
        let s = space();
        let valid: Vec<Trial> = [(0, 0, 1.0), (2, 5, 3.0), (5, 5, 4.0), (7, 1, 2.0), (3, 3, 2.5)]
            .iter()
            .map(|&(a, b, y)| trial(&s, a, b, Some(y)))
            .collect();
        let (alone, feasibility) = fit(&s, &valid);
        assert!(!feasibility, "no failures, no feasibility model");
        // The same valid trials with failures interleaved, some right next to the best: the performance
        // forest is the same, prediction for prediction.
        let mut mixed = Vec::new();
        for (i, t) in valid.iter().enumerate() {
            mixed.push(t.clone());
            mixed.push(trial(&s, 5 + (i as u32 % 3), 6, None));
        }
        let (with_failures, feasibility) = fit(&s, &mixed);
        assert!(feasibility, "failures train the feasibility model");
        assert_eq!(alone, with_failures);
    }

    #[test]
    fn neighbourhoods_grow_until_they_hold_enough_configs() {
        // A sparse 3-d space: the centre (0, 0, 0) has one config one parameter away, two more two
        // parameters away and four three parameters away.
        let full = Space::builder().param("a", 0..4).param("b", 0..4).param("c", 0..4).build().expect("a valid space");
        let points = [[0, 0, 0], [1, 0, 0], [2, 2, 0], [0, 3, 3], [1, 1, 1], [2, 2, 2], [3, 3, 3], [3, 1, 2]];
        let space = full.restrict(points.iter().map(|p| Point(p.to_vec())).collect()).expect("a valid subset");
        let (history, seen) = (Vec::new(), HashSet::new());
        let mut rng = Rng::seed_from_u64(1);
        let ctx = Context {
            space: &space,
            history: &history,
            seen: &seen,
            rng: &mut rng,
            population_size: 4,
            temperature: 0.8,
            remaining: 10,
        };
        let around = |want: usize| {
            let s = Surrogate::with_settings(SurrogateSettings { neighbourhood: want, ..SurrogateSettings::default() });
            let mut n: Vec<Vec<u32>> = s.neighbourhood(&ctx, &Point(vec![0, 0, 0])).into_iter().map(|p| p.0).collect();
            n.sort();
            n
        };
        assert_eq!(around(1), vec![vec![1, 0, 0]]);
        assert_eq!(around(3), vec![vec![0, 3, 3], vec![1, 0, 0], vec![2, 2, 0]]);
        // The radius stops at MAX_RADIUS (3 here takes every config), however many are asked for.
        assert_eq!(around(100).len(), 7);
    }

    #[test]
    fn every_tenth_trial_is_a_move_next_to_the_best_config() {
        let s = space();
        // Nine trials: the best (3, 3) alone in a corner of good scores far from it, so the forest's
        // mean points away from (3, 3).
        let scored = [(3, 3, 9.0), (7, 7, 8.0), (7, 6, 7.9), (6, 7, 7.8), (6, 6, 7.7), (0, 7, 1.0), (7, 0, 1.0)];
        let mut history: Vec<Trial> = scored.iter().map(|&(a, b, y)| trial(&s, a, b, Some(y))).collect();
        history.extend([trial(&s, 0, 0, Some(0.5)), trial(&s, 5, 7, Some(7.5))]);
        let seen: HashSet<Point> = history.iter().map(|t| t.point.clone()).collect();
        for (len, every, moves) in [(9, 10, true), (8, 10, false), (9, 0, false)] {
            let mut moved = 0;
            for seed in 0..8 {
                let mut rng = Rng::seed_from_u64(seed);
                let h = &history[..len];
                let mut ctx = Context {
                    space: &s,
                    history: h,
                    seen: &seen,
                    rng: &mut rng,
                    population_size: 1,
                    temperature: 0.8,
                    remaining: 10,
                };
                let settings =
                    SurrogateSettings { incumbent_every: every, init: Some(8), ..SurrogateSettings::default() };
                let pick = Surrogate::with_settings(settings).propose(&mut ctx, 1);
                assert_eq!(pick.len(), 1);
                moved += (hamming(&pick[0], &Point(vec![3, 3])) == 1) as usize;
            }
            if moves {
                assert_eq!(moved, 8, "trial {} with incumbent_every {every}: always next to (3, 3)", len + 1);
            } else {
                assert!(moved < 8, "trial {} with incumbent_every {every}: the model's own picks", len + 1);
            }
        }
    }

    #[test]
    fn normal_helpers_match_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.959964) - 0.025).abs() < 1e-6);
        assert!((normal_pdf(0.0) - 0.398942280).abs() < 1e-8);
    }

    #[test]
    fn expected_improvement_prefers_mean_and_uncertainty() {
        let best = 1.0;
        assert!(expected_improvement(1.5, 0.1, best) > expected_improvement(1.2, 0.1, best));
        assert!(expected_improvement(0.5, 1.0, best) > expected_improvement(0.5, 0.1, best));
        assert!(expected_improvement(0.0, 0.0, best) > 0.0, "the floor keeps every candidate ranked");
        assert!(expected_improvement(0.9, 0.0, best) > expected_improvement(0.0, 0.0, best));
    }
}
