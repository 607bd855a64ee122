//! `cargo autotune list`: each kernel of a crate, its size points, the devices it has entries for at
//! each, the best config and its speed-up over the default, and where the tune's warm starts came from.
//! Needs no GPU.

use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::{emit, entry};
use tuner_build::cache::{point_key, short, Cache};
use tuner_build::scan::scan_crate;
use tuner_build::Settings;
use tuner_spec::spec::point_text;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
}

fn ms(t: Option<f64>) -> String {
    t.map(|t| format!("{t:.4} ms")).unwrap_or_else(|| "-".into())
}

/// Lists every crate the flags name; exits 1 when an entry is corrupt (a build of that kernel fails).
pub fn run(args: ListArgs, settings: &Settings) -> anyhow::Result<i32> {
    let crates = args.krate.crates()?;
    let mut broken = 0;
    for root in &crates.roots {
        broken += list_crate(root, settings, args.krate.json)?;
    }
    Ok(if broken > 0 { 1 } else { 0 })
}

/// Lists one crate; returns how many corrupt entries it has.
fn list_crate(root: &std::path::Path, settings: &Settings, json: bool) -> anyhow::Result<usize> {
    let scan = scan_crate(root)?;
    let cache = Cache::for_crate(root, settings.cache_dir.as_deref());
    let mut broken = 0;
    for k in &scan.kernels {
        let found = cache.lookup(&k.spec, &k.source_blake3)?;
        let key = short(&point_key(&k.source_blake3, &k.spec, &k.spec.bench.sizes)).to_owned();
        let points = k.spec.points();
        broken += found.corrupt.len();
        if json {
            let mut line = json!({
                "type": "kernel", "kernel": k.spec.name, "declared_in": k.declared_in.display().to_string(),
                "source": k.source_path.display().to_string(), "content_key": key,
                "sizes": points.iter().map(|p| point_text(p)).collect::<Vec<_>>(),
            });
            line["entries"] = found.fresh.iter().map(entry).collect();
            line["invalid"] =
                found.corrupt.iter().map(|e| serde_json::Value::from(tuner_spec::error_chain(e))).collect();
            emit(line);
            continue;
        }
        let default = k.spec.default_config();
        println!("{} ({}, content key {key}), default {default}", k.spec.name, k.source_path.display());
        if !found.corrupt.is_empty() {
            println!("  builds of this kernel fail until the invalid entries below are deleted or re-tuned");
        } else if found.fresh.is_empty() {
            println!("  no entry: builds use the default; run `cargo autotune tune` on a GPU machine");
        }
        for point in &points {
            let here: Vec<_> = found.fresh.iter().filter(|c| c.entry.point() == point.as_slice()).collect();
            let indent = if points.len() > 1 {
                let missing = if here.is_empty() { ": no entry (launches use the nearest tuned size)" } else { "" };
                println!("  at {}{missing}", point_text(point));
                "    "
            } else {
                "  "
            };
            for c in here {
                let e = &c.entry;
                let speedup = e.speedup().map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into());
                println!(
                    "{indent}{}: best {} {} (default {}, {speedup}); {} evaluations, {}, driver {}",
                    e.device.name,
                    serde_json::Value::Object(e.best.clone()),
                    ms(e.best_time_ms),
                    ms(e.default_time_ms),
                    e.tuning.evaluations,
                    e.tuning.strategy,
                    e.device.driver.as_deref().unwrap_or("?"),
                );
                for s in e.starts.iter().filter(|s| s.from != "default") {
                    println!("{indent}  warm start from {}: {}", s.from, ms(s.time_ms));
                }
            }
        }
        for (c, why) in &found.stale {
            println!("  stale: {} ({why})", c.path.display());
        }
        for e in &found.corrupt {
            println!("  invalid: {}", tuner_spec::error_chain(e));
        }
    }
    let listing = cache.list()?;
    for t in &listing.temps {
        let state = if t.alive { "a write in progress" } else { "left by a write that did not finish; delete it" };
        println!("temporary file {} ({state})", t.path.display());
    }
    for s in &listing.strays {
        println!("not an entry: {} (builds ignore it)", s.display());
    }
    Ok(broken)
}
