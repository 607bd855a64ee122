use tuner_runtime::autotune;

#[autotune(
    kernel = "cuda/vector_add.cu", entry = "vector_add",
    space(block = [128, 256]),
    sizes(nn = [1024, 1 << 20]),
    bench(n = 1024, args = [out f32[n], n], grid = "ceil_div(n, block)", block = "block"),
)]
pub fn vector_add() {}

fn main() {}
