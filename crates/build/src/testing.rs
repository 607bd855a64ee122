//! Test support shared by this crate's tests, the CLI's and the cross-crate tests: a fixture crate with
//! one launcher, and a GPU that replays a recorded table. Not API.

use std::path::{Path, PathBuf};

use tuner_search::{Gpu, KernelObjective, Replay};
use tuner_spec::device::DeviceFingerprint;
use tuner_spec::CheckedSpec;

pub const LAUNCHER: &str = r#"
    use tuner_runtime::autotune;
    #[autotune(
        kernel = "cuda/scale.cu", entry = "scale",
        space(block = [64, 128, 256], items = [1, 2, 4]),
        constraint = "block * items <= 512",
        bench(n = 1 << 20, args = [inout f32[n], n], grid = "ceil_div(n, block * items)", block = "block"),
    )]
    pub fn scale() {}
"#;

/// A crate with one launcher `scale` and its kernel.
pub fn fixture_crate(root: &Path) {
    std::fs::create_dir_all(root.join("src/nested")).unwrap();
    std::fs::create_dir_all(root.join("cuda")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "mod nested;\n").unwrap();
    std::fs::write(root.join("src/nested/scale.rs"), LAUNCHER).unwrap();
    std::fs::write(root.join("cuda/scale.cu"), "extern \"C\" __global__ void scale(float *x, int n) {}\n").unwrap();
}

/// A GPU whose measurements are a recorded table with the `scale` fixture's space.
pub struct FakeGpu {
    fingerprint: DeviceFingerprint,
    table: PathBuf,
}

impl FakeGpu {
    pub fn new(dir: &Path) -> FakeGpu {
        FakeGpu::named(dir, "Fake GPU")
    }

    /// A fake GPU with another name (compute capability 9.0 as every fake GPU), replaying the same table.
    pub fn named(dir: &Path, name: &str) -> FakeGpu {
        let mut cache = serde_json::Map::new();
        for block in [64, 128, 256] {
            for items in [1, 2, 4] {
                let time = 1.0 + ((block * items) as f64 - 256.0).abs() / 100.0;
                cache.insert(
                    format!("{block},{items}"),
                    serde_json::json!({"block": block, "items": items, "time": time}),
                );
            }
        }
        let table = serde_json::json!({
            "device_name": "Fake GPU", "kernel_name": "scale", "problem_size": [1048576],
            "tune_params_keys": ["block", "items"],
            "tune_params": {"block": [64, 128, 256], "items": [1, 2, 4]},
            "objective": "time", "cache": cache,
        });
        let path = dir.join("fake.json");
        std::fs::write(&path, table.to_string()).unwrap();
        let fingerprint =
            DeviceFingerprint { name: name.into(), compute_capability: (9, 0), driver: None, nvrtc: None };
        FakeGpu { fingerprint, table: path }
    }
}

impl Gpu for FakeGpu {
    fn fingerprint(&self) -> &DeviceFingerprint {
        &self.fingerprint
    }
    fn objective<'a>(
        &'a mut self,
        spec: &CheckedSpec,
        _source: &str,
    ) -> Result<Box<dyn KernelObjective + 'a>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Box::new(Replay::load(&self.table)?.constrain(&spec.constraints)?))
    }
}
