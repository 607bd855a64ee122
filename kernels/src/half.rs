//! fp16 bit patterns on the host: the attention launcher takes fp16 buffers as `u16`, and callers (and
//! the CPU references in examples) convert with these rather than pulling in a crate for two functions.

/// IEEE binary16 from f32, rounding to nearest even; overflow gives infinity.
pub fn f2h(f: f32) -> u16 {
    let b = f.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    let man = b & 0x7f_ffff;
    if exp >= 31 {
        return sign | 0x7c00;
    }
    if exp <= 0 {
        if exp < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - exp) as u32;
        let half = m >> shift;
        let rest = m & ((1 << shift) - 1);
        let mid = 1 << (shift - 1);
        let round = (rest > mid || (rest == mid && half & 1 == 1)) as u32;
        return sign | (half + round) as u16;
    }
    let half = ((exp as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    let round = (rest > 0x1000 || (rest == 0x1000 && half & 1 == 1)) as u32;
    sign | (half + round) as u16
}

pub fn h2f(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            let v = man as f32 / 1024.0 * 2f32.powi(-14);
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_round_trips() {
        for f in [0.0f32, 1.0, -2.5, 0.333_251_95, 6.103_515_6e-5, 5.960_464_5e-8, 65504.0] {
            assert_eq!(h2f(f2h(f)), f, "{f}");
        }
        assert_eq!(f2h(1.0 + 1.0 / 2048.0), f2h(1.0), "a tie rounds to even");
        assert_eq!(f2h(1.0 + 3.0 / 2048.0), f2h(1.0 + 2.0 / 1024.0), "a tie rounds to even, upwards");
        assert_eq!(f2h(1e6), 0x7c00);
        assert_eq!(h2f(0x7c00), f32::INFINITY);
    }
}
