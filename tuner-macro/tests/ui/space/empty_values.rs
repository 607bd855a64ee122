use tuner_runtime::autotune;

#[autotune(
    kernel = "cuda/vector_add.cu", entry = "vector_add",
    space(block = []),
    bench(n = 1024, args = [out f32[n], n], grid = "ceil_div(n, block)", block = "block"),
)]
pub fn vector_add() {}

fn main() {}
