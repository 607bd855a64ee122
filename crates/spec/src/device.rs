//! Which GPU a tuned config belongs to: the device fingerprint.
//!
//! A fingerprint is plain data so that the parts that never touch a GPU (the cache, codegen, `cargo
//! autotune check`) can work with it; the `cuda` module fills one in from the driver.
//!
//! Two of its fields identify the hardware a config was tuned for: the GPU's name and its compute
//! capability. Those go into the cache key and are what a generated launcher matches against at run time.
//! The driver and NVRTC versions are recorded with every entry as provenance, but are deliberately left
//! out of the key: a driver update changes neither the hardware nor, in practice, the best config, and
//! keying on it would make every `cargo build` on an updated GPU box silently re-tune every kernel.
//! `cargo autotune list` shows them, so a suspicious entry can be re-tuned on purpose.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A GPU as the tuner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFingerprint {
    /// The name the driver reports (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// `(major, minor)`, e.g. `(9, 0)` for sm_90.
    pub compute_capability: (u32, u32),
    /// The CUDA driver version (`12.8`), when known.
    pub driver: Option<String>,
    /// The NVRTC version the kernels were compiled with (`12.8`), when known.
    pub nvrtc: Option<String>,
}

/// The part of a fingerprint that identifies the hardware: what cache keys and run-time matching use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DeviceIdentity<'a> {
    pub name: &'a str,
    pub compute_capability: (u32, u32),
}

impl DeviceFingerprint {
    pub fn identity(&self) -> DeviceIdentity<'_> {
        DeviceIdentity { name: &self.name, compute_capability: self.compute_capability }
    }

    /// Whether this fingerprint describes the same hardware as `other` (name and compute capability).
    pub fn same_hardware(&self, other: &DeviceFingerprint) -> bool {
        self.identity() == other.identity()
    }

    /// A short, file-name-safe form of the name: `NVIDIA H100 80GB HBM3` → `h100-80gb-hbm3`.
    pub fn slug(&self) -> String {
        slug(&self.name)
    }
}

/// Lowercase ASCII alphanumeric runs joined by `-`, without a leading vendor name, at most 32 bytes;
/// `gpu` when nothing is left.
pub fn slug(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let words = match words.first().map(String::as_str) {
        Some("nvidia") if words.len() > 1 => &words[1..],
        _ => &words[..],
    };
    let mut out = words.join("-");
    out.truncate(32);
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        return "gpu".to_owned();
    }
    out
}

impl fmt::Display for DeviceFingerprint {
    /// `NVIDIA H100 80GB HBM3 (sm_90, driver 12.8, nvrtc 12.8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.compute_capability;
        write!(f, "{} (sm_{major}{minor}", self.name)?;
        if let Some(d) = &self.driver {
            write!(f, ", driver {d}")?;
        }
        if let Some(n) = &self.nvrtc {
            write!(f, ", nvrtc {n}")?;
        }
        f.write_str(")")
    }
}

/// Comma-separated CUDA device ordinals to measure on; by default every visible GPU of the first one's model.
pub const DEVICES_ENV: &str = "AUTOTUNE_DEVICES";

/// Why the GPUs of a run could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum DeviceChoiceError {
    #[error("`{0}` is not a list of CUDA device ordinals (e.g. `0,1`)")]
    BadList(String),
    #[error("no CUDA device to measure on")]
    NoDevices,
    #[error(
        "device {first} ({first_name}) and device {other} ({other_name}) are different GPUs, whose timings are \
         never ranked together; tune each model on its own, e.g. {DEVICES_ENV}={first}"
    )]
    Mixed { first: usize, first_name: String, other: usize, other_name: String },
}

/// Parses a `0,1,3` list of device ordinals.
pub fn parse_devices(list: &str) -> Result<Vec<usize>, DeviceChoiceError> {
    let bad = || DeviceChoiceError::BadList(list.to_owned());
    let mut out = Vec::new();
    for part in list.split(',') {
        let n: usize = part.trim().parse().map_err(|_| bad())?;
        if out.contains(&n) {
            return Err(bad());
        }
        out.push(n);
    }
    Ok(out)
}

/// The devices one tuning run measures on, as (ordinal, fingerprint) pairs in ordinal order.
///
/// One run ranks one model's timings: configs measured on an H100 and on an A100 are not comparable, so
/// a run never mixes them. An explicit list (`explicit = true`) must name one model only, else it is an
/// error; the automatic choice takes every device of the first device's model and returns the others as
/// skipped, so the caller can say so.
pub fn choose_devices(
    found: Vec<(usize, DeviceFingerprint)>,
    explicit: bool,
) -> Result<(Vec<(usize, DeviceFingerprint)>, Vec<(usize, DeviceFingerprint)>), DeviceChoiceError> {
    let Some((first, model)) = found.first().cloned() else { return Err(DeviceChoiceError::NoDevices) };
    let (same, other): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, f)| f.same_hardware(&model));
    if explicit {
        if let Some((o, f)) = other.first() {
            return Err(DeviceChoiceError::Mixed {
                first,
                first_name: model.name.clone(),
                other: *o,
                other_name: f.name.clone(),
            });
        }
    }
    Ok((same, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100(driver: &str) -> DeviceFingerprint {
        DeviceFingerprint {
            name: "NVIDIA H100 80GB HBM3".into(),
            compute_capability: (9, 0),
            driver: Some(driver.into()),
            nvrtc: Some("12.8".into()),
        }
    }

    #[test]
    fn slugs_are_short_and_safe() {
        assert_eq!(h100("12.8").slug(), "h100-80gb-hbm3");
        assert_eq!(slug("NVIDIA GeForce RTX 4090"), "geforce-rtx-4090");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("   "), "gpu");
        assert_eq!(slug(&"x".repeat(100)).len(), 32);
        assert!(!slug(&"abc ".repeat(40)).ends_with('-'));
    }

    #[test]
    fn drivers_do_not_change_the_hardware() {
        assert!(h100("12.8").same_hardware(&h100("13.0")));
        let mut other = h100("12.8");
        other.compute_capability = (8, 0);
        assert!(!h100("12.8").same_hardware(&other));
    }

    #[test]
    fn device_lists_parse_and_reject_junk() {
        assert_eq!(parse_devices("0,1, 3").unwrap(), vec![0, 1, 3]);
        for bad in ["", "0,,1", "a", "-1", "0,0"] {
            assert!(matches!(parse_devices(bad), Err(DeviceChoiceError::BadList(_))), "{bad}");
        }
    }

    #[test]
    fn a_run_never_mixes_gpu_models() {
        let mut a100 = h100("13.0");
        a100.name = "NVIDIA A100-SXM4-80GB".into();
        a100.compute_capability = (8, 0);
        let found = vec![(0, h100("13.0")), (1, a100.clone()), (2, h100("13.0"))];
        let (chosen, skipped) = choose_devices(found.clone(), false).unwrap();
        assert_eq!(chosen.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(skipped.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![1]);
        let e = choose_devices(found, true).unwrap_err();
        assert!(matches!(e, DeviceChoiceError::Mixed { first: 0, other: 1, .. }), "{e}");
        assert!(e.to_string().contains("AUTOTUNE_DEVICES=0"), "{e}");
        let (chosen, skipped) = choose_devices(vec![(0, a100)], true).unwrap();
        assert_eq!((chosen.len(), skipped.len()), (1, 0));
        assert!(matches!(choose_devices(vec![], false), Err(DeviceChoiceError::NoDevices)));
    }

    #[test]
    fn display_reads_well() {
        assert_eq!(h100("12.8").to_string(), "NVIDIA H100 80GB HBM3 (sm_90, driver 12.8, nvrtc 12.8)");
    }
}
