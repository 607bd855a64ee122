//! Synthetic tuning problems for the surrogate's tests and its evaluation example
//! (`cargo run --release --example surrogate_eval`), shared through `#[path]`.
//!
//! [`gemm`] imitates an SGEMM space: block shape, per-thread tile, k-tile, vector width and a few
//! switches, with constraints, a few percent of launch failures (registers or shared memory exhausted),
//! which sit next to the fastest configs, and a rugged surface (interactions plus a deterministic ±1%
//! per-config jitter) where a handful of configs lie within 2% of the best. `big = true` adds two more
//! parameters (hundreds of thousands of valid points), too many to score exhaustively.
//!
//! [`clustered_failures`] is small and adversarial for models that treat failures as bad scores: the
//! optimum is surrounded by failing configs.

#![allow(dead_code)]

use std::collections::HashMap;

use tuner_search::{Config, Outcome, Point, Space};

/// A space with a recorded outcome for each valid point: `Some(time)` or `None` (a failure).
pub struct Problem {
    pub name: String,
    pub space: Space,
    pub times: HashMap<Point, Option<f64>>,
    pub optimum: f64,
}

impl Problem {
    fn new(name: &str, space: Space, time: impl Fn(&Config, &Point) -> Option<f64>) -> Problem {
        let all = space.valid_points().expect("synthetic spaces are enumerable");
        let times: HashMap<Point, Option<f64>> = all.iter().map(|p| (p.clone(), time(&space.config(p), p))).collect();
        let optimum = times.values().flatten().copied().fold(f64::INFINITY, f64::min);
        Problem { name: name.to_owned(), space, times, optimum }
    }

    /// Scores like a replay table: `1 / time`, or invalid.
    pub fn outcome(&self, config: &Config) -> Outcome {
        match self.space.point(config).ok().and_then(|p| self.times.get(&p).copied()) {
            Some(Some(t)) => Outcome::Score(1.0 / t),
            Some(None) => Outcome::Invalid("RuntimeFailedConfig".into()),
            None => Outcome::Invalid("not in the space".into()),
        }
    }

    pub fn failures(&self) -> usize {
        self.times.values().filter(|t| t.is_none()).count()
    }

    /// How many configs run within `frac` of the optimum (0.02 for 2%).
    pub fn within(&self, frac: f64) -> usize {
        self.times.values().flatten().filter(|t| **t <= self.optimum * (1.0 + frac)).count()
    }
}

impl tuner_search::Objective for &Problem {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        self.outcome(config)
    }
}

/// A deterministic value in [0, 1) from a point (splitmix64 over its indices).
fn jitter(p: &Point, salt: u64) -> f64 {
    let mut h = salt ^ 0x9e37_79b9_7f4a_7c15;
    for &i in &p.0 {
        h ^= (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_add(h << 6).wrapping_add(h >> 2);
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// An SGEMM-like space; see the module docs.
pub fn gemm(big: bool) -> Problem {
    let mut b = Space::builder()
        .param("block_x", [8, 16, 32, 64, 128])
        .param("block_y", [1, 2, 4, 8, 16, 32])
        .param("tile_x", [1, 2, 4, 8])
        .param("tile_y", [1, 2, 4, 8])
        .param("tile_k", [8, 16, 32, 64])
        .param("vec", [1, 2, 4])
        .param("unroll", [0, 1])
        .param("pad", [0, 1])
        .param("swizzle", [0, 1]);
    if big {
        b = b.param("stages", [1, 2, 3]).param("split_k", [1, 2, 4, 8]);
    }
    let space = b
        .constraint("block_x * block_y >= 32")
        .constraint("block_x * block_y <= 1024")
        .constraint("vec <= tile_x")
        .build()
        .expect("the synthetic space is valid");
    let name = if big { "synthetic-gemm-big" } else { "synthetic-gemm" };
    Problem::new(name, space, |c, p| {
        let v = |k: &str| c.int(k).expect("every parameter is an integer") as f64;
        let (bx, by, tx, ty, tk, vec) = (v("block_x"), v("block_y"), v("tile_x"), v("tile_y"), v("tile_k"), v("vec"));
        let (unroll, pad, swz) = (v("unroll"), v("pad"), v("swizzle"));
        let (stages, split) = if big { (v("stages"), v("split_k")) } else { (1.0, 1.0) };
        let threads = bx * by;
        let regs = 20.0 + tx * ty + 2.0 * vec + 4.0 * (stages - 1.0) + 4.0 * unroll;
        if regs * threads > 65536.0 {
            return None; // too many registers for one block
        }
        let smem = 4.0 * tk * (bx * tx + by * ty + pad * 4.0) * stages;
        if smem > 131072.0 {
            return None; // too much shared memory
        }
        let occ = (-0.05 * (threads.log2() - 7.5).powi(2)).exp();
        let intensity = tx * ty / (tx + ty);
        let reuse = intensity / (intensity + 1.2);
        let spill = if regs > 128.0 {
            0.6
        } else if regs > 96.0 {
            0.88
        } else {
            1.0
        };
        let aspect = (-0.03 * ((bx * tx) / (by * ty)).log2().powi(2)).exp();
        let ktile = match tk as i64 {
            8 => 0.84,
            16 => 0.96,
            32 => 1.0,
            _ => 0.93,
        };
        let vecf = 0.9f64.powf(((tx.min(4.0)).log2() - vec.log2()).abs());
        let unr = if unroll > 0.0 && tk >= 16.0 { 1.015 } else { 1.0 };
        let padf = if pad > 0.0 {
            if (bx * tx) % 32.0 == 0.0 {
                1.02
            } else {
                0.99
            }
        } else {
            1.0
        };
        let swzf = if swz > 0.0 { 1.0 + 0.01 * (threads / 1024.0) } else { 1.0 };
        let stagef = if big { [1.0, 1.03, 1.025][stages as usize - 1] } else { 1.0 };
        let splitf = if big { [1.0, 0.99, 0.95, 0.85][split.log2() as usize] } else { 1.0 };
        let eff = occ * reuse * spill * aspect * ktile * vecf * unr * padf * swzf * stagef * splitf;
        Some(1.0 / eff * (1.0 + 0.02 * (jitter(p, 1) - 0.5)))
    })
}

/// A small space whose optimum is hemmed in by failures; see the module docs.
pub fn clustered_failures() -> Problem {
    let space = Space::builder()
        .param("a", 0..12)
        .param("b", 0..12)
        .param("c", 0..4)
        .build()
        .expect("the synthetic space is valid");
    Problem::new("clustered-failures", space, |c, p| {
        let v = |k: &str| c.int(k).expect("every parameter is an integer") as f64;
        let (a, b, cc) = (v("a"), v("b"), v("c"));
        // The best is at a = 9, b = 9, c = 2; time grows with the distance from it.
        let d = ((a - 9.0).powi(2) + (b - 9.0).powi(2)).sqrt();
        // Failures: a ring around the optimum (distance 1..=2, most of it) and the far corner beyond it.
        if (d > 0.5 && d <= 2.3 && jitter(p, 7) < 0.7) || (a + b >= 21.0 && d > 0.5) {
            return None;
        }
        Some(1.0 + 0.15 * d + 0.05 * (cc - 2.0).abs() + 0.01 * jitter(p, 3))
    })
}
