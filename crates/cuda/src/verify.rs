//! Benchmark inputs and output verification, on host bytes.
//!
//! Inputs are deterministic: each buffer is filled from a ChaCha8 stream seeded with the run's seed and
//! the argument's index, so every worker process (and every later run) sees the same data, and no
//! candidate is ever timed on zeros (which can run faster than real data and hide unwritten outputs).
//! Floats are uniform in [-1, 1); integers in [-100, 100].
//!
//! Outputs are compared element by element with the reference config's: `|x - ref| <= atol + rtol *
//! |ref|` with the per-type tolerance from [`tolerance`](crate::worker::protocol::tolerance). Before every
//! checked launch the outputs are poisoned with all-ones bytes (NaN for every float type, -1 for `i32`),
//! so an element a candidate forgot to write shows up as a mismatch. The worst element (largest error
//! relative to its tolerance) is reported with its index and both values.
//!
//! Half-precision conversions are written out here (round to nearest even), so the crate needs no
//! `half` dependency for two functions.

use rand::{Rng, SeedableRng};

use tuner_spec::spec::ElemType;

/// Host bytes for `len` random elements of `elem`.
pub fn random_bytes(elem: ElemType, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(len * elem.size());
    for _ in 0..len {
        match elem {
            ElemType::F32 => out.extend_from_slice(&rng.gen_range(-1.0f32..1.0).to_le_bytes()),
            ElemType::F16 => out.extend_from_slice(&f32_to_f16(rng.gen_range(-1.0f32..1.0)).to_le_bytes()),
            ElemType::Bf16 => out.extend_from_slice(&f32_to_bf16(rng.gen_range(-1.0f32..1.0)).to_le_bytes()),
            ElemType::I32 => out.extend_from_slice(&rng.gen_range(-100i32..=100).to_le_bytes()),
        }
    }
    out
}

/// Element `i` of a little-endian buffer of `elem`, as f64.
pub fn element(elem: ElemType, bytes: &[u8], i: usize) -> f64 {
    match elem {
        ElemType::F32 => f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")) as f64,
        ElemType::I32 => i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")) as f64,
        ElemType::F16 => f16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])) as f64,
        ElemType::Bf16 => bf16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])) as f64,
    }
}

/// The result of comparing one output buffer with the reference's.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub max_abs_err: f64,
    /// Elements outside the tolerance.
    pub mismatches: usize,
    /// The element with the largest error relative to its tolerance: `(index, got, expected)`.
    pub worst: Option<(usize, f64, f64)>,
    /// That element's error over its tolerance (infinite for NaN).
    pub worst_ratio: f64,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.mismatches == 0
    }
}

/// Compares `got` with `reference` (same type and length) under `(atol, rtol)`; NaN never matches.
pub fn compare(elem: ElemType, got: &[u8], reference: &[u8], (atol, rtol): (f64, f64)) -> Comparison {
    let n = reference.len() / elem.size();
    let mut max_abs_err = 0.0f64;
    let mut mismatches = 0;
    let mut worst: Option<(f64, usize)> = None;
    for i in 0..n {
        let (x, r) = (element(elem, got, i), element(elem, reference, i));
        let err = (x - r).abs();
        let allowed = atol + rtol * r.abs();
        // NaN compares false everywhere: make it the worst possible error.
        let ratio = if err.is_nan() {
            f64::INFINITY
        } else if allowed > 0.0 {
            err / allowed
        } else if err > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        if !(err <= allowed) {
            mismatches += 1;
        }
        if !err.is_nan() {
            max_abs_err = max_abs_err.max(err);
        } else {
            max_abs_err = f64::INFINITY;
        }
        if ratio > 0.0 && worst.map_or(true, |(w, _)| ratio > w) {
            worst = Some((ratio, i));
        }
    }
    Comparison {
        max_abs_err,
        mismatches,
        worst: worst.map(|(_, i)| (i, element(elem, got, i), element(elem, reference, i))),
        worst_ratio: worst.map_or(0.0, |(r, _)| r),
    }
}

/// [`compare`] split over `threads` threads (outputs of tens of millions of elements are common).
pub fn compare_parallel(elem: ElemType, got: &[u8], reference: &[u8], tol: (f64, f64), threads: usize) -> Comparison {
    let n = reference.len() / elem.size();
    let per = n.div_ceil(threads.max(1)).max(1 << 16);
    let parts: Vec<(usize, Comparison)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|start| {
                let end = (start + per).min(n);
                let (g, r) =
                    (&got[start * elem.size()..end * elem.size()], &reference[start * elem.size()..end * elem.size()]);
                s.spawn(move || (start, compare(elem, g, r, tol)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("comparing bytes does not panic")).collect()
    });
    let mut all = Comparison { max_abs_err: 0.0, mismatches: 0, worst: None, worst_ratio: 0.0 };
    for (start, c) in parts {
        all.mismatches += c.mismatches;
        all.max_abs_err = all.max_abs_err.max(c.max_abs_err);
        if c.worst.is_some() && (all.worst.is_none() || c.worst_ratio > all.worst_ratio) {
            all.worst = c.worst.map(|(i, g, r)| (start + i, g, r));
            all.worst_ratio = c.worst_ratio;
        }
    }
    all
}

/// The first NaN in a float buffer, if any (a reference output must have none).
pub fn first_nan(elem: ElemType, bytes: &[u8]) -> Option<usize> {
    match elem {
        ElemType::I32 => None,
        _ => (0..bytes.len() / elem.size()).find(|&i| element(elem, bytes, i).is_nan()),
    }
}

/// IEEE binary16 from f32, rounding to nearest even.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut v = m >> shift;
        if rest > half || (rest == half && v & 1 == 1) {
            v += 1;
        }
        return sign | v as u16;
    }
    let mut v = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && v & 1 == 1) {
        v += 1;
    }
    sign | v as u16
}

pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// bfloat16 from f32, rounding to nearest even.
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    ((bits + round) >> 16) as u16
}

pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversions_round_trip() {
        for x in [0.0f32, 1.0, -2.5, 0.333_251_95, 65504.0, 6.1035156e-5, 5.9604645e-8] {
            assert_eq!(f16_to_f32(f32_to_f16(x)), x, "{x}");
        }
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert!(f16_to_f32(0xffff).is_nan(), "the poison pattern is NaN");
        assert_eq!(f32_to_f16(1.0 + 1.0 / 4096.0), f32_to_f16(1.0), "ties go to even");
        assert_eq!(bf16_to_f32(f32_to_bf16(-1.5)), -1.5);
        assert!(bf16_to_f32(0xffff).is_nan());
    }

    #[test]
    fn inputs_are_deterministic_and_not_zero() {
        let a = random_bytes(ElemType::F32, 1000, 7);
        assert_eq!(a, random_bytes(ElemType::F32, 1000, 7));
        assert_ne!(a, random_bytes(ElemType::F32, 1000, 8));
        assert!((0..1000).all(|i| element(ElemType::F32, &a, i).abs() < 1.0));
        assert!((0..1000).filter(|&i| element(ElemType::F32, &a, i) == 0.0).count() < 5);
        let h = random_bytes(ElemType::F16, 10, 1);
        assert_eq!(h.len(), 20);
    }

    #[test]
    fn comparison_reports_the_worst_element() {
        let r: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let g: Vec<u8> = [1.0f32, 2.0005, 3.5, f32::NAN].iter().flat_map(|x| x.to_le_bytes()).collect();
        let c = compare(ElemType::F32, &g, &r, (1e-4, 1e-3));
        assert_eq!(c.mismatches, 2, "3.5 and NaN");
        let (i, got, want) = c.worst.unwrap();
        assert_eq!(i, 3);
        assert!(got.is_nan());
        assert_eq!(want, 4.0);
        assert!(compare(ElemType::F32, &r, &r, (0.0, 0.0)).ok());
        let ints: Vec<u8> = [5i32, 6].iter().flat_map(|x| x.to_le_bytes()).collect();
        let other: Vec<u8> = [5i32, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        let c = compare(ElemType::I32, &other, &ints, (0.0, 0.0));
        assert_eq!(c.worst, Some((1, 7.0, 6.0)));
        assert_eq!(first_nan(ElemType::F32, &g), Some(3));
    }

    #[test]
    fn parallel_comparison_agrees_with_the_serial_one() {
        let n = 300_000;
        let r = random_bytes(ElemType::F32, n, 3);
        let mut g = r.clone();
        for (i, x) in [(10usize, 0.5f32), (250_000, 9.0), (123_456, 0.01)] {
            g[4 * i..4 * i + 4].copy_from_slice(&(element(ElemType::F32, &r, i) as f32 + x).to_le_bytes());
        }
        let serial = compare(ElemType::F32, &g, &r, (1e-4, 1e-3));
        let parallel = compare_parallel(ElemType::F32, &g, &r, (1e-4, 1e-3), 4);
        assert_eq!(serial, parallel);
        assert_eq!(parallel.worst.unwrap().0, 250_000);
    }
}
