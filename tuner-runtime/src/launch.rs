//! The dispatch table behind a launcher: which tuned config a launch on some device at some sizes runs,
//! and its launch geometry, decided once per (device, sizes) and cached.
//!
//! The generated code (`$OUT_DIR/autotune/<fn>.rs`) holds the table's data as constants: the distinct
//! configs (the default first), one [`DeviceEntry`] per cache entry, and the declared spec as JSON. The
//! rules are [`tuner_spec::dispatch`]'s (nearest device, then the nearest size whose config fits, else
//! the default), shared with `cargo autotune which`, so the query command says what a binary runs.
//!
//! # The hot path
//!
//! A launch calls [`Table::choose`] with a device slot (an interned (name, compute capability), found
//! once per CUDA device ordinal) and its sizes. The answer is looked up under a read lock in a hash map
//! keyed by a fixed-size array (no allocation, a small multiplicative hash); only the first launch of a
//! (device, sizes) pair evaluates the rules, parses the spec (once per table) and takes the write lock.
//! `cargo run --release -p autotune-kernels --example dispatch_cost` measures it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, PoisonError, RwLock};

use tuner_spec::dispatch::{DeviceMatch, Dispatch, Geometry, NoFit, TunedPoint};
use tuner_spec::spec::{KernelSpec, MAX_SIZES};
use tuner_spec::value::Value;
use tuner_spec::Config;

/// One cache entry as the generated `ENTRIES` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The GPU name the driver reports.
    pub device: &'static str,
    pub compute_capability: (u32, u32),
    /// The sizes it was tuned at, one per size variable in declaration order.
    pub sizes: &'static [i64],
    /// Its config's index in the generated `CONFIGS`.
    pub config: usize,
}

/// Why a launch could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("kernel `{kernel}`: the launch gave {found} sizes, but the kernel declares {} ({})", expected.len(), expected.join(", "))]
    Sizes { kernel: String, expected: &'static [&'static str], found: usize },
    #[error(transparent)]
    NoFit(#[from] NoFit),
    /// The generated table does not match its spec: a bug in the code generator, never the user's data.
    #[error("kernel `{kernel}`: the generated dispatch table is invalid ({message}); rebuild the crate")]
    Table { kernel: String, message: String },
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Cuda(Box<tuner_cuda::CudaError>),
}

#[cfg(feature = "cuda")]
impl From<tuner_cuda::CudaError> for LaunchError {
    fn from(e: tuner_cuda::CudaError) -> LaunchError {
        // Boxed: a launch's `Result` stays small on the hot path.
        LaunchError::Cuda(Box::new(e))
    }
}

/// A device as the table knows it: an index into its interned (name, compute capability) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceSlot(u32);

/// The config a launch runs, with its geometry and where it came from.
#[derive(Debug)]
pub struct Pick<T: 'static> {
    pub config: &'static T,
    /// Its index in the generated `CONFIGS` (0 is the default).
    pub index: usize,
    pub geometry: Geometry,
    /// The entry it came from and how that entry's device matched, `None` for the default.
    pub entry: Option<(&'static DeviceEntry, DeviceMatch)>,
}

impl<T> Clone for Pick<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Pick<T> {}

/// A cache key: the device slot and the sizes, padded with zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    device: u32,
    sizes: [i64; MAX_SIZES],
}

/// A small multiplicative hash (FxHash's): the keys are a handful of integers, which SipHash would spend
/// most of a lookup on.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Integer arrays arrive here as their bytes (`Hash::hash_slice`): eight at a time.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("chunks of eight")));
        }
        for b in chunks.remainder() {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// The most (device, sizes) answers a table keeps.
const MAX_PICKS: usize = 1 << 16;

type Picks = HashMap<Key, (usize, Geometry, Option<(usize, DeviceMatch)>), BuildHasherDefault<FxHasher>>;

/// A kernel's dispatch table (the generated `TABLE`).
pub struct Table<T: 'static> {
    spec: &'static str,
    params: &'static [&'static str],
    sizes: &'static [&'static str],
    configs: &'static [T],
    entries: &'static [DeviceEntry],
    values: fn(&T) -> Vec<Value>,
    /// The spec, parsed once: the rules and the bench sizes.
    parsed: OnceLock<Result<Parsed, String>>,
    devices: RwLock<Vec<(String, (u32, u32))>>,
    picks: OnceLock<RwLock<Picks>>,
    #[cfg(feature = "cuda")]
    ordinals: RwLock<Vec<(usize, DeviceSlot)>>,
    /// The bench-size config's index on the GPU this process runs on.
    running: OnceLock<usize>,
}

/// What a table makes of its spec, once.
struct Parsed {
    dispatch: Dispatch,
    /// The bench sizes, in declaration order.
    bench: Vec<i64>,
}

impl<T: 'static> Table<T> {
    /// The generated table: the declared spec as JSON, the parameter and size names, the configs (the
    /// default first), the entries, and how to read a config's values.
    pub const fn new(
        spec: &'static str,
        params: &'static [&'static str],
        sizes: &'static [&'static str],
        configs: &'static [T],
        entries: &'static [DeviceEntry],
        values: fn(&T) -> Vec<Value>,
    ) -> Table<T> {
        Table {
            spec,
            params,
            sizes,
            configs,
            entries,
            values,
            parsed: OnceLock::new(),
            devices: RwLock::new(Vec::new()),
            picks: OnceLock::new(),
            #[cfg(feature = "cuda")]
            ordinals: RwLock::new(Vec::new()),
            running: OnceLock::new(),
        }
    }

    /// The kernel's size variables, in the order [`Table::choose`] takes their values.
    pub fn size_names(&self) -> &'static [&'static str] {
        self.sizes
    }

    pub fn configs(&self) -> &'static [T] {
        self.configs
    }

    pub fn entries(&self) -> &'static [DeviceEntry] {
        self.entries
    }

    /// Config `index` as a [`Config`] (names and values), e.g. for its `-D` defines.
    pub fn config(&self, index: usize) -> Config {
        let names: Vec<String> = self.params.iter().map(|p| (*p).to_owned()).collect();
        Config::new(names.into(), (self.values)(&self.configs[index]))
    }

    fn parsed(&self) -> &Result<Parsed, String> {
        self.parsed.get_or_init(|| {
            let spec: KernelSpec = serde_json::from_str(self.spec).map_err(|e| e.to_string())?;
            let configs = self.configs.iter().map(self.values).collect();
            let entries = self
                .entries
                .iter()
                .map(|e| TunedPoint {
                    device: e.device.to_owned(),
                    compute_capability: e.compute_capability,
                    sizes: e.sizes.to_vec(),
                    config: e.config,
                })
                .collect();
            let dispatch = Dispatch::new(&spec, configs, entries).map_err(|e| e.to_string())?;
            Ok(Parsed { dispatch, bench: spec.bench.sizes.iter().map(|(_, v)| *v).collect() })
        })
    }

    fn dispatch(&self) -> Result<&Dispatch, LaunchError> {
        self.parsed()
            .as_ref()
            .map(|p| &p.dispatch)
            .map_err(|message| LaunchError::Table { kernel: self.kernel_name(), message: message.clone() })
    }

    fn kernel_name(&self) -> String {
        match self.parsed() {
            Ok(p) => p.dispatch.kernel().to_owned(),
            // A spec that does not parse (a code generator bug) may still name its kernel.
            Err(_) => serde_json::from_str::<serde_json::Value>(self.spec)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "?".to_owned()),
        }
    }

    /// The slot of the GPU `name` with `compute_capability`, interned at its first use.
    pub fn device_slot(&self, name: &str, compute_capability: (u32, u32)) -> DeviceSlot {
        let find = |list: &[(String, (u32, u32))]| {
            list.iter().position(|(n, cc)| n == name && *cc == compute_capability).map(|i| DeviceSlot(i as u32))
        };
        if let Some(slot) = find(&self.devices.read().unwrap_or_else(PoisonError::into_inner)) {
            return slot;
        }
        let mut list = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = find(&list) {
            return slot;
        }
        list.push((name.to_owned(), compute_capability));
        DeviceSlot((list.len() - 1) as u32)
    }

    /// The config a launch of `sizes` (one per size variable, in declaration order) runs on `device`:
    /// looked up, or decided by the rules once and remembered.
    pub fn choose(&self, device: DeviceSlot, sizes: &[i64]) -> Result<Pick<T>, LaunchError> {
        if sizes.len() != self.sizes.len() {
            return Err(LaunchError::Sizes { kernel: self.kernel_name(), expected: self.sizes, found: sizes.len() });
        }
        let mut key = Key { device: device.0, sizes: [0; MAX_SIZES] };
        key.sizes[..sizes.len()].copy_from_slice(sizes);
        let picks = self.picks.get_or_init(|| RwLock::new(Picks::default()));
        if let Some(&(index, geometry, entry)) = picks.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(self.pick(index, geometry, entry));
        }
        let known = self.devices.read().unwrap_or_else(PoisonError::into_inner).get(device.0 as usize).cloned();
        let Some((name, cc)) = known else {
            return Err(LaunchError::Table {
                kernel: self.kernel_name(),
                message: format!("device slot {} was not made by this table's device_slot", device.0),
            });
        };
        let choice = self.dispatch()?.choose(&name, cc, sizes)?;
        let mut picks = picks.write().unwrap_or_else(PoisonError::into_inner);
        // A program that launches at ever new sizes must not grow the map without end: past the cap it
        // starts over (each answer costs microseconds to make again).
        if picks.len() >= MAX_PICKS {
            picks.clear();
        }
        picks.insert(key, (choice.config, choice.geometry, choice.entry));
        Ok(self.pick(choice.config, choice.geometry, choice.entry))
    }

    fn pick(&self, index: usize, geometry: Geometry, entry: Option<(usize, DeviceMatch)>) -> Pick<T> {
        Pick { config: &self.configs[index], index, geometry, entry: entry.map(|(i, m)| (&self.entries[i], m)) }
    }

    /// [`Table::choose`] for a GPU given by name and compute capability.
    pub fn choose_for(
        &self,
        name: &str,
        compute_capability: (u32, u32),
        sizes: &[i64],
    ) -> Result<Pick<T>, LaunchError> {
        self.choose(self.device_slot(name, compute_capability), sizes)
    }

    /// The config at the bench sizes on the GPU `name`: the nearest entry, else the default.
    pub fn at_bench(&self, name: &str, compute_capability: (u32, u32)) -> &'static T {
        &self.configs[self.at_bench_index(name, compute_capability)]
    }

    /// [`Table::at_bench`]'s index in the configs.
    fn at_bench_index(&self, name: &str, compute_capability: (u32, u32)) -> usize {
        match self.parsed() {
            Ok(p) => p.dispatch.choose(name, compute_capability, &p.bench).map_or(0, |choice| choice.config),
            Err(_) => 0,
        }
    }

    /// [`Table::at_bench`] for the GPU this process runs on (device 0), decided once; the default when
    /// there is none.
    pub fn at_bench_running(&self) -> &'static T {
        &self.configs[self.at_bench_running_index()]
    }

    /// [`Table::at_bench_running`]'s index in the configs.
    pub fn at_bench_running_index(&self) -> usize {
        *self.running.get_or_init(|| match running_device() {
            Some((name, cc)) => self.at_bench_index(&name, cc),
            None => 0,
        })
    }

    /// The slot of CUDA device `ordinal`, queried from the driver once.
    #[cfg(feature = "cuda")]
    pub fn device_of_ordinal(&self, ordinal: usize) -> Result<DeviceSlot, LaunchError> {
        if let Some((_, slot)) =
            self.ordinals.read().unwrap_or_else(PoisonError::into_inner).iter().find(|(o, _)| *o == ordinal)
        {
            return Ok(*slot);
        }
        let info = tuner_cuda::query_device(ordinal)?;
        let slot = self.device_slot(&info.name, info.compute_capability);
        self.ordinals.write().unwrap_or_else(PoisonError::into_inner).push((ordinal, slot));
        Ok(slot)
    }
}

/// The name and compute capability of the GPU this process runs on (device 0 of the visible devices),
/// or `None` when there is none or the crate was built without the `cuda` feature.
pub fn running_device() -> Option<(String, (u32, u32))> {
    #[cfg(feature = "cuda")]
    {
        tuner_cuda::query_device(0).ok().map(|d| (d.name, d.compute_capability))
    }
    #[cfg(not(feature = "cuda"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Tile {
        bm: i64,
    }

    fn values(t: &Tile) -> Vec<Value> {
        vec![Value::Int(t.bm)]
    }

    const SPEC: &str = r#"{"name":"mm","kernel":"mm.cu","entry":"mm","params":[["bm",[16,64,128]]],
        "constraints":["m % bm == 0"],"default":[["bm",16]],
        "bench":{"sizes":[["m",4096]],"args":[{"buffer":{"access":"out","elem":"f32","len":"m"}}],
                 "grid":["m / bm"],"block":["bm"],"shared":null,"bytes":null,"flops":null}}"#;
    static CONFIGS: [Tile; 3] = [Tile { bm: 16 }, Tile { bm: 64 }, Tile { bm: 128 }];
    static ENTRIES: [DeviceEntry; 2] = [
        DeviceEntry { device: "NVIDIA H100 80GB HBM3", compute_capability: (9, 0), sizes: &[1024], config: 1 },
        DeviceEntry { device: "NVIDIA H100 80GB HBM3", compute_capability: (9, 0), sizes: &[4096], config: 2 },
    ];
    static TABLE: Table<Tile> = Table::new(SPEC, &["bm"], &["m"], &CONFIGS, &ENTRIES, values);

    #[test]
    fn picks_are_cached_per_device_and_sizes_and_fall_back_to_the_nearest_device() {
        let h100 = TABLE.device_slot("NVIDIA H100 80GB HBM3", (9, 0));
        let h200 = TABLE.device_slot("NVIDIA H200", (9, 0));
        assert_ne!(h100, h200);
        assert_eq!(TABLE.device_slot("NVIDIA H200", (9, 0)), h200);
        let p = TABLE.choose(h100, &[1024]).unwrap();
        assert_eq!((p.config.bm, p.index, p.geometry.grid[0]), (64, 1, 16));
        assert_eq!(TABLE.choose(h100, &[8192]).unwrap().config.bm, 128);
        // A shape the 4096 entry's tile does not divide takes the 1024 entry's, then the default.
        assert_eq!(TABLE.choose(h100, &[8192 + 64]).unwrap().config.bm, 64);
        let p = TABLE.choose(h100, &[8192 + 16]).unwrap();
        assert_eq!((p.config.bm, p.entry.is_none()), (16, true));
        // The H200 has no entry: the H100's come first (same compute capability), and say so.
        let p = TABLE.choose(h200, &[4096]).unwrap();
        assert_eq!(p.config.bm, 128);
        assert_eq!(p.entry.map(|(e, m)| (e.sizes, m)), Some((&[4096i64][..], DeviceMatch::SameCapability)));
        // Cached: the same answer again.
        assert_eq!(TABLE.choose(h200, &[4096]).unwrap().index, 2);
        // An older GPU gets the default; the bench-size choice agrees.
        assert_eq!(TABLE.choose_for("Tesla V100", (7, 0), &[4096]).unwrap().index, 0);
        assert_eq!(TABLE.at_bench("NVIDIA H200", (9, 0)).bm, 128);
        assert_eq!(TABLE.config(1).to_string(), "{'bm': 64}");
    }

    #[test]
    fn wrong_sizes_and_shapes_nothing_fits_are_errors() {
        let h100 = TABLE.device_slot("NVIDIA H100 80GB HBM3", (9, 0));
        let e = TABLE.choose(h100, &[1024, 2]).unwrap_err();
        assert_eq!(e.to_string(), "kernel `mm`: the launch gave 2 sizes, but the kernel declares 1 (m)");
        let e = TABLE.choose(h100, &[100]).unwrap_err();
        assert!(e.to_string().starts_with("kernel `mm`: no config fits m=100, not even the default"), "{e}");
    }
}
