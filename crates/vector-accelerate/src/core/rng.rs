//! Seeded, reproducible randomness for initialisation and sampling: a
//! SplitMix64 stream, and counter-based draws (one per point, so parallel
//! sampling gives the same result on every backend and thread count).

/// One SplitMix64 step: a well-mixed 64-bit value of `z`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in `[0, 1)` for draw `i` of stream `stream` under `seed`.
pub(crate) fn uniform_at(seed: u64, stream: u64, i: u64) -> f64 {
    let h = mix(mix(seed ^ mix(stream)) ^ i);
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A sequential generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(mix(seed))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// `m` distinct indices of `0..n`, ascending (Floyd's algorithm).
pub(crate) fn sample_indices(n: usize, m: usize, seed: u64) -> Vec<usize> {
    let m = m.min(n);
    let mut rng = Rng::new(seed);
    let mut chosen = std::collections::HashSet::with_capacity(m);
    for j in n - m..n {
        let t = rng.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut v: Vec<usize> = chosen.into_iter().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_sorted_and_seeded() {
        let a = sample_indices(1000, 100, 5);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(*a.last().unwrap() < 1000);
        assert_eq!(a, sample_indices(1000, 100, 5));
        assert_ne!(a, sample_indices(1000, 100, 6));
        assert_eq!(sample_indices(10, 10, 1), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn uniform_draws_cover_the_unit_interval() {
        let v: Vec<f64> = (0..10_000).map(|i| uniform_at(1, 2, i)).collect();
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let mut r = Rng::new(3);
        let b: Vec<usize> = (0..1000).map(|_| r.below(7)).collect();
        assert!((0..7).all(|i| b.contains(&i)) && b.iter().all(|&x| x < 7));
    }
}
