//! A kernel with no cache entry: without a GPU the build bakes the default config with one warning;
//! with `AUTOTUNE_OFFLINE=1` it fails, naming the kernel and the command that fixes it.

use crate::util::{both, Fixture};

#[test]
fn a_miss_warns_without_a_gpu_and_fails_offline() {
    let f = Fixture::copy("offline", "a_miss_warns_without_a_gpu_and_fails_offline");
    std::fs::remove_file(f.entry()).expect("remove the entry");

    let out = f.cargo(&["build", "--offline"]).output().expect("run cargo");
    assert!(out.status.success(), "a miss without a GPU still builds:\n{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning =
        stderr.lines().find(|l| l.contains("autotune: scale:")).unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert!(warning.contains("no GPU") && warning.contains("'block': 256"), "{warning}");
    assert!(warning.contains("cargo autotune tune"), "{warning}");

    let out = f.offline("build");
    assert!(!out.status.success(), "an offline miss must fail:\n{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in ["no cached config for kernel `scale`", "cargo autotune tune", "AUTOTUNE_OFFLINE", "autotune"] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
}
