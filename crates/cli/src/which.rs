//! `cargo autotune which`: which config a launch of a kernel runs on a GPU at some sizes, and why, with
//! no GPU.
//!
//! It reads the crate's fresh cache entries as a build would, builds the same dispatch table the
//! generated code builds ([`tuner_build::codegen::dispatch_of`]) and asks it
//! ([`tuner_spec::dispatch::Dispatch::choose`]): so the answer is what a binary built from this cache
//! runs, including the device fallback (same compute capability, then the same major version), the
//! nearest size bucket whose config fits the sizes, and the default.
//!
//! ```text
//! cargo autotune which -p autotune-kernels --kernel sgemm --device "NVIDIA H200" --cc 9.0 \
//!     --size m=1024 --size n=1024 --size k=1024 [--json]
//! ```

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::json;

use super::crate_args::CrateArgs;
use super::json::emit;
use tuner_build::cache::{Cache, Cached};
use tuner_build::scan::scan_crate;
use tuner_build::Settings;
use tuner_spec::dispatch::{Choice, Dispatch};
use tuner_spec::spec::point_text;

#[derive(Debug, Args)]
pub struct WhichArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
    /// The launcher.
    #[arg(long, value_name = "NAME")]
    pub kernel: String,
    /// The GPU, as the driver names it ("NVIDIA H200").
    #[arg(long, value_name = "NAME")]
    pub device: String,
    /// Its compute capability (`9.0`); needed when no entry names that GPU.
    #[arg(long, value_name = "MAJOR.MINOR", value_parser = crate::args::compute_capability)]
    pub cc: Option<(u32, u32)>,
    /// A size of the launch, `NAME=VALUE`, one per size variable of the kernel (repeat it).
    #[arg(long = "size", value_name = "NAME=VALUE", value_parser = crate::args::size)]
    pub sizes: Vec<(String, i64)>,
}

/// `<config> from <file> (<device>, tuned at <sizes>; <how the device matched>[, log distance d])`, or
/// `the default <config>`.
pub fn describe(dispatch: &Dispatch, entries: &[Cached], choice: &Choice) -> String {
    let config = config_text(dispatch, choice.config);
    match choice.entry {
        None => format!("the default {config}"),
        Some((i, how)) => {
            let c = &entries[i];
            let distance =
                if choice.distance > 0.0 { format!(", log distance {:.2}", choice.distance) } else { String::new() };
            format!(
                "{config} from {} ({}, tuned at {}; {}{distance})",
                file_name(c),
                c.entry.device.name,
                point_text(c.entry.point()),
                how.describe()
            )
        }
    }
}

fn file_name(c: &Cached) -> String {
    c.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| c.path.display().to_string())
}

fn config_text(dispatch: &Dispatch, index: usize) -> String {
    config_json(dispatch, index).to_string()
}

/// Config `index` of the table as a JSON object, named by the kernel's declared parameters.
fn config_json(dispatch: &Dispatch, index: usize) -> serde_json::Value {
    let values = dispatch.config_values(index).iter().map(|v| v.to_json());
    dispatch.param_names().iter().cloned().zip(values).collect::<serde_json::Map<_, _>>().into()
}

pub fn run(args: WhichArgs, settings: &Settings) -> anyhow::Result<i32> {
    let crates = args.krate.crates()?;
    let mut found_kernel = None;
    let mut launchers = Vec::new();
    for root in &crates.roots {
        let scan = scan_crate(root)?;
        let cache = Cache::for_crate(root, settings.cache_dir.as_deref());
        for k in scan.kernels {
            launchers.push(k.spec.name.clone());
            if k.spec.name == args.kernel && found_kernel.is_none() {
                found_kernel = Some((k, cache.clone()));
            }
        }
    }
    let Some((k, cache)) = found_kernel else {
        bail!(
            "no #[autotune] launcher is named `{}` in {} (launchers: {})",
            args.kernel,
            crates.manifest.display(),
            if launchers.is_empty() { "none".to_owned() } else { launchers.join(", ") }
        );
    };
    let found = cache.lookup(&k.spec, &k.source_blake3)?;
    if let Some(e) = found.corrupt.into_iter().next() {
        return Err(e).context("a build of this kernel fails until the entry is deleted or re-tuned");
    }
    let dispatch = tuner_build::codegen::dispatch_of(&k.spec, &found.fresh)?;
    let names = dispatch.size_names().to_vec();
    let mut sizes = Vec::with_capacity(names.len());
    for (name, _) in &args.sizes {
        if !names.contains(name) {
            bail!("kernel `{}` has no size `{name}` (sizes: {})", k.spec.name, names.join(", "));
        }
    }
    let mut missing = Vec::new();
    for name in &names {
        match args.sizes.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => sizes.push(*v),
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "kernel `{}` has sizes {}; give each with --size (missing: {})",
            k.spec.name,
            names.join(", "),
            missing.join(", ")
        );
    }
    let cc = match args.cc {
        Some(cc) => cc,
        None => match found.fresh.iter().find(|c| c.entry.device.name == args.device) {
            Some(c) => c.entry.device.compute_capability,
            None => bail!(
                "no entry of kernel `{}` names the GPU \"{}\", so its compute capability is unknown; pass --cc (e.g. --cc 9.0)",
                k.spec.name,
                args.device
            ),
        },
    };
    let at = dispatch.sizes_text(&sizes);
    let choice = dispatch.choose(&args.device, cc, &sizes)?;
    if args.krate.json {
        let entry = choice.entry.map(|(i, _)| &found.fresh[i]);
        emit(json!({
            "type": "which", "kernel": k.spec.name, "device": args.device,
            "compute_capability": format!("{}.{}", cc.0, cc.1),
            "sizes": names.iter().cloned().zip(sizes.iter().map(|v| json!(v))).collect::<serde_json::Map<_, _>>(),
            "config": config_json(&dispatch, choice.config),
            "source": if entry.is_some() { "entry" } else { "default" },
            "entry": entry.map(|c| c.path.display().to_string()),
            "entry_device": entry.map(|c| c.entry.device.name.clone()),
            "entry_sizes": entry.map(|c| c.entry.point().iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>()),
            "device_match": choice.entry.map(|(_, m)| m.as_str()),
            "distance": choice.distance,
            "passed_over": choice.passed_over,
            "grid": choice.geometry.grid, "block": choice.geometry.block, "shared": choice.geometry.shared,
        }));
        return Ok(0);
    }
    println!("{} at {at} on {} (sm_{}{}):", k.spec.name, args.device, cc.0, cc.1);
    println!("  runs {}", describe(&dispatch, &found.fresh, &choice));
    if choice.passed_over > 0 {
        println!("  passed over {} nearer entr(y/ies) whose config does not fit these sizes", choice.passed_over);
    }
    let g = choice.geometry;
    println!("  launch: grid {:?}, block {:?}, shared {} bytes", g.grid, g.block, g.shared);
    Ok(0)
}
