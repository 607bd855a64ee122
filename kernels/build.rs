fn main() {
    tuner_runtime::build::tune_crate().expect("autotune");
}
