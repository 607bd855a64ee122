// A valid attribute in a crate whose build.rs does not call `tune_crate()`.
use tuner_runtime::autotune;

#[autotune(
    kernel = "cuda/vector_add.cu", entry = "vector_add",
    space(block = [64, 128]),
    bench(n = 1024, args = [out f32[n], n], grid = "ceil_div(n, block)", block = "block"),
)]
pub fn vector_add() {}

fn main() {
    vector_add();
}
