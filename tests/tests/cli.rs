//! `cargo autotune check` as CI runs it: it passes on `kernels` (whose entries are committed) and fails
//! with exit code 1 on a crate whose entry went stale, 2 on an error. Runs the CLI in-process: no build.

use tuner_cli::main_with_args;

use crate::util::{workspace, Fixture};

fn check(manifest: &std::path::Path) -> i32 {
    let manifest = manifest.display().to_string();
    // As `cargo autotune check`: cargo passes `autotune` as the first argument.
    main_with_args(["cargo-autotune", "autotune", "check", "--manifest-path", &manifest].map(Into::into))
}

#[test]
fn check_passes_on_the_kernels_crate() {
    assert_eq!(check(&workspace().join("kernels/Cargo.toml")), 0, "kernels/autotune/ is missing or stale entries");
}

#[test]
fn check_fails_on_a_stale_entry() {
    let f = Fixture::copy("offline", "check_fails_on_a_stale_entry");
    assert_eq!(check(&f.root.join("Cargo.toml")), 0, "the fixture's own entry is fresh");
    let kernel = f.root.join("cuda/scale.cu");
    let source = std::fs::read_to_string(&kernel).expect("read the kernel");
    std::fs::write(&kernel, source.replace("2.0f", "3.0f")).expect("change the kernel");
    assert_eq!(check(&f.root.join("Cargo.toml")), 1, "a changed kernel leaves a stale entry and a miss");
}

#[test]
fn check_errors_are_exit_code_2() {
    assert_eq!(check(&workspace().join("no/such/Cargo.toml")), 2);
}
