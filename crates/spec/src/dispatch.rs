//! Which tuned config a launch runs: the device fallback order and the nearest size bucket whose config
//! fits the launch's real sizes.
//!
//! A kernel's cache holds one entry per device × size point. At run time the generated code knows the
//! GPU (name and compute capability) and the sizes of the call, and asks [`Dispatch::choose`]:
//!
//! 1. **Devices, nearest first** ([`Dispatch::device_order`]): the entries of the same GPU (name and
//!    compute capability); else those of another GPU with the same compute capability (an H200 takes the
//!    H100's); else the same major version, nearest minor first; ties keep the table's order.
//! 2. **Within a device, the nearest point that fits**: its entries in order of log distance between
//!    their tuned sizes and the launch's (`sqrt(Σ (ln a − ln b)²)` over the size variables, so 1024 is as
//!    far from 2048 as 2048 from 4096; an exact tie goes to the larger tuned problem), and the first whose
//!    config *fits*: every constraint holds at the
//!    real sizes (`m % bm == 0` with the launch's `m`), and the grid, block and shared-memory expressions
//!    give values within CUDA's limits (at most 1024 threads a block, grid y and z at most 65535; a
//!    device's shared-memory limit is not checked here). When none of a device's configs fit, the next device is tried.
//! 3. **The default**, when it fits; else there is no config for these sizes ([`NoFit`]), which is the
//!    kernel's own limit: a launch the default could run never fails because a tuned config does not fit.
//!
//! The same function answers the generated code (which caches its answers per device and sizes, see
//! `tuner_runtime::__private::Table`) and `cargo autotune which`, so the query command says exactly what
//! a binary would run. Expressions are the attribute's own, evaluated by [`crate::expr`] with the sizes'
//! slots first and the parameters' after, as the bench binds them.

use crate::expr::Expr;
use crate::spec::KernelSpec;
use crate::value::Value;

/// One tuned point of one device, as the generated table lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct TunedPoint {
    /// The GPU name the driver reports.
    pub device: String,
    pub compute_capability: (u32, u32),
    /// The sizes it was tuned at, one per size variable, in declaration order.
    pub sizes: Vec<i64>,
    /// The config's index in [`Dispatch`]'s configs.
    pub config: usize,
}

/// How the device of a chosen entry relates to the GPU asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceMatch {
    /// The same name and compute capability.
    Same,
    /// Another GPU with the same compute capability.
    SameCapability,
    /// Another GPU with the same major version.
    SameMajor,
}

impl DeviceMatch {
    pub fn describe(self) -> &'static str {
        match self {
            DeviceMatch::Same => "this GPU's own entry",
            DeviceMatch::SameCapability => "another GPU of the same compute capability",
            DeviceMatch::SameMajor => "another GPU of the same major compute capability",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceMatch::Same => "same",
            DeviceMatch::SameCapability => "same-capability",
            DeviceMatch::SameMajor => "same-major",
        }
    }
}

/// The launch configuration of a config at some sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    /// Dynamic shared memory, in bytes.
    pub shared: u32,
}

/// What [`Dispatch::choose`] picked, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    /// The config's index (0 is the default).
    pub config: usize,
    /// The entry it came from, with how its device matched; `None` for the default.
    pub entry: Option<(usize, DeviceMatch)>,
    /// The log distance between the entry's sizes and the launch's (0 for the default).
    pub distance: f64,
    /// Entries of the chosen device (or of devices before it) passed over because their configs did
    /// not fit these sizes.
    pub passed_over: usize,
    pub geometry: Geometry,
}

/// No config fits the sizes of a launch, not even the default.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("kernel `{kernel}`: no config fits {sizes}, not even the default ({why})")]
pub struct NoFit {
    pub kernel: String,
    /// The sizes, `m=100 n=100 k=100`.
    pub sizes: String,
    /// Why the default does not fit.
    pub why: String,
}

/// Why a dispatch table could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DispatchError {
    #[error("kernel `{kernel}`: {what} `{expr}` does not parse: {message}")]
    Expr { kernel: String, what: &'static str, expr: String, message: String },
    #[error("kernel `{kernel}`: config {index} has {found} values, but the kernel has {expected} parameters")]
    Config { kernel: String, index: usize, found: usize, expected: usize },
    #[error("kernel `{kernel}`: entry {index} has {found} sizes or config {config}, but the kernel has {expected} sizes and {configs} configs")]
    Entry { kernel: String, index: usize, found: usize, expected: usize, config: usize, configs: usize },
    #[error("kernel `{kernel}`: a dispatch table needs at least the default config")]
    NoDefault { kernel: String },
}

/// A kernel's tuned configs and the rules that pick one per launch.
#[derive(Clone, Debug)]
pub struct Dispatch {
    kernel: String,
    size_names: Vec<String>,
    param_names: Vec<String>,
    /// Configs as values in parameter order; index 0 is the default.
    configs: Vec<Vec<Value>>,
    entries: Vec<TunedPoint>,
    constraints: Vec<Expr>,
    grid: Vec<Expr>,
    block: Vec<Expr>,
    shared: Option<Expr>,
}

/// Why one config does not fit some sizes.
#[derive(Clone, Debug, PartialEq)]
pub enum Misfit {
    Constraint(String),
    Geometry(String),
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::Constraint(c) => write!(f, "constraint `{c}` does not hold"),
            Misfit::Geometry(g) => write!(f, "{g}"),
        }
    }
}

impl Dispatch {
    /// A table over `spec`'s expressions (the declared spec: its constraints, grid, block and shared
    /// memory), `configs` (index 0 the default; values in parameter order) and `entries`.
    pub fn new(
        spec: &KernelSpec,
        configs: Vec<Vec<Value>>,
        entries: Vec<TunedPoint>,
    ) -> Result<Dispatch, DispatchError> {
        let kernel = spec.name.clone();
        let size_names: Vec<String> = spec.bench.sizes.iter().map(|(n, _)| n.clone()).collect();
        let mut names: Vec<&str> = size_names.iter().map(String::as_str).collect();
        names.extend(spec.params.iter().map(|(n, _)| n.as_str()));
        let bind = |what: &'static str, src: &str| {
            Expr::parse_with_names(src, &names).map_err(|e| DispatchError::Expr {
                kernel: kernel.clone(),
                what,
                expr: src.to_owned(),
                message: e.to_string(),
            })
        };
        let constraints = spec.constraints.iter().map(|c| bind("constraint", c)).collect::<Result<Vec<_>, _>>()?;
        let grid = spec.bench.grid.iter().map(|g| bind("grid", g)).collect::<Result<Vec<_>, _>>()?;
        let block = spec.bench.block.iter().map(|b| bind("block", b)).collect::<Result<Vec<_>, _>>()?;
        let shared = spec.bench.shared.as_deref().map(|s| bind("shared", s)).transpose()?;
        if configs.is_empty() {
            return Err(DispatchError::NoDefault { kernel });
        }
        for (index, c) in configs.iter().enumerate() {
            if c.len() != spec.params.len() {
                return Err(DispatchError::Config { kernel, index, found: c.len(), expected: spec.params.len() });
            }
        }
        for (index, e) in entries.iter().enumerate() {
            if e.sizes.len() != size_names.len() || e.config >= configs.len() {
                return Err(DispatchError::Entry {
                    kernel,
                    index,
                    found: e.sizes.len(),
                    expected: size_names.len(),
                    config: e.config,
                    configs: configs.len(),
                });
            }
        }
        let param_names = spec.params.iter().map(|(n, _)| n.clone()).collect();
        Ok(Dispatch { kernel, size_names, param_names, configs, entries, constraints, grid, block, shared })
    }

    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    /// The size variables, in declaration order: what [`Dispatch::choose`] takes values for.
    pub fn size_names(&self) -> &[String] {
        &self.size_names
    }

    /// The parameters, in declaration order: what [`Dispatch::config_values`] gives values for.
    pub fn param_names(&self) -> &[String] {
        &self.param_names
    }

    pub fn entries(&self) -> &[TunedPoint] {
        &self.entries
    }

    pub fn config_values(&self, index: usize) -> &[Value] {
        &self.configs[index]
    }

    /// The devices to take entries from for the GPU `name` with `compute_capability`, nearest first:
    /// each a device of the table (its first entry's index) with how it matches. A GPU of another major
    /// version gets none.
    pub fn device_order(&self, name: &str, compute_capability: (u32, u32)) -> Vec<(usize, DeviceMatch)> {
        let mut devices: Vec<usize> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let seen = devices.iter().any(|&d| {
                self.entries[d].device == e.device && self.entries[d].compute_capability == e.compute_capability
            });
            if !seen {
                devices.push(i);
            }
        }
        let mut ranked: Vec<(u32, usize, DeviceMatch)> = devices
            .into_iter()
            .filter_map(|d| {
                let e = &self.entries[d];
                let (major, minor) = e.compute_capability;
                if e.compute_capability == compute_capability && e.device == name {
                    Some((0, d, DeviceMatch::Same))
                } else if e.compute_capability == compute_capability {
                    Some((1, d, DeviceMatch::SameCapability))
                } else if major == compute_capability.0 {
                    Some((2 + minor.abs_diff(compute_capability.1), d, DeviceMatch::SameMajor))
                } else {
                    None
                }
            })
            .collect();
        // Several GPUs of one rank (two others of the same compute capability) are taken in order of
        // name, so the choice does not depend on how their cache files sort.
        ranked.sort_by(|a, b| {
            let (ea, eb) = (&self.entries[a.1], &self.entries[b.1]);
            (a.0, &ea.device, ea.compute_capability).cmp(&(b.0, &eb.device, eb.compute_capability))
        });
        ranked.into_iter().map(|(_, d, m)| (d, m)).collect()
    }

    /// Whether config `index` fits `sizes` (one per size variable), and its launch geometry there.
    pub fn fit(&self, index: usize, sizes: &[i64]) -> Result<Geometry, Misfit> {
        let mut slots: Vec<Value> = sizes.iter().map(|&v| Value::Int(v)).collect();
        slots.extend(self.configs[index].iter().cloned());
        for c in &self.constraints {
            if !c.eval_bool(&slots).unwrap_or(false) {
                return Err(Misfit::Constraint(c.source().to_owned()));
            }
        }
        let dim = |e: &Expr, lo: i64, what: &str| -> Result<u32, Misfit> {
            match e.eval_i64(&slots) {
                Ok(v) if v >= lo && v <= i64::from(u32::MAX) => Ok(v as u32),
                Ok(v) => Err(Misfit::Geometry(format!("{what} `{}` is {v}", e.source()))),
                Err(err) => Err(Misfit::Geometry(format!("{what} `{}`: {err}", e.source()))),
            }
        };
        let mut geometry = Geometry { grid: [1; 3], block: [1; 3], shared: 0 };
        for (i, e) in self.grid.iter().enumerate() {
            geometry.grid[i] = dim(e, 1, "grid")?;
        }
        for (i, e) in self.block.iter().enumerate() {
            geometry.block[i] = dim(e, 1, "block")?;
        }
        if let Some(e) = &self.shared {
            geometry.shared = dim(e, 0, "shared memory")?;
        }
        // The limits every CUDA GPU has (compute capability 3.0 on): more would fail the launch where
        // another config could have run. A device's own shared-memory limit is not known here: a config
        // over it fails its launch with the driver's error.
        let threads: u64 = geometry.block.iter().map(|&b| u64::from(b)).product();
        if threads > 1024 || geometry.block[2] > 64 {
            return Err(Misfit::Geometry(format!(
                "a block of {:?} threads is over CUDA's limit (1024, z at most 64)",
                geometry.block
            )));
        }
        if geometry.grid[1] > 65535 || geometry.grid[2] > 65535 {
            return Err(Misfit::Geometry(format!(
                "a grid of {:?} is over CUDA's limit (y and z at most 65535)",
                geometry.grid
            )));
        }
        Ok(geometry)
    }

    /// The log distance between two size points.
    pub fn distance(a: &[i64], b: &[i64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = (x.max(1) as f64).ln() - (y.max(1) as f64).ln();
                d * d
            })
            .sum::<f64>()
            .sqrt()
    }

    /// The config a launch of `sizes` (one per size variable, in declaration order) runs on the GPU
    /// `name` with `compute_capability`: see the module docs for the order.
    pub fn choose(&self, name: &str, compute_capability: (u32, u32), sizes: &[i64]) -> Result<Choice, NoFit> {
        let mut passed_over = 0;
        for (first, how) in self.device_order(name, compute_capability) {
            let (device, cc) = (&self.entries[first].device, self.entries[first].compute_capability);
            let mut mine: Vec<(f64, usize)> = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.device == *device && e.compute_capability == cc)
                .map(|(i, e)| (Dispatch::distance(&e.sizes, sizes), i))
                .collect();
            // Distances equal up to rounding (2048 lies as far from 1024 as from 4096) tie, so the choice
            // does not hang on the last bit of a logarithm; a tie goes to the larger tuned problem (on the
            // H100, SGEMM 2048³ ran the 4096³ entry's config 5% faster than the best of 400 samples).
            let magnitude = |i: usize| -> i64 {
                let ln: f64 = self.entries[i].sizes.iter().map(|&v| (v.max(1) as f64).ln()).sum();
                (ln * 1e9).round() as i64
            };
            mine.sort_by(|&(da, a), &(db, b)| {
                let key = |d: f64, i: usize| ((d * 1e9).round() as i64, std::cmp::Reverse(magnitude(i)));
                key(da, a)
                    .cmp(&key(db, b))
                    // Same distance and the same total size ((1024, 4096) against (4096, 1024)): the larger
                    // first size variable, so the order never depends on the table's.
                    .then_with(|| self.entries[b].sizes.cmp(&self.entries[a].sizes))
            });
            for (distance, i) in mine {
                match self.fit(self.entries[i].config, sizes) {
                    Ok(geometry) => {
                        let config = self.entries[i].config;
                        return Ok(Choice { config, entry: Some((i, how)), distance, passed_over, geometry });
                    }
                    Err(_) => passed_over += 1,
                }
            }
        }
        match self.fit(0, sizes) {
            Ok(geometry) => Ok(Choice { config: 0, entry: None, distance: 0.0, passed_over, geometry }),
            Err(why) => Err(NoFit { kernel: self.kernel.clone(), sizes: self.sizes_text(sizes), why: why.to_string() }),
        }
    }

    /// `m=1024 n=1024 k=1024`.
    pub fn sizes_text(&self, sizes: &[i64]) -> String {
        self.size_names.iter().zip(sizes).map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::KernelSpec;

    /// A GEMM-like kernel whose tiles must divide the sizes.
    fn spec() -> KernelSpec {
        let tokens: proc_macro2::TokenStream = r#"
            kernel = "cuda/mm.cu", entry = "mm",
            space(bm = [16, 64, 128], bn = [16, 64, 128]),
            constraint = "m % bm == 0 && n % bn == 0",
            default(bm = 16, bn = 16),
            sizes([m = 1024, n = 1024], [m = 4096, n = 4096], [m = 16384, n = 256]),
            bench(m = 4096, n = 4096, args = [out f32[m * n], m, n], grid = ["n / bn", "m / bm"], block = "256")
        "#
        .parse()
        .unwrap();
        KernelSpec::parse("mm", tokens).unwrap()
    }

    fn cfg(bm: i64, bn: i64) -> Vec<Value> {
        vec![Value::Int(bm), Value::Int(bn)]
    }

    fn point(device: &str, cc: (u32, u32), sizes: [i64; 2], config: usize) -> TunedPoint {
        TunedPoint { device: device.into(), compute_capability: cc, sizes: sizes.to_vec(), config }
    }

    const H100: &str = "NVIDIA H100 80GB HBM3";
    const H200: &str = "NVIDIA H200";

    fn table() -> Dispatch {
        // Configs: 0 default 16x16, 1 = 64x64, 2 = 128x128, 3 = 128x64 (for 16384x256), 4 = 64x16.
        let configs = vec![cfg(16, 16), cfg(64, 64), cfg(128, 128), cfg(128, 64), cfg(64, 16)];
        let entries = vec![
            point(H100, (9, 0), [1024, 1024], 1),
            point(H100, (9, 0), [4096, 4096], 2),
            point(H100, (9, 0), [16384, 256], 3),
            point("NVIDIA A100-SXM4-80GB", (8, 0), [4096, 4096], 4),
        ];
        Dispatch::new(&spec(), configs, entries).unwrap()
    }

    #[test]
    fn the_nearest_tuned_size_wins() {
        let t = table();
        let c = t.choose(H100, (9, 0), &[1024, 1024]).unwrap();
        assert_eq!((c.config, c.entry, c.distance), (1, Some((0, DeviceMatch::Same)), 0.0));
        assert_eq!(t.choose(H100, (9, 0), &[1536, 1536]).unwrap().config, 1);
        assert_eq!(t.choose(H100, (9, 0), &[3072, 3072]).unwrap().config, 2);
        // 2048² is as far from 1024² as from 4096²: the tie goes to the larger tuned problem.
        assert_eq!(t.choose(H100, (9, 0), &[2048, 2048]).unwrap().config, 2);
        assert_eq!(t.choose(H100, (9, 0), &[8192, 8192]).unwrap().config, 2);
        assert_eq!(t.choose(H100, (9, 0), &[8192, 512]).unwrap().config, 3);
        assert_eq!(t.choose(H100, (9, 0), &[4096, 4096]).unwrap().geometry.grid, [32, 32, 1]);
    }

    #[test]
    fn a_nearer_config_that_does_not_fit_is_passed_over() {
        let t = table();
        // 8192 x 176: neither 64 nor 128 divides 176, so no entry fits; the default 16x16 does.
        let c = t.choose(H100, (9, 0), &[8192, 176]).unwrap();
        assert_eq!((c.config, c.entry, c.passed_over), (0, None, 3));
        // 4096 x 3008 (64 * 47): the nearest entry, 4096² with 128x128, does not fit; the next nearest,
        // 1024² with 64x64, does.
        let c = t.choose(H100, (9, 0), &[4096, 3008]).unwrap();
        assert_eq!((c.config, c.entry, c.passed_over), (1, Some((0, DeviceMatch::Same)), 1));
    }

    #[test]
    fn shapes_no_config_fits_run_the_default_or_say_why() {
        let t = table();
        assert_eq!(t.choose(H100, (9, 0), &[48, 48]).unwrap().config, 0);
        let e = t.choose(H100, (9, 0), &[100, 100]).unwrap_err();
        assert_eq!(e.sizes, "m=100 n=100");
        assert!(e.to_string().contains("no config fits m=100 n=100") && e.why.contains("m % bm == 0"), "{e}");
    }

    #[test]
    fn devices_fall_back_by_capability_then_major() {
        let t = table();
        // An H200 has no entry: the H100's (same compute capability) come first.
        assert_eq!(t.device_order(H200, (9, 0)), vec![(0, DeviceMatch::SameCapability)]);
        let c = t.choose(H200, (9, 0), &[1024, 1024]).unwrap();
        assert_eq!((c.config, c.entry), (1, Some((0, DeviceMatch::SameCapability))));
        // An A100 has its own; an A10 (8.6) takes the A100's (same major); a V100 (7.0) the default.
        assert_eq!(t.choose("NVIDIA A100-SXM4-80GB", (8, 0), &[1024, 1024]).unwrap().config, 4);
        let a10 = t.choose("NVIDIA A10", (8, 6), &[1024, 1024]).unwrap();
        assert_eq!(a10.entry, Some((3, DeviceMatch::SameMajor)));
        assert_eq!(t.choose("Tesla V100", (7, 0), &[1024, 1024]).unwrap().entry, None);
        // A GPU's own entries come before another's, even at a farther size.
        let configs = vec![cfg(16, 16), cfg(64, 64), cfg(128, 128)];
        let both = vec![point(H100, (9, 0), [1024, 1024], 1), point(H200, (9, 0), [4096, 4096], 2)];
        let t = Dispatch::new(&spec(), configs, both).unwrap();
        assert_eq!(t.device_order(H200, (9, 0)), vec![(1, DeviceMatch::Same), (0, DeviceMatch::SameCapability)]);
        assert_eq!(t.choose(H200, (9, 0), &[1024, 1024]).unwrap().config, 2);
        // ... unless none of its configs fit: then the next device's nearest that does.
        let c = t.choose(H200, (9, 0), &[1024, 192]).unwrap();
        assert_eq!((c.config, c.entry), (1, Some((0, DeviceMatch::SameCapability))));
    }

    #[test]
    fn ties_never_depend_on_the_tables_order() {
        let configs = vec![cfg(16, 16), cfg(64, 64), cfg(128, 128)];
        let a = point(H100, (9, 0), [1024, 4096], 1);
        let b = point(H100, (9, 0), [4096, 1024], 2);
        let one = Dispatch::new(&spec(), configs.clone(), vec![a.clone(), b.clone()]).unwrap();
        let other = Dispatch::new(&spec(), configs.clone(), vec![b, a]).unwrap();
        let pick = |t: &Dispatch| t.config_values(t.choose(H100, (9, 0), &[2048, 2048]).unwrap().config).to_vec();
        assert_eq!(pick(&one), pick(&other));
        // Two other GPUs of the same compute capability: by name, whatever the order.
        let x = point("NVIDIA H800", (9, 0), [1024, 1024], 1);
        let y = point("NVIDIA GH200", (9, 0), [1024, 1024], 2);
        let one = Dispatch::new(&spec(), configs.clone(), vec![x.clone(), y.clone()]).unwrap();
        let other = Dispatch::new(&spec(), configs, vec![y, x]).unwrap();
        assert_eq!(pick_on(&one, H200), pick_on(&other, H200));
        assert_eq!(pick_on(&one, H200), cfg(128, 128), "NVIDIA GH200 sorts before NVIDIA H800");
    }

    fn pick_on(t: &Dispatch, device: &str) -> Vec<Value> {
        t.config_values(t.choose(device, (9, 0), &[1024, 1024]).unwrap().config).to_vec()
    }

    #[test]
    fn configs_over_cudas_launch_limits_do_not_fit() {
        // m = 2^20 with bm = 16 is a grid y of 65536 blocks: over 65535, so not launchable; bm = 128 is.
        let t = table();
        let e = t.fit(0, &[1 << 20, 1024]).unwrap_err();
        assert!(e.to_string().contains("over CUDA's limit"), "{e}");
        assert_eq!(t.fit(2, &[1 << 20, 1024]).unwrap().grid, [8, 8192, 1]);
        assert_eq!(
            t.choose(H100, (9, 0), &[1 << 20, 1024]).unwrap().config,
            3,
            "the 16384x256 entry is nearest and fits"
        );
    }

    #[test]
    fn log_distance_is_symmetric_in_ratios() {
        let d = |a: [i64; 2], b: [i64; 2]| Dispatch::distance(&a, &b);
        assert!((d([1024, 1], [2048, 1]) - d([2048, 1], [4096, 1])).abs() < 1e-12);
        assert_eq!(d([4096, 4096], [4096, 4096]), 0.0);
        assert!(d([16384, 256], [4096, 4096]) > d([16384, 256], [16384, 4096]));
    }

    #[test]
    fn tables_that_do_not_match_the_spec_are_refused() {
        let e = Dispatch::new(&spec(), vec![vec![Value::Int(16)]], vec![]).unwrap_err();
        assert!(e.to_string().contains("config 0 has 1 values, but the kernel has 2 parameters"), "{e}");
        let e = Dispatch::new(&spec(), vec![cfg(16, 16)], vec![point(H100, (9, 0), [1, 1], 3)]).unwrap_err();
        assert!(matches!(e, DispatchError::Entry { .. }), "{e}");
    }
}
