//! The sized fixture (`tests/fixtures/sized`): a launcher tuned at three sizes, with committed entries
//! for an H100 at each and an A100 at one. Built offline, its binary prints what the generated dispatch
//! table picks per GPU and launch size: the nearest tuned size whose tiles fit, the nearest device
//! (same compute capability, then the same major version), the default, or no fit.

use std::collections::BTreeMap;

use tuner_runtime::build::cache::{Cache, Entry};
use tuner_runtime::build::scan::scan_crate;
use tuner_runtime::device::DeviceFingerprint;

use crate::util::{both, hand_written_entry, workspace, Fixture};

pub const H100: &str = "NVIDIA H100 80GB HBM3";
pub const A100: &str = "NVIDIA A100-SXM4-80GB";

/// One committed entry: (device, compute capability, m, n, bm, bn).
type Committed = (&'static str, (u32, u32), i64, i64, i64, i64);

/// The entries the fixture commits.
pub const ENTRIES: &[Committed] = &[
    (H100, (9, 0), 1024, 1024, 32, 32),
    (H100, (9, 0), 4096, 4096, 128, 128),
    (H100, (9, 0), 16384, 256, 128, 64),
    (A100, (8, 0), 4096, 4096, 64, 64),
];

/// The entries, computed from the fixture's current source and attribute.
pub fn expected_entries() -> Vec<Entry> {
    let root = workspace().join("tests/fixtures/sized");
    let kernel = scan_crate(&root).expect("scan the fixture").kernels.remove(0);
    ENTRIES
        .iter()
        .map(|&(device, cc, m, n, bm, bn)| {
            let device = DeviceFingerprint { name: device.into(), compute_capability: cc, driver: None, nvrtc: None };
            let spec = kernel.spec.at(&[("m".into(), m), ("n".into(), n)]).check().expect("the point's spec");
            let best = spec
                .space()
                .point_of_pairs([("bm".to_owned(), bm.into()), ("bn".to_owned(), bn.into())])
                .expect("the best config fits its point");
            let best = spec.space().config(&best);
            hand_written_entry(&spec, &kernel.source_blake3, device, &best, (1.0, 2.0), "tests/tests/fixture_sized.rs")
        })
        .collect()
}

/// The committed entries match the fixture's source; `AUTOTUNE_BLESS=1` rewrites them after a change.
#[test]
fn the_committed_sized_entries_are_current() {
    let dir = workspace().join("tests/fixtures/sized/autotune");
    let want = expected_entries();
    if std::env::var_os("AUTOTUNE_BLESS").is_some() {
        for old in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            std::fs::remove_file(old.path()).expect("remove an old entry");
        }
        for e in &want {
            Cache::with_dirs(vec![dir.clone()]).write(e).expect("write the entry");
        }
    }
    for e in &want {
        let path = dir.join(e.file_name());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}; rerun with AUTOTUNE_BLESS=1 to regenerate it", path.display()));
        assert_eq!(text, e.to_pretty_json(), "{} is stale: rerun with AUTOTUNE_BLESS=1", path.display());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), want.len());
}

fn picks(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            // `kind device|MxN answer`: device names have spaces, so the query ends at the first space
            // after the `|`.
            let (kind, rest) = l.split_once(' ')?;
            let bar = rest.find('|').unwrap_or(0);
            let end = bar + rest[bar..].find(' ')?;
            Some((format!("{kind} {}", &rest[..end]), rest[end + 1..].to_owned()))
        })
        .collect()
}

#[test]
fn an_offline_sized_build_dispatches_by_size_and_device() {
    let f = Fixture::copy("sized", "an_offline_sized_build_dispatches");
    let out = f.offline("run");
    assert!(out.status.success(), "offline build failed:\n{}", both(&out));
    let p = picks(&out.stdout);
    let pick = |q: &str| p.get(&format!("pick {q}")).cloned().unwrap_or_else(|| panic!("no pick for {q}: {p:?}"));
    let h100 = |m: i64, n: i64| pick(&format!("{H100}|{m}x{n}"));
    // The tuned sizes themselves, and sizes nearest to each (log distance).
    assert_eq!(h100(1024, 1024), format!("bm=32 bn=32 from={H100}@1024x1024 match=same grid=32x32"));
    assert!(h100(1536, 1536).starts_with("bm=32 bn=32 from=") && h100(1536, 1536).contains("@1024x1024"));
    assert!(h100(8192, 8192).starts_with("bm=128 bn=128") && h100(8192, 8192).contains("@4096x4096"));
    assert!(h100(8192, 512).starts_with("bm=128 bn=64") && h100(8192, 512).contains("@16384x256"));
    // The nearest entry's tile (128) does not divide 3008: the next nearest whose tile does.
    assert!(
        h100(4096, 3008).starts_with("bm=32 bn=32") && h100(4096, 3008).contains("@1024x1024"),
        "{}",
        h100(4096, 3008)
    );
    // No tuned tile divides 4048: the default runs.
    assert_eq!(h100(4096, 4048), "bm=16 bn=16 from=default grid=253x256");
    // Nothing divides 100, not even the default: the launch is refused, naming the sizes.
    let nofit = p.get(&format!("nofit {H100}|100x100")).expect("100x100 fits nothing");
    assert!(nofit.contains("no config fits m=100 n=100, not even the default"), "{nofit}");
    // Devices: an H200 takes the H100's (same compute capability); an A100 its own entry, even at a size
    // the H100 has exactly; an A10 (8.6) the A100's (same major); a V100 the default.
    assert_eq!(
        pick("NVIDIA H200|1024x1024"),
        format!("bm=32 bn=32 from={H100}@1024x1024 match=same-capability grid=32x32")
    );
    assert_eq!(pick(&format!("{A100}|1024x1024")), format!("bm=64 bn=64 from={A100}@4096x4096 match=same grid=16x16"));
    assert!(pick("NVIDIA A10|1024x1024").contains(&format!("from={A100}@4096x4096 match=same-major")));
    assert_eq!(pick("Tesla V100-SXM2-32GB|1024x1024"), "bm=16 bn=16 from=default grid=64x64");
    // No GPU in this process: the launcher's bench-size config is the default.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("launcher bm=16 bn=16\n") && stdout.contains("entries 4\n"), "{stdout}");
}

/// A size point no GPU has an entry for is an offline miss that names the size.
#[test]
fn an_offline_build_missing_a_size_names_it() {
    let f = Fixture::copy("sized", "an_offline_build_missing_a_size");
    let gone = f.root.join("autotune").join(expected_entries()[2].file_name());
    std::fs::remove_file(&gone).expect("remove the 16384x256 entry");
    let out = f.offline("build");
    assert!(!out.status.success(), "an offline miss must fail:\n{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in ["no cached config for kernel `mm` at m=16384 n=256", "cargo autotune tune", "AUTOTUNE_OFFLINE"] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
}
