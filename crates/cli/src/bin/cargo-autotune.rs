//! `cargo-autotune`: see `tuner_cli`. Runs as `cargo autotune <cmd>` or `cargo-autotune <cmd>`.

fn main() {
    std::process::exit(tuner_cli::main_with_args(std::env::args_os()));
}
