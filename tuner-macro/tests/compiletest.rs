//! One UI case per message of `#[autotune]`, by topic in `tests/ui/<topic>/`: each `.rs` must fail to
//! compile with exactly the `.stderr` beside it (regenerate with `TRYBUILD=overwrite` and review the diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
