//! The settings a build or a `cargo autotune tune` reads from the environment, once, into one typed
//! value.
//!
//! Every variable is declared in [`VARS`], and [`Settings::from_env_with`] reads through a getter that
//! only answers for declared names, so the build script's `rerun-if-env-changed` list (derived from
//! [`VARS`]) can never miss a variable the build reads. The CUDA backend's own variables (`CUDA_PATH`,
//! `CUDA_HOME`, `CUDA_VISIBLE_DEVICES`, read by the backend and the driver, not here) are in the list too,
//! since they change what a tune measures.
//!
//! A bad value is an error that names the variable and says what it must be; numbers go through the
//! bounds every entry point shares ([`tuner_search::limits`]).

use std::path::PathBuf;

use tuner_search::limits::{self, OutOfBounds};
use tuner_search::strategy::{StrategyKind, UnknownStrategy};
use tuner_spec::device::{parse_devices, DEVICES_ENV};

use crate::tuning::TuneOptions;

/// Set to `1` (or `true`) to never tune: a kernel without a fresh entry fails the build.
pub const OFFLINE_ENV: &str = "AUTOTUNE_OFFLINE";
/// An extra cache directory, searched first and written to.
pub const CACHE_DIR_ENV: &str = "AUTOTUNE_CACHE_DIR";

/// The search's variables.
const TUNE_VARS: [&str; 5] =
    ["AUTOTUNE_STRATEGY", "AUTOTUNE_MAX_EVALUATIONS", "AUTOTUNE_SEED", "AUTOTUNE_POPULATION", "AUTOTUNE_BATCH"];
/// Read by the CUDA backend and the driver; listed so that a change reruns the build.
const BACKEND_VARS: [&str; 3] = ["CUDA_VISIBLE_DEVICES", "CUDA_PATH", "CUDA_HOME"];

/// Every variable the build depends on, in the order `rerun-if-env-changed` lists them.
pub fn vars() -> Vec<&'static str> {
    let mut all = vec![OFFLINE_ENV, CACHE_DIR_ENV];
    all.extend(TUNE_VARS);
    #[cfg(feature = "llm")]
    all.extend(tuner_llm::ENV_VARS);
    all.push(DEVICES_ENV);
    all.extend(BACKEND_VARS);
    all
}

/// Why a setting is not usable: the variable, its value, and what it must be.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{var}={value:?} is not one of: {allowed}")]
    Strategy { var: &'static str, value: String, allowed: String },
    #[error("{var}={value:?}: {source}")]
    StrategyNeedsLlm {
        var: &'static str,
        value: String,
        #[source]
        source: UnknownStrategy,
    },
    #[error("{var}={value:?} is not a positive integer")]
    Number { var: &'static str, value: String },
    #[error("{var}={value:?}: {source}")]
    Bounds {
        var: &'static str,
        value: String,
        #[source]
        source: OutOfBounds,
    },
    #[error("{var}={value:?} is not a list of device ordinals such as `0,1`")]
    Devices { var: &'static str, value: String },
}

/// What the environment says, read once at an entry point.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `AUTOTUNE_OFFLINE`: never tune; a miss fails the build.
    pub offline: bool,
    /// `AUTOTUNE_CACHE_DIR`: a cache directory searched first and written to.
    pub cache_dir: Option<PathBuf>,
    /// The search variables that are set: `AUTOTUNE_STRATEGY`, `AUTOTUNE_MAX_EVALUATIONS`,
    /// `AUTOTUNE_SEED`, `AUTOTUNE_POPULATION`, `AUTOTUNE_BATCH`. Each entry point puts its own defaults
    /// under them and its flags over them ([`Settings::tune_options`] for the build's).
    pub search: SearchSettings,
    /// The LLM endpoint and trace (`OPENAI_*`, `AUTOTUNE_LLM_*`), with the `llm` feature.
    #[cfg(feature = "llm")]
    pub llm: tuner_llm::LlmSettings,
    /// `AUTOTUNE_DEVICES`: the device ordinals to measure on (default: every GPU of device 0's model).
    pub devices: Option<Vec<usize>>,
    /// Each declared variable and its value when it was read, for the build's digest.
    pub read: Vec<(&'static str, Option<String>)>,
}

/// The search settings the environment sets; `None` where the variable is unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchSettings {
    pub strategy: Option<StrategyKind>,
    pub max_evaluations: Option<usize>,
    pub seed: Option<u64>,
    pub population: Option<usize>,
    pub batch: Option<usize>,
}

/// Whether an environment flag is on: anything but unset, empty, `0`, `false`, `no` or `off`.
pub fn is_truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "no" | "off"))
}

impl Settings {
    /// Reads every variable of [`vars`] through `get` (so tests need not touch the process environment);
    /// unset or empty variables keep their defaults.
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let declared = vars();
        let read: Vec<(&'static str, Option<String>)> = declared.iter().map(|&v| (v, get(v))).collect();
        // Only declared variables can be read: the rerun list is the declared list.
        let var = |name: &str| -> Option<String> {
            let (_, value) = read.iter().find(|(v, _)| *v == name).unwrap_or_else(|| {
                panic!("{name} is read but not declared in tuner_build::settings::vars(), so no rerun would notice it")
            });
            value.clone().filter(|v| !v.trim().is_empty())
        };
        let mut s = Settings::default();
        s.offline = is_truthy(var(OFFLINE_ENV).as_deref());
        s.cache_dir = var(CACHE_DIR_ENV).map(PathBuf::from);
        if let Some(value) = var("AUTOTUNE_STRATEGY") {
            let var = "AUTOTUNE_STRATEGY";
            s.search.strategy = Some(value.trim().parse::<StrategyKind>().map_err(|e| match e {
                UnknownStrategy::Unknown { .. } => {
                    SettingsError::Strategy { var, value: value.clone(), allowed: StrategyKind::names().join(", ") }
                }
                e @ UnknownStrategy::NeedsLlm { .. } => {
                    SettingsError::StrategyNeedsLlm { var, value: value.clone(), source: e }
                }
            })?);
        }
        let number = |name: &'static str,
                      bound: fn(u64) -> Result<usize, OutOfBounds>|
         -> Result<Option<usize>, SettingsError> {
            let Some(value) = var(name) else { return Ok(None) };
            let n =
                value.trim().parse::<u64>().map_err(|_| SettingsError::Number { var: name, value: value.clone() })?;
            bound(n).map(Some).map_err(|source| SettingsError::Bounds { var: name, value, source })
        };
        s.search.max_evaluations = number("AUTOTUNE_MAX_EVALUATIONS", limits::budget)?;
        if let Some(value) = var("AUTOTUNE_SEED") {
            s.search.seed = Some(
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| SettingsError::Number { var: "AUTOTUNE_SEED", value: value.clone() })?,
            );
        }
        s.search.population = number("AUTOTUNE_POPULATION", limits::population)?;
        s.search.batch = number("AUTOTUNE_BATCH", limits::batch)?;
        #[cfg(feature = "llm")]
        {
            s.llm = tuner_llm::LlmSettings::from_env_with(&|k| var(k));
        }
        if let Some(value) = var(DEVICES_ENV) {
            s.devices = Some(
                parse_devices(&value).map_err(|_| SettingsError::Devices { var: DEVICES_ENV, value: value.clone() })?,
            );
        }
        s.read = read;
        Ok(s)
    }

    /// [`Settings::from_env_with`] over the process environment.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_env_with(|k| std::env::var(k).ok())
    }

    /// How a build (and `cargo autotune tune`) searches: [`TuneOptions::default`] under what is set.
    pub fn tune_options(&self) -> TuneOptions {
        let d = TuneOptions::default();
        let s = &self.search;
        TuneOptions {
            strategy: s.strategy.unwrap_or(d.strategy),
            max_evaluations: s.max_evaluations.unwrap_or(d.max_evaluations),
            seed: s.seed.unwrap_or(d.seed),
            population_size: s.population.unwrap_or(d.population_size),
            batch: s.batch.or(d.batch),
            verbose: d.verbose,
            stop: None,
            #[cfg(feature = "llm")]
            llm: self.llm.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn settings_come_from_the_environment() {
        let d = Settings::from_env_with(env(&[])).unwrap();
        assert_eq!(d.search, SearchSettings::default());
        let t = d.tune_options();
        assert_eq!(
            (t.strategy, t.max_evaluations, t.seed, t.population_size),
            (StrategyKind::tool_default(), 60, 0, 20)
        );
        assert!(!d.offline && d.cache_dir.is_none() && d.devices.is_none());
        let o = Settings::from_env_with(env(&[
            ("AUTOTUNE_STRATEGY", "de"),
            ("AUTOTUNE_MAX_EVALUATIONS", "12"),
            ("AUTOTUNE_SEED", "0"),
            ("AUTOTUNE_POPULATION", "1"),
            ("AUTOTUNE_BATCH", "10"),
            ("AUTOTUNE_OFFLINE", "true"),
            ("AUTOTUNE_DEVICES", "0,1"),
        ]))
        .unwrap();
        let t = o.tune_options();
        assert_eq!((t.strategy, t.max_evaluations, t.seed, t.population_size), (StrategyKind::De, 12, 0, 1));
        assert_eq!(t.batch, Some(10));
        assert!(o.offline);
        assert_eq!(o.devices, Some(vec![0, 1]));
        let e = Settings::from_env_with(env(&[("AUTOTUNE_STRATEGY", "magic")])).unwrap_err();
        assert!(
            e.to_string().contains("AUTOTUNE_STRATEGY=\"magic\" is not one of: random, de, local, surrogate"),
            "{e}"
        );
        // With no strategy named, the tool's default (the hybrid reads the endpoint itself); a named one wins.
        let endpoint = Settings::from_env_with(env(&[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")])).unwrap();
        assert_eq!(endpoint.tune_options().strategy, StrategyKind::tool_default());
        let named = Settings::from_env_with(env(&[("OPENAI_BASE_URL", "http://x"), ("AUTOTUNE_STRATEGY", "de")]));
        assert_eq!(named.unwrap().search.strategy, Some(StrategyKind::De));
        let e = Settings::from_env_with(env(&[("AUTOTUNE_MAX_EVALUATIONS", "0")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_MAX_EVALUATIONS=\"0\": the budget must be at least 1"), "{e}");
        let e = Settings::from_env_with(env(&[("AUTOTUNE_MAX_EVALUATIONS", "abc")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_MAX_EVALUATIONS=\"abc\" is not a positive integer"), "{e}");
        let e = Settings::from_env_with(env(&[("AUTOTUNE_POPULATION", "0")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_POPULATION=\"0\": the population must be at least 1"), "{e}");
        let e = Settings::from_env_with(env(&[("AUTOTUNE_BATCH", "ten")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_BATCH=\"ten\" is not a positive integer"), "{e}");
        let e = Settings::from_env_with(env(&[("AUTOTUNE_DEVICES", "zero")])).unwrap_err();
        assert!(e.to_string().contains("AUTOTUNE_DEVICES=\"zero\""), "{e}");
    }

    #[test]
    #[cfg(not(feature = "llm"))]
    fn an_llm_strategy_without_the_feature_says_which_feature() {
        let e = Settings::from_env_with(env(&[("AUTOTUNE_STRATEGY", "hybrid")])).unwrap_err();
        let text = tuner_spec::error_chain(&e);
        assert!(text.contains("AUTOTUNE_STRATEGY=\"hybrid\"") && text.contains("`llm` feature"), "{text}");
    }

    #[test]
    fn every_read_variable_is_declared() {
        let s = Settings::from_env_with(env(&[])).unwrap();
        let names: Vec<&str> = s.read.iter().map(|(v, _)| *v).collect();
        assert_eq!(names, vars());
        for v in ["CUDA_PATH", "CUDA_HOME", "CUDA_VISIBLE_DEVICES", "AUTOTUNE_DEVICES", "AUTOTUNE_OFFLINE"] {
            assert!(names.contains(&v), "{v} is not in the rerun list");
        }
    }
}
