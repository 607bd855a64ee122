//! Recorded measurements in Kernel Tuner's cache-file format.
//!
//! One JSON object: `device_name`, `kernel_name`, `problem_size`, `tune_params_keys` (parameter order),
//! `tune_params` (allowed values), `objective`, and `cache`, which maps `"v1,v2,…"` (values in key order)
//! to a record holding the parameter values and either `time` (milliseconds) or `"__error__"`
//! (`InvalidConfig`, `CompilationFailedConfig`, `RuntimeFailedConfig`). Records may carry more fields
//! (`compile_time`, `GB/s`, …); they are kept as they are. Using Kernel Tuner's format means the same
//! files drive our replay tests and Kernel Tuner's own simulation mode.
//!
//! Tables are data: every value is checked against `tune_params` when read, and a problem names the file.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use tuner_spec::space::{Space, SpaceError};
use tuner_spec::value::Value;

/// Why a table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read table {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("table {path} is not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("table {path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("table {path} does not make a valid space")]
    Space {
        path: PathBuf,
        #[source]
        source: SpaceError,
    },
}

/// One recorded config.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Values in `tune_params_keys` order.
    pub values: Vec<Value>,
    /// The measured time in ms, when the config ran.
    pub time: Option<f64>,
    /// Kernel Tuner's error class, when it did not.
    pub error: Option<String>,
    /// Every other field of the record (compile_time, GB/s, …).
    pub extra: Map<String, Json>,
}

/// A whole table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub device_name: String,
    pub kernel_name: String,
    pub problem_size: Json,
    /// Parameters and their allowed values, in key order.
    pub params: Vec<(String, Vec<Value>)>,
    pub objective: String,
    pub records: Vec<Record>,
}

impl Table {
    pub fn load(path: impl AsRef<Path>) -> Result<Table, TableError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Io { path: path.into(), source })?;
        Table::parse(&text, path)
    }

    /// Parses table text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Table, TableError> {
        let fmt = |message: String| TableError::Format { path: path.into(), message };
        let root: Json = serde_json::from_str(text).map_err(|source| TableError::Json { path: path.into(), source })?;
        let obj = root.as_object().ok_or_else(|| fmt("the top level is not an object".into()))?;
        let string = |k: &str| -> Result<String, TableError> {
            obj.get(k).and_then(Json::as_str).map(str::to_owned).ok_or_else(|| fmt(format!("missing string `{k}`")))
        };
        let keys: Vec<String> = obj
            .get("tune_params_keys")
            .and_then(Json::as_array)
            .ok_or_else(|| fmt("missing array `tune_params_keys`".into()))?
            .iter()
            .map(|k| k.as_str().map(str::to_owned).ok_or_else(|| fmt("`tune_params_keys` holds a non-string".into())))
            .collect::<Result<_, _>>()?;
        let tp = obj
            .get("tune_params")
            .and_then(Json::as_object)
            .ok_or_else(|| fmt("missing object `tune_params`".into()))?;
        let mut params = Vec::new();
        for k in &keys {
            let vals = tp.get(k).and_then(Json::as_array).ok_or_else(|| fmt(format!("`tune_params` lacks `{k}`")))?;
            let vals = vals
                .iter()
                .map(|v| {
                    Value::from_json(v).ok_or_else(|| fmt(format!("parameter `{k}` has the unsupported value {v}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            params.push((k.clone(), vals));
        }
        let objective = match obj.get("objective") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Array(a)) => a.first().and_then(Json::as_str).unwrap_or("time").to_owned(),
            _ => "time".to_owned(),
        };
        if objective != "time" {
            return Err(fmt(format!("objective `{objective}` is not supported (only `time`)")));
        }
        let cache = obj.get("cache").and_then(Json::as_object).ok_or_else(|| fmt("missing object `cache`".into()))?;
        let mut records = Vec::with_capacity(cache.len());
        for (key, rec) in cache {
            let rec = rec.as_object().ok_or_else(|| fmt(format!("record `{key}` is not an object")))?;
            let mut values = Vec::with_capacity(keys.len());
            for (k, allowed) in &params {
                let v = rec.get(k).ok_or_else(|| fmt(format!("record `{key}` lacks parameter `{k}`")))?;
                let v = Value::from_json(v)
                    .filter(|v| allowed.contains(v))
                    .ok_or_else(|| fmt(format!("record `{key}`: {v} is not an allowed value of `{k}`")))?;
                values.push(v);
            }
            let expected: Vec<String> = values.iter().map(Value::to_define).collect();
            if expected.join(",") != *key {
                return Err(fmt(format!("record `{key}` holds the values {}", expected.join(","))));
            }
            let error = rec.get("__error__").map(|e| e.as_str().unwrap_or("error").to_owned());
            let time = match (rec.get("time"), &error) {
                (_, Some(_)) => None,
                (Some(t), None) => Some(
                    t.as_f64()
                        .filter(|t| t.is_finite() && *t > 0.0)
                        .ok_or_else(|| fmt(format!("record `{key}` has the time {t}, not a positive number")))?,
                ),
                (None, None) => return Err(fmt(format!("record `{key}` has neither `time` nor `__error__`"))),
            };
            let extra = rec
                .iter()
                .filter(|(k, _)| !keys.contains(k) && *k != "time" && *k != "__error__")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            records.push(Record { values, time, error, extra });
        }
        Ok(Table {
            device_name: string("device_name")?,
            kernel_name: string("kernel_name")?,
            problem_size: obj.get("problem_size").cloned().unwrap_or(Json::Null),
            params,
            objective,
            records,
        })
    }

    /// The full grid of the table's parameters (no constraints).
    pub fn grid(&self) -> Result<Space, SpaceError> {
        Space::new(self.params.clone(), Vec::new())
    }

    /// The table as Kernel Tuner writes it.
    pub fn to_json(&self) -> Json {
        let mut root = Map::new();
        root.insert("device_name".into(), self.device_name.clone().into());
        root.insert("kernel_name".into(), self.kernel_name.clone().into());
        root.insert("problem_size".into(), self.problem_size.clone());
        root.insert("tune_params_keys".into(), self.params.iter().map(|(k, _)| Json::from(k.clone())).collect());
        let tp: Map<String, Json> =
            self.params.iter().map(|(k, vs)| (k.clone(), vs.iter().map(Value::to_json).collect())).collect();
        root.insert("tune_params".into(), tp.into());
        root.insert("objective".into(), Json::Array(vec![self.objective.clone().into()]));
        let mut cache = Map::new();
        for r in &self.records {
            let key: Vec<String> = r.values.iter().map(Value::to_define).collect();
            let mut rec = Map::new();
            for ((k, _), v) in self.params.iter().zip(&r.values) {
                rec.insert(k.clone(), v.to_json());
            }
            match (&r.error, r.time) {
                (Some(e), _) => {
                    rec.insert("__error__".into(), e.clone().into());
                }
                (None, Some(t)) => {
                    rec.insert("time".into(), t.into());
                }
                (None, None) => {}
            }
            rec.extend(r.extra.clone());
            cache.insert(key.join(","), rec.into());
        }
        root.insert("cache".into(), cache.into());
        root.into()
    }

    /// Writes the table atomically (a temporary file beside it, then a rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), TableError> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(&self.to_json()).expect("a table always serialises");
        crate::fsutil::write_atomic(path, text.as_bytes())
            .map_err(|source| TableError::Io { path: path.into(), source })
    }
}
