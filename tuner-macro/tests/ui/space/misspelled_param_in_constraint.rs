use tuner_runtime::autotune;

#[autotune(
    kernel = "cuda/vector_add.cu", entry = "vector_add",
    space(block = [64, 128], items = [1, 2]),
    constraint = "blok * items <= 256",
    bench(n = 1024, args = [out f32[n], n], grid = "ceil_div(n, block)", block = "block"),
)]
pub fn vector_add() -> u32 {
    // The body uses TUNED; the fallback keeps that from adding errors of its own.
    TUNED.block
}

fn main() {
    vector_add();
}
