//! Planted failures for `scripts/device-e2e.sh` (see `planted.cu`): mode 0 is correct, 1 writes a
//! wrong element, 2 never finishes, 3 writes to an illegal address. A run over this space must finish
//! with the mode-0 configs valid and every other config invalid with the right reason.

#[autotune(
    kernel = "e2e/planted.cu", entry = "planted",
    space(block = [128, 256, 512], mode = [0, 1, 2, 3]),
    default(block = 256, mode = 0),
    bench(n = 1 << 20, args = [in f32[n], out f32[n], n], grid = "ceil_div(n, block)", block = "block"),
)]
pub fn planted() {}
