//! Uniform random search without replacement.
//!
//! On an enumerable space it walks a seeded permutation of the valid points, so it never proposes a
//! point twice and ends exactly when the space is exhausted. On larger spaces it samples valid points and
//! skips those already seen.

use std::sync::Arc;

use rand::seq::SliceRandom;

use super::{Context, Strategy};
use tuner_spec::space::Point;

#[derive(Default)]
pub struct Random {
    order: Option<(Arc<Vec<Point>>, Vec<usize>)>,
    next: usize,
}

impl Random {
    pub fn new() -> Random {
        Random::default()
    }
}

impl Strategy for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn propose(&mut self, ctx: &mut Context<'_>, n: usize) -> Vec<Point> {
        if self.order.is_none() {
            if let Some(all) = ctx.space.valid_points() {
                let mut perm: Vec<usize> = (0..all.len()).collect();
                perm.shuffle(ctx.rng);
                self.order = Some((all, perm));
            }
        }
        let mut out = Vec::with_capacity(n);
        match &self.order {
            Some((all, perm)) => {
                while out.len() < n && self.next < perm.len() {
                    let p = &all[perm[self.next]];
                    self.next += 1;
                    if !ctx.seen(p) {
                        out.push(p.clone());
                    }
                }
            }
            None => {
                for _ in 0..n * 64 {
                    if out.len() == n {
                        break;
                    }
                    let p = ctx.space.random_point(ctx.rng);
                    if !ctx.seen(&p) && !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }
}
