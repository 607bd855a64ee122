//! What the GPU examples share: their input data and the float64 attention reference.

/// `n` deterministic pseudo-random values in [-1, 1) (xorshift), the same for a seed in every example.
pub fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The attention examples' Q, K and V of `len` values each: fp16 bit patterns of seeds 5, 6 and 7.
pub fn attention_qkv(len: usize) -> [Vec<u16>; 3] {
    [5, 6, 7].map(|seed| data(len, seed).into_iter().map(autotune_kernels::half::f2h).collect())
}

/// The 64 `(slice, row)` pairs of `bh` slices of `seq` rows that the float64 reference samples.
#[allow(dead_code)] // run_tuned samples whole slices
pub fn attention_picks(bh: usize, seq: usize) -> Vec<(usize, usize)> {
    (0..64).map(|t| ((t * 7) % bh, (t * 977 + 13) % seq)).collect()
}

/// Float64 attention of the sampled `(slice, row)` pairs of fp16 `q`, `k`, `v` (`[slice][row][d]`, bit
/// patterns), `d` values per pair in order; with `causal`, row `i` attends to keys `0..=i` only.
pub fn attention_reference(
    [q, k, v]: [&[u16]; 3],
    picks: &[(usize, usize)],
    (seq, d): (usize, usize),
    causal: bool,
) -> Vec<f64> {
    use autotune_kernels::half::h2f;
    let hf = |x: u16| h2f(x) as f64;
    let scale = 1.0 / (d as f64).sqrt();
    let mut want = Vec::with_capacity(picks.len() * d);
    for &(s, i) in picks {
        let base = s * seq * d;
        let keys = if causal { i + 1 } else { seq };
        let scores: Vec<f64> = (0..keys)
            .map(|j| (0..d).map(|t| hf(q[base + i * d + t]) * hf(k[base + j * d + t])).sum::<f64>() * scale)
            .collect();
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        let w: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = w.iter().sum();
        for t in 0..d {
            want.push((0..keys).map(|j| w[j] * hf(v[base + j * d + t])).sum::<f64>() / sum);
        }
    }
    want
}

/// The largest absolute difference between the fp16 attention output `out` at the sampled pairs and the
/// reference `want`, and whether every element of `out` is finite (outputs start as NaN, so an element
/// never written shows).
pub fn attention_error(out: &[u16], picks: &[(usize, usize)], (seq, d): (usize, usize), want: &[f64]) -> (f64, bool) {
    use autotune_kernels::half::h2f;
    let got = picks.iter().flat_map(|&(s, i)| (0..d).map(move |t| h2f(out[(s * seq + i) * d + t]) as f64));
    let max_err = got.zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
    (max_err, out.iter().all(|x| h2f(*x).is_finite()))
}
