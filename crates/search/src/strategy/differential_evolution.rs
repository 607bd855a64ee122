//! Differential evolution, the classical baseline the seed compared against.
//!
//! Parameters, as in SciPy's `differential_evolution` defaults that Kernel Tuner's `diff_evo` follows:
//! - population: the tuner's `population_size` (at most the number of valid configs); the first
//!   generation is uniform random;
//! - mutation `best/1`: mutant = best + F · (x_b − x_c) over the unit-cube encoding of the value
//!   indices, with F dithered uniformly in [0.5, 1.0) per generation;
//! - binomial crossover with the target, recombination rate CR = 0.7 (at least one coordinate from the
//!   mutant);
//! - the trial is rounded to the nearest grid point and repaired to the nearest valid point; if that was
//!   evaluated already, a random unseen valid neighbour stands in;
//! - greedy selection: a trial replaces its target when it scores higher; invalid configs never win.

use rand::Rng as _;

use super::{Context, Strategy};
use crate::trial::Trial;
use tuner_spec::space::Point;

const CR: f64 = 0.7;
const F_RANGE: (f64, f64) = (0.5, 1.0);

#[derive(Default)]
pub struct DifferentialEvolution {
    /// (point, score) of each member; `None` score = invalid.
    population: Vec<(Point, Option<f64>)>,
    /// Trials of the current generation: target index → proposed point.
    pending: Vec<(usize, Point)>,
}

impl DifferentialEvolution {
    pub fn new() -> DifferentialEvolution {
        DifferentialEvolution::default()
    }
}

fn better(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x > y,
        (Some(_), None) => true,
        _ => false,
    }
}

impl Strategy for DifferentialEvolution {
    fn name(&self) -> &str {
        "de"
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        let size = ctx.population_size.max(4).min(ctx.space.valid_count().unwrap_or(usize::MAX));
        if self.population.len() < size {
            // First generation (or a population short of members): uniform random points.
            let mut out = Vec::new();
            for _ in 0..(size - self.population.len()) * 32 {
                if out.len() >= (size - self.population.len()).min(n) {
                    break;
                }
                let p = ctx.space.random_point(ctx.rng);
                if !ctx.seen(&p) && !out.contains(&p) {
                    out.push(p);
                }
            }
            return out;
        }
        let best = (0..self.population.len())
            .max_by(|&a, &b| {
                let (x, y) = (self.population[a].1, self.population[b].1);
                if better(x, y) {
                    std::cmp::Ordering::Greater
                } else if better(y, x) {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .expect("population is not empty");
        let f = ctx.rng.gen_range(F_RANGE.0..F_RANGE.1);
        let dims = ctx.space.params().len();
        self.pending.clear();
        let mut out = Vec::new();
        let mut targets: Vec<usize> = (0..self.population.len()).collect();
        rand::seq::SliceRandom::shuffle(targets.as_mut_slice(), ctx.rng);
        for target in targets.into_iter().take(n) {
            let pick = |rng: &mut super::Rng, not: &[usize]| loop {
                let i = rng.gen_range(0..self.population.len());
                if !not.contains(&i) {
                    break i;
                }
            };
            let b = pick(ctx.rng, &[target, best]);
            let c = pick(ctx.rng, &[target, best, b]);
            let xb = ctx.space.encode(&self.population[best].0);
            let x1 = ctx.space.encode(&self.population[b].0);
            let x2 = ctx.space.encode(&self.population[c].0);
            let xt = ctx.space.encode(&self.population[target].0);
            let jrand = ctx.rng.gen_range(0..dims);
            let trial: Vec<f64> = (0..dims)
                .map(|j| if j == jrand || ctx.rng.gen_bool(CR) { xb[j] + f * (x1[j] - x2[j]) } else { xt[j] })
                .collect();
            let mut p = ctx.space.repair(&ctx.space.decode(&trial), ctx.rng);
            if ctx.seen(&p) || out.contains(&p) {
                let fresh: Vec<Point> = ctx
                    .space
                    .neighbours_within(&p, 2)
                    .into_iter()
                    .filter(|q| !ctx.seen(q) && !out.contains(q))
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                p = fresh[ctx.rng.gen_range(0..fresh.len())].clone();
            }
            self.pending.push((target, p.clone()));
            out.push(p);
        }
        out
    }

    fn observe(&mut self, ctx: &mut Context<'_>, batch: &[Trial]) {
        let size = ctx.population_size.max(4).min(ctx.space.valid_count().unwrap_or(usize::MAX));
        for t in batch {
            if let Some(&(target, _)) = self.pending.iter().find(|(_, p)| *p == t.point) {
                if better(t.score, self.population[target].1) {
                    self.population[target] = (t.point.clone(), t.score);
                }
            } else if self.population.len() < size {
                self.population.push((t.point.clone(), t.score));
            }
        }
        self.pending.clear();
    }
}
