//! `cargo autotune list`: each kernel of a crate, the devices it has entries for, the best config and
//! its speed-up over the default. Needs no GPU.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::{emit, entry};
use crate::cache::{content_key, short, Cache, CACHE_DIR_ENV};
use crate::scan::scan_crate;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
}

fn ms(t: Option<f64>) -> String {
    t.map(|t| format!("{t:.4} ms")).unwrap_or_else(|| "-".into())
}

pub fn run(args: ListArgs) -> anyhow::Result<i32> {
    let root = args.krate.crate_root()?;
    let scan = scan_crate(&root)?;
    let env_dir = std::env::var_os(CACHE_DIR_ENV).map(PathBuf::from);
    let cache = Cache::for_crate(&root, env_dir.as_deref());
    for k in &scan.kernels {
        let found = cache.lookup(&k.spec, &k.source_blake3)?;
        let key = short(&content_key(&k.source_blake3, &k.spec)).to_owned();
        if args.krate.json {
            let mut line = json!({
                "type": "kernel", "kernel": k.spec.name, "declared_in": k.declared_in.display().to_string(),
                "source": k.source_path.display().to_string(), "content_key": key,
            });
            line["entries"] = found.fresh.iter().map(entry).collect();
            emit(line);
            continue;
        }
        let default = k.spec.default_config().map(|c| c.to_string()).unwrap_or_default();
        println!("{} ({}, content key {key}), default {default}", k.spec.name, k.source_path.display());
        if found.fresh.is_empty() {
            println!("  no entry: builds use the default; run `cargo autotune tune` on a GPU machine");
        }
        for c in &found.fresh {
            let e = &c.entry;
            let speedup = e.speedup().map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into());
            println!(
                "  {}: best {} {} (default {}, {speedup}); {} evaluations, {}, driver {}",
                e.device.name,
                serde_json::Value::Object(e.best.clone()),
                ms(e.best_time_ms),
                ms(e.default_time_ms),
                e.tuning.evaluations,
                e.tuning.strategy,
                e.device.driver.as_deref().unwrap_or("?"),
            );
        }
        for (c, why) in &found.stale {
            println!("  stale: {} ({why})", c.path.display());
        }
        for e in &found.corrupt {
            println!("  invalid: {e}");
        }
    }
    Ok(0)
}
