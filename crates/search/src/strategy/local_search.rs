//! Local search: hill climbing over neighbouring values, with restarts — the pattern-search family that
//! Helion tunes with by default.
//!
//! A climb starts from the best of a random batch. Each step proposes the unseen neighbours of the
//! incumbent (one step in one parameter's value order); when a neighbour scores higher it becomes the
//! incumbent. When every step-1 neighbour is known, the pattern widens to two steps; when those are known
//! too and nothing improved, the climb is at a local optimum and restarts from a fresh random batch.

use rand::seq::SliceRandom;

use super::{fresh, Context, Strategy};
use crate::trial::Trial;
use tuner_spec::space::Point;

#[derive(Default)]
pub struct LocalSearch {
    incumbent: Option<(Point, f64)>,
    restarting: bool,
}

impl LocalSearch {
    pub fn new() -> LocalSearch {
        LocalSearch { incumbent: None, restarting: true }
    }
}

impl Strategy for LocalSearch {
    fn name(&self) -> &str {
        "local"
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        if let Some((inc, _)) = self.incumbent.clone() {
            for radius in [1, 2] {
                let mut near = fresh(ctx, &ctx.space.neighbours_within(&inc, radius), &[]);
                if !near.is_empty() {
                    near.shuffle(ctx.rng);
                    near.truncate(n);
                    return near;
                }
            }
            // Local optimum: every nearby point is known and none is better.
            self.incumbent = None;
        }
        self.restarting = true;
        let size = n.min(ctx.population_size.max(1));
        let mut out = Vec::new();
        for _ in 0..size * 32 {
            if out.len() == size {
                break;
            }
            let p = ctx.space.random_point(ctx.rng);
            if !ctx.seen(&p) && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    fn observe(&mut self, _ctx: &mut Context<'_>, batch: &[Trial]) {
        let best = batch
            .iter()
            .filter_map(|t| t.score.map(|s| (t.point.clone(), s)))
            .max_by(|a, b| a.1.partial_cmp(&b.1).expect("valid scores are finite"));
        let Some((p, s)) = best else { return };
        if self.restarting || self.incumbent.as_ref().map_or(true, |(_, cur)| s > *cur) {
            self.incumbent = Some((p, s));
        }
        self.restarting = false;
    }
}
