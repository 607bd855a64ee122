//! The search space: ordered parameters with their allowed values, and constraints between them.
//!
//! A space is validated once, when it is built: every parameter has a non-empty list of distinct values of
//! one type, every constraint parses and names only parameters, and at least one config satisfies them
//! all. After that, strategies work on [`Point`]s — one value *index* per parameter — and ask the space
//! the questions they share: is this point valid, what are its neighbours, how does it encode as numbers,
//! give me a random valid one. Keeping those helpers here, once, keeps every strategy's notion of "valid"
//! and "nearby" the same.
//!
//! Validity is enumerated with constraint pruning: a depth-first walk over the parameters checks each
//! constraint as soon as all the parameters it reads are fixed, so a constraint like `block * items <=
//! 8192` cuts whole subtrees. Spaces whose valid set is small enough (see [`ENUMERATE_LIMIT`]) are
//! enumerated once and sampled exactly; larger ones are sampled by rejection with a randomised walk as the
//! fallback.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use rand::seq::SliceRandom;
use rand::Rng;

use crate::config::Config;
use crate::expr::{Expr, ExprError};
use crate::value::{Value, ValueType};

/// Spaces with at most this many grid points are enumerated once and cached. 2^25 takes in SGEMM's
/// two-kernel space (28.3 million grid points; 45,384 valid at 4096³): enumerating every committed kernel
/// spec takes 0.9 s in a release build and 5.3 s in a debug one (the build script's), its constraints
/// cutting most subtrees early.
pub const ENUMERATE_LIMIT: u128 = 1 << 25;

/// One value index per parameter, in the space's parameter order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Point(pub Vec<u32>);

/// A parameter and its allowed values.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub values: Vec<Value>,
    pub value_type: ValueType,
}

/// A constraint between parameters, parsed once.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub expr: Expr,
    /// The deepest parameter index the constraint reads: it can be checked once that one is fixed.
    depth: usize,
}

/// Why a space could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("the space has no parameters")]
    NoParams,
    #[error("parameter `{0}` is declared twice")]
    DuplicateParam(String),
    #[error("parameter `{0}` has no values")]
    EmptyParam(String),
    #[error("parameter `{param}` lists the value {value} twice")]
    DuplicateValue { param: String, value: Value },
    #[error("parameter `{param}` mixes value types: {first} values and the {other_type} {other}")]
    MixedTypes { param: String, first: ValueType, other_type: ValueType, other: Value },
    #[error("invalid constraint `{constraint}`")]
    Constraint {
        constraint: String,
        #[source]
        source: ExprError,
    },
    #[error("the constraints exclude every config: {0}")]
    Unsatisfiable(String),
}

/// Why a config does not belong to a space.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown parameter `{0}`")]
    UnknownParam(String),
    #[error("missing parameter `{0}`")]
    MissingParam(String),
    #[error("parameter `{param}` does not allow {value} (allowed: {allowed})")]
    NotAllowed { param: String, value: String, allowed: String },
    #[error("breaks constraint `{0}`")]
    Constraint(String),
    #[error("outside the recorded set of configs")]
    NotRecorded,
}

/// Why a JSON object of parameter values is not a config of a space ([`Space::config_of_json`]).
#[derive(Debug, thiserror::Error)]
pub enum JsonConfigError {
    #[error("`{param}` is not a parameter value: {found}")]
    NotScalar { param: String, found: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Builds a [`Space`]; errors are reported by [`SpaceBuilder::build`].
#[derive(Default)]
pub struct SpaceBuilder {
    params: Vec<(String, Vec<Value>)>,
    constraints: Vec<String>,
}

impl SpaceBuilder {
    /// Adds a parameter with its allowed values, in order (order matters for neighbourhoods).
    pub fn param<V: Into<Value>>(mut self, name: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        self.params.push((name.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    /// Adds a constraint over parameter names, e.g. `block * items <= 8192`.
    pub fn constraint(mut self, expr: impl Into<String>) -> Self {
        self.constraints.push(expr.into());
        self
    }

    pub fn build(self) -> Result<Space, SpaceError> {
        Space::new(self.params, self.constraints)
    }
}

/// An ordered set of parameters, their allowed values and the constraints between them.
#[derive(Clone, Debug)]
pub struct Space {
    params: Vec<Param>,
    names: Arc<[String]>,
    constraints: Vec<Constraint>,
    /// When set, only these points belong to the space (a replay table's recorded configs).
    allowed: Option<Arc<HashSet<Point>>>,
    enumerated: Arc<OnceLock<Option<Arc<Vec<Point>>>>>,
    /// The problem sizes the constraints may name, bound to their values.
    sizes: Arc<[(String, i64)]>,
}

impl Space {
    pub fn builder() -> SpaceBuilder {
        SpaceBuilder::default()
    }

    /// Validates parameters and constraints; see the module docs for what is rejected.
    pub fn new(params: Vec<(String, Vec<Value>)>, constraints: Vec<String>) -> Result<Space, SpaceError> {
        Space::with_sizes(params, constraints, &[])
    }

    /// As [`Space::new`], with constraints that may also name the problem `sizes`, bound to their values
    /// (`m % bm == 0` with `m = 4096`).
    pub fn with_sizes(
        params: Vec<(String, Vec<Value>)>,
        constraints: Vec<String>,
        sizes: &[(String, i64)],
    ) -> Result<Space, SpaceError> {
        if params.is_empty() {
            return Err(SpaceError::NoParams);
        }
        let mut seen = HashSet::new();
        let mut checked = Vec::with_capacity(params.len());
        for (name, values) in params {
            if !seen.insert(name.clone()) {
                return Err(SpaceError::DuplicateParam(name));
            }
            let Some(first) = values.first() else { return Err(SpaceError::EmptyParam(name)) };
            let value_type = first.value_type();
            let mut distinct = HashSet::new();
            for v in &values {
                if v.value_type() != value_type {
                    return Err(SpaceError::MixedTypes {
                        param: name,
                        first: value_type,
                        other_type: v.value_type(),
                        other: v.clone(),
                    });
                }
                if !distinct.insert(v) {
                    return Err(SpaceError::DuplicateValue { param: name, value: v.clone() });
                }
            }
            checked.push(Param { name, values, value_type });
        }
        let names: Arc<[String]> = checked.iter().map(|p| p.name.clone()).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let constraints = constraints
            .into_iter()
            .map(|src| {
                let expr = Expr::parse_with_constants(&src, &name_refs, sizes)
                    .map_err(|source| SpaceError::Constraint { constraint: src.clone(), source })?;
                let depth = expr.slots().into_iter().max().unwrap_or(0);
                Ok(Constraint { expr, depth })
            })
            .collect::<Result<Vec<_>, SpaceError>>()?;
        let space = Space {
            params: checked,
            names,
            constraints,
            allowed: None,
            enumerated: Arc::new(OnceLock::new()),
            sizes: sizes.into(),
        };
        space.ensure_satisfiable()?;
        Ok(space)
    }

    /// The same space narrowed to `allowed` points (e.g. the configs a replay table recorded).
    pub fn restrict(&self, allowed: HashSet<Point>) -> Result<Space, SpaceError> {
        let space = Space {
            params: self.params.clone(),
            names: self.names.clone(),
            constraints: self.constraints.clone(),
            allowed: Some(Arc::new(allowed)),
            enumerated: Arc::new(OnceLock::new()),
            sizes: self.sizes.clone(),
        };
        space.ensure_satisfiable()?;
        Ok(space)
    }

    /// The same space with more constraints.
    pub fn with_constraints(&self, extra: &[String]) -> Result<Space, SpaceError> {
        let params = self.params.iter().map(|p| (p.name.clone(), p.values.clone())).collect();
        let mut all: Vec<String> = self.constraints.iter().map(|c| c.expr.source().to_owned()).collect();
        all.extend(extra.iter().cloned());
        let space = Space::with_sizes(params, all, &self.sizes)?;
        match &self.allowed {
            Some(a) => space.restrict((**a).clone()),
            None => Ok(space),
        }
    }

    fn ensure_satisfiable(&self) -> Result<(), SpaceError> {
        let any = match &self.allowed {
            Some(a) => a.iter().any(|p| self.is_valid(p)),
            None => self.first_valid().is_some(),
        };
        if any {
            return Ok(());
        }
        let what = if self.constraints.is_empty() {
            "no recorded config is left".to_owned()
        } else {
            self.constraints.iter().map(|c| format!("`{}`", c.expr)).collect::<Vec<_>>().join(", ")
        };
        Err(SpaceError::Unsatisfiable(what))
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    pub fn names(&self) -> &Arc<[String]> {
        &self.names
    }

    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }

    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The number of grid points (the product of the value counts), saturating.
    pub fn grid_size(&self) -> u128 {
        self.params.iter().fold(1u128, |acc, p| acc.saturating_mul(p.values.len() as u128))
    }

    /// Every valid point, in grid order, when the space is small enough to enumerate.
    pub fn valid_points(&self) -> Option<Arc<Vec<Point>>> {
        self.enumerated
            .get_or_init(|| {
                if let Some(a) = &self.allowed {
                    let mut v: Vec<Point> = a.iter().filter(|p| self.is_valid(p)).cloned().collect();
                    v.sort();
                    return Some(Arc::new(v));
                }
                if self.grid_size() > ENUMERATE_LIMIT {
                    return None;
                }
                let mut out = Vec::new();
                self.walk(
                    &mut |p| {
                        out.push(p);
                        true
                    },
                    &mut None,
                );
                Some(Arc::new(out))
            })
            .clone()
    }

    /// The number of valid configs, when the space is small enough to enumerate.
    pub fn valid_count(&self) -> Option<usize> {
        self.valid_points().map(|v| v.len())
    }

    fn slot_values(&self, point: &Point) -> Vec<Value> {
        point.0.iter().zip(&self.params).map(|(i, p)| p.values[*i as usize].clone()).collect()
    }

    fn constraints_hold(&self, values: &[Value]) -> bool {
        self.constraints.iter().all(|c| c.expr.eval_bool(values).unwrap_or(false))
    }

    /// Depth-first over the grid in value order (shuffled by `rng` when given), checking each constraint as
    /// soon as its deepest parameter is bound; `visit` returns `false` to stop.
    fn walk(&self, visit: &mut dyn FnMut(Point) -> bool, rng: &mut Option<&mut dyn rand::RngCore>) -> bool {
        // The constraints each depth completes, and the values bound so far (placeholders past the depth,
        // which no constraint checked there reads), updated in place: SGEMM's 28 million grid points are
        // walked once per size, in the build script's unoptimised code too.
        let mut levels: Vec<Vec<&Constraint>> = vec![Vec::new(); self.params.len()];
        for c in &self.constraints {
            levels[c.depth].push(c);
        }
        let mut idx = vec![0; self.params.len()];
        let mut vals = self.slot_values(&Point(idx.clone()));
        self.walk_from(&levels, &mut idx, &mut vals, 0, visit, rng)
    }

    fn walk_from(
        &self,
        levels: &[Vec<&Constraint>],
        idx: &mut Vec<u32>,
        vals: &mut Vec<Value>,
        depth: usize,
        visit: &mut dyn FnMut(Point) -> bool,
        rng: &mut Option<&mut dyn rand::RngCore>,
    ) -> bool {
        if depth == self.params.len() {
            let p = Point(idx.clone());
            if self.allowed.as_ref().map_or(true, |a| a.contains(&p)) {
                return visit(p);
            }
            return true;
        }
        let mut order: Vec<u32> = (0..self.params[depth].values.len() as u32).collect();
        if let Some(r) = rng.as_mut() {
            order.shuffle(r);
        }
        for i in order {
            idx[depth] = i;
            vals[depth] = self.params[depth].values[i as usize].clone();
            if !levels[depth].iter().all(|c| c.expr.eval_bool(vals).unwrap_or(false)) {
                continue;
            }
            if !self.walk_from(levels, idx, vals, depth + 1, visit, rng) {
                return false;
            }
        }
        true
    }

    fn first_valid(&self) -> Option<Point> {
        let mut found = None;
        self.walk(
            &mut |p| {
                found = Some(p);
                false
            },
            &mut None,
        );
        found
    }

    /// Whether `point` is in bounds, satisfies every constraint and (for a restricted space) is allowed.
    pub fn is_valid(&self, point: &Point) -> bool {
        point.0.len() == self.params.len()
            && point.0.iter().zip(&self.params).all(|(i, p)| (*i as usize) < p.values.len())
            && self.allowed.as_ref().map_or(true, |a| a.contains(point))
            && self.constraints_hold(&self.slot_values(point))
    }

    /// The config at `point` (which must be in bounds).
    pub fn config(&self, point: &Point) -> Config {
        Config::new(self.names.clone(), self.slot_values(point))
    }

    /// The point of `config`, checking names, values, constraints and the recorded set.
    pub fn point(&self, config: &Config) -> Result<Point, ConfigError> {
        self.point_of_pairs(config.iter().map(|(n, v)| (n.to_owned(), v.clone())))
    }

    /// Reads a JSON object of parameter values (a cache entry's config, a table summary's reference)
    /// into a config, checking every value as [`Space::point_of_pairs`] does.
    pub fn config_of_json(
        &self,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Config, JsonConfigError> {
        let mut pairs = Vec::with_capacity(object.len());
        for (param, json) in object {
            let value = Value::from_json(json)
                .ok_or_else(|| JsonConfigError::NotScalar { param: param.clone(), found: json.to_string() })?;
            pairs.push((param.clone(), value));
        }
        Ok(self.config(&self.point_of_pairs(pairs)?))
    }

    /// Builds and validates a point from name/value pairs in any order (how LLM replies and cache files
    /// come in). Every failure names the offending parameter or constraint.
    pub fn point_of_pairs(&self, pairs: impl IntoIterator<Item = (String, Value)>) -> Result<Point, ConfigError> {
        let mut idx: Vec<Option<u32>> = vec![None; self.params.len()];
        for (name, value) in pairs {
            let pi = self.param_index(&name).ok_or_else(|| ConfigError::UnknownParam(name.clone()))?;
            let p = &self.params[pi];
            // Accept 0/1 for booleans and true/false for 0/1 integers only where the space's values are
            // bools: a value must match the declared type otherwise.
            let vi = p.values.iter().position(|v| *v == value).ok_or_else(|| ConfigError::NotAllowed {
                param: name.clone(),
                value: value.to_string(),
                allowed: p.values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
            })?;
            idx[pi] = Some(vi as u32);
        }
        let idx = idx
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| ConfigError::MissingParam(self.params[i].name.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let point = Point(idx);
        let vals = self.slot_values(&point);
        if let Some(c) = self.constraints.iter().find(|c| !c.expr.eval_bool(&vals).unwrap_or(false)) {
            return Err(ConfigError::Constraint(c.expr.source().to_owned()));
        }
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&point)) {
            return Err(ConfigError::NotRecorded);
        }
        Ok(point)
    }

    /// A uniformly random valid point when the space is enumerable; otherwise rejection sampling with a
    /// randomised depth-first walk as the fallback (always finds one: the space is satisfiable).
    pub fn random_point(&self, rng: &mut impl Rng) -> Point {
        if let Some(all) = self.valid_points() {
            return all[rng.gen_range(0..all.len())].clone();
        }
        for _ in 0..256 {
            let p = Point(self.params.iter().map(|p| rng.gen_range(0..p.values.len() as u32)).collect());
            if self.is_valid(&p) {
                return p;
            }
        }
        let mut found = None;
        let dynrng: &mut dyn rand::RngCore = rng;
        self.walk(
            &mut |p| {
                found = Some(p);
                false
            },
            &mut Some(dynrng),
        );
        found.expect("a built space has at least one valid point")
    }

    /// Valid points that differ from `point` in one parameter by one step in its value order.
    pub fn neighbours(&self, point: &Point) -> Vec<Point> {
        self.neighbours_within(point, 1)
    }

    /// Valid points that differ from `point` in one parameter by at most `radius` steps in its value
    /// order; `radius = u32::MAX` gives every other value of each parameter.
    pub fn neighbours_within(&self, point: &Point, radius: u32) -> Vec<Point> {
        let mut out = Vec::new();
        for (pi, p) in self.params.iter().enumerate() {
            let cur = point.0[pi];
            let lo = cur.saturating_sub(radius);
            let hi = (cur as u64 + radius as u64).min(p.values.len() as u64 - 1) as u32;
            for v in lo..=hi {
                if v == cur {
                    continue;
                }
                let mut q = point.clone();
                q.0[pi] = v;
                if self.is_valid(&q) {
                    out.push(q);
                }
            }
        }
        out
    }

    /// Each parameter's value index scaled to [0, 1] (0.5 for a single-valued parameter), so strategies
    /// and models can treat the space as a unit cube.
    pub fn encode(&self, point: &Point) -> Vec<f64> {
        point
            .0
            .iter()
            .zip(&self.params)
            .map(|(i, p)| if p.values.len() == 1 { 0.5 } else { *i as f64 / (p.values.len() - 1) as f64 })
            .collect()
    }

    /// The grid point nearest to unit-cube coordinates `x` (clamped); it may break constraints.
    pub fn decode(&self, x: &[f64]) -> Point {
        Point(
            x.iter()
                .zip(&self.params)
                .map(|(x, p)| {
                    let n = p.values.len() as f64;
                    ((x.clamp(0.0, 1.0) * (n - 1.0)).round() as u32).min(p.values.len() as u32 - 1)
                })
                .collect(),
        )
    }

    /// The valid point nearest to `point` in encoded distance among `point` and its wider neighbourhood,
    /// or a random valid point when none is near.
    pub fn repair(&self, point: &Point, rng: &mut impl Rng) -> Point {
        if self.is_valid(point) {
            return point.clone();
        }
        let here = self.encode(point);
        let dist = |q: &Point| self.encode(q).iter().zip(&here).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        let mut best: Option<(f64, Point)> = None;
        for q in self.neighbours_within(point, u32::MAX) {
            let d = dist(&q);
            if best.as_ref().map_or(true, |(bd, _)| d < *bd) {
                best = Some((d, q));
            }
        }
        best.map(|(_, q)| q).unwrap_or_else(|| self.random_point(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn space() -> Space {
        Space::builder()
            .param("block", [64, 128, 256, 512, 1024])
            .param("items", [1, 2, 4, 8, 16])
            .constraint("block * items <= 2048")
            .build()
            .unwrap()
    }

    #[test]
    fn enumerates_only_valid_points() {
        let s = space();
        let all = s.valid_points().unwrap();
        assert_eq!(s.grid_size(), 25);
        // block*items <= 2048: 64:5, 128:5, 256:4, 512:3, 1024:2
        assert_eq!(all.len(), 19);
        assert!(all.iter().all(|p| s.is_valid(p)));
    }

    #[test]
    fn the_pruned_walk_finds_every_valid_grid_point_in_grid_order() {
        // Constraints completed at three different depths, one reading a parameter bound two levels up.
        let s = Space::builder()
            .param("a", 1..=6)
            .param("b", 1..=5)
            .param("c", [1, 2, 4, 8])
            .param("d", 0..=3)
            .constraint("a % 2 == 0 || b > 2")
            .constraint("a * c <= 16")
            .constraint("d < c || b == 5")
            .build()
            .unwrap();
        let mut brute = Vec::new();
        for a in 0..6 {
            for b in 0..5 {
                for c in 0..4 {
                    for d in 0..4 {
                        let p = Point(vec![a, b, c, d]);
                        if s.is_valid(&p) {
                            brute.push(p);
                        }
                    }
                }
            }
        }
        assert!(!brute.is_empty() && brute.len() < 6 * 5 * 4 * 4);
        assert_eq!(*s.valid_points().unwrap(), brute);
    }

    #[test]
    fn config_round_trip_and_errors() {
        let s = space();
        let p = Point(vec![2, 1]);
        let c = s.config(&p);
        assert_eq!(c.to_string(), "{'block': 256, 'items': 2}");
        assert_eq!(s.point(&c).unwrap(), p);
        let e = s.point_of_pairs([("block".into(), Value::Int(1024)), ("items".into(), Value::Int(16))]).unwrap_err();
        assert_eq!(e, ConfigError::Constraint("block * items <= 2048".into()));
        let e = s.point_of_pairs([("block".into(), Value::Int(100)), ("items".into(), Value::Int(1))]).unwrap_err();
        assert!(matches!(e, ConfigError::NotAllowed { ref param, .. } if param == "block"));
        let e = s.point_of_pairs([("block".into(), Value::Int(64))]).unwrap_err();
        assert_eq!(e, ConfigError::MissingParam("items".into()));
        let e = s.point_of_pairs([("blk".into(), Value::Int(64))]).unwrap_err();
        assert_eq!(e, ConfigError::UnknownParam("blk".into()));
    }

    #[test]
    fn neighbours_are_valid_and_adjacent() {
        let s = space();
        let n = s.neighbours(&Point(vec![3, 2]));
        assert!(n.contains(&Point(vec![2, 2])));
        assert!(n.contains(&Point(vec![3, 1])));
        assert!(!n.contains(&Point(vec![4, 2])), "1024*4 breaks the constraint");
        assert!(n.iter().all(|p| s.is_valid(p)));
    }

    #[test]
    fn random_points_are_valid_on_large_spaces() {
        let s = Space::builder()
            .param("a", 1..=400)
            .param("b", 1..=400)
            .param("c", 1..=400)
            .constraint("a * b * c == 6000")
            .build()
            .unwrap();
        assert!(s.grid_size() > ENUMERATE_LIMIT);
        assert!(s.valid_points().is_none(), "64M grid points are not enumerated");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..5 {
            assert!(s.is_valid(&s.random_point(&mut rng)));
        }
    }

    #[test]
    fn encode_decode_and_repair() {
        let s = space();
        let p = Point(vec![4, 1]);
        assert_eq!(s.decode(&s.encode(&p)), p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let r = s.repair(&Point(vec![4, 4]), &mut rng);
        assert!(s.is_valid(&r));
    }
}
