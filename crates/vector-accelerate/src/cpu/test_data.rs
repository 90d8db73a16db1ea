//! Test data shared by the CPU kernels' unit tests.

/// Deterministic values in about [-4, 4).
pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

/// Values with non-finite, huge, tiny and tied entries sprinkled in.
pub(crate) fn awkward(n: usize, seed: u64) -> Vec<f32> {
    let mut v = values(n, seed);
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        3.3e38,
        -3.3e38,
        1e-40,
        0.5,
        -1.5,
        2.5,
    ];
    for (i, x) in v.iter_mut().enumerate() {
        if i % 7 == 3 {
            *x = special[(i / 7) % special.len()];
        }
    }
    v
}

/// Whether the vectorised kernels are missing (their tests then skip).
pub(crate) fn skip() -> bool {
    !crate::cpu::quant_simd::available()
}

/// The bit patterns of `v` (bit-for-bit comparisons).
pub(crate) fn bits_of(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
