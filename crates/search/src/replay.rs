//! An objective that replays a recorded table instead of running kernels.
//!
//! The replay space is exactly the set of configs the table records: grid points it lacks are outside the
//! space, as if a constraint excluded them, and extra constraints can narrow it further. Recorded failures
//! stay in the space — a real tuner would have tried them — and evaluate as invalid with the recorded
//! error class. The score of a config is `1 / time`, so higher is better as the tuner expects.
//!
//! A table recorded by `cargo autotune record` has a `FILE.meta.json` beside it, whose `reference.config`
//! is the kernel's default config: [`Replay::load`] reads it ([`Replay::reference`]), so a replayed
//! tune can start from the default as a tune on the GPU does (`tuning.rs`).
//!
//! Asking for a config the table lacks is an error ([`Replay::time`]) or an invalid outcome that says so
//! (as an objective), never a silent zero.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::objective::{Objective, Outcome};
use crate::table::{Table, TableError};
use tuner_spec::config::Config;
use tuner_spec::space::{ConfigError, JsonConfigError, Point, Space};

/// Why a replay lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("config {config} is not recorded in table {path}")]
    NotRecorded { config: String, path: PathBuf },
    #[error("{path}: {reason}")]
    Meta { path: PathBuf, reason: String },
    #[error("config {config} does not fit table {path}")]
    BadConfig {
        config: String,
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
}

/// A recorded table, ready to be tuned against.
#[derive(Clone, Debug)]
pub struct Replay {
    path: PathBuf,
    table: Table,
    space: Space,
    grid: Space,
    results: HashMap<Point, Result<f64, String>>,
    reference: Option<Config>,
}

impl Replay {
    /// Loads a Kernel Tuner cache file, and the reference config of the `.meta.json` beside it if there
    /// is one (a broken one is an error that names it).
    pub fn load(path: impl AsRef<Path>) -> Result<Replay, ReplayError> {
        let path = path.as_ref();
        let replay = Replay::from_table(Table::load(path)?, path)?;
        let meta = path.with_extension("meta.json");
        match std::fs::read_to_string(&meta) {
            Ok(text) => replay.with_meta(&text, meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(replay),
            Err(e) => Err(ReplayError::Meta { path: meta, reason: e.to_string() }),
        }
    }

    /// Takes the reference config from a recorder's summary (`FILE.meta.json`, named `path` in errors):
    /// its `reference.config`, which must be a config the table records. A summary without one leaves
    /// the replay without a reference.
    pub fn with_meta(mut self, text: &str, path: impl Into<PathBuf>) -> Result<Replay, ReplayError> {
        let path = path.into();
        let fail = |reason: String| ReplayError::Meta { path: path.clone(), reason };
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let Some(config) = json.pointer("/reference/config") else { return Ok(self) };
        let object = config.as_object().ok_or_else(|| fail("reference.config is not an object".into()))?;
        let reference = self.space.config_of_json(object).map_err(|e| match e {
            JsonConfigError::NotScalar { param, found } => {
                fail(format!("reference.config.{param} is not a parameter value: {found}"))
            }
            JsonConfigError::Config(e) => fail(format!("reference config: {e}")),
        })?;
        self.reference = Some(reference);
        Ok(self)
    }

    /// The kernel's default config as the recorder measured it, when the table came with one.
    pub fn reference(&self) -> Option<&Config> {
        self.reference.as_ref()
    }

    /// Wraps a parsed table; `path` names it in messages.
    pub fn from_table(table: Table, path: impl Into<PathBuf>) -> Result<Replay, ReplayError> {
        let path = path.into();
        let space_err = |source| ReplayError::Table(TableError::Space { path: path.clone(), source });
        let grid = table.grid().map_err(space_err)?;
        let mut results = HashMap::with_capacity(table.records.len());
        for r in &table.records {
            let point = Point(
                r.values
                    .iter()
                    .zip(grid.params())
                    .map(|(v, p)| p.values.iter().position(|x| x == v).expect("table values were checked") as u32)
                    .collect(),
            );
            let result = match (r.time, &r.error) {
                (Some(t), None) => Ok(t),
                (_, e) => Err(e.clone().unwrap_or_else(|| "error".into())),
            };
            results.insert(point, result);
        }
        let allowed: HashSet<Point> = results.keys().cloned().collect();
        let space = grid.restrict(allowed).map_err(space_err)?;
        Ok(Replay { path, table, space, grid, results, reference: None })
    }

    /// Narrows the replay space with constraints over the table's parameter names (and drops the
    /// reference config when they exclude it).
    pub fn constrain(mut self, constraints: &[String]) -> Result<Replay, ReplayError> {
        self.space = self
            .space
            .with_constraints(constraints)
            .map_err(|source| ReplayError::Table(TableError::Space { path: self.path.clone(), source }))?;
        if self.reference.as_ref().is_some_and(|r| self.space.point(r).is_err()) {
            self.reference = None;
        }
        Ok(self)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn table(&self) -> &Table {
        &self.table
    }
    /// The configs the table records (narrowed by any constraints).
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The recorded time (ms) of `config`: `Ok(None)` when the table records it as failed.
    pub fn time(&self, config: &Config) -> Result<Option<f64>, ReplayError> {
        let point = self.grid.point(config).map_err(|source| ReplayError::BadConfig {
            config: config.to_string(),
            path: self.path.clone(),
            source,
        })?;
        match self.results.get(&point) {
            Some(Ok(t)) => Ok(Some(*t)),
            Some(Err(_)) => Ok(None),
            None => Err(ReplayError::NotRecorded { config: config.to_string(), path: self.path.clone() }),
        }
    }

    /// The fastest recorded time among the configs of the (possibly constrained) space, and its config.
    pub fn optimum(&self) -> (f64, Config) {
        let all = self.space.valid_points().expect("a replay space is enumerable");
        all.iter()
            .filter_map(|p| match self.results.get(p) {
                Some(Ok(t)) => Some((*t, p)),
                _ => None,
            })
            .min_by(|a, b| a.0.partial_cmp(&b.0).expect("times are finite"))
            .map(|(t, p)| (t, self.space.config(p)))
            .unwrap_or((f64::NAN, self.space.config(&all[0])))
    }

    /// Scores a config: `1 / time`, or invalid with the recorded error, or invalid as not recorded.
    pub fn outcome(&self, config: &Config) -> Outcome {
        match self.grid.point(config).ok().and_then(|p| self.results.get(&p)) {
            Some(Ok(t)) => Outcome::Score(1.0 / t),
            Some(Err(e)) => Outcome::Invalid(e.clone()),
            None => Outcome::Invalid(format!("not recorded in table {}", self.path.display())),
        }
    }
}

impl Objective for &Replay {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        self.outcome(config)
    }
}

impl Objective for Replay {
    fn evaluate(&mut self, config: &Config) -> Outcome {
        self.outcome(config)
    }
}
