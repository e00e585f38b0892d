//! A small seeded random number generator and the distributions the engine samples from.
//!
//! Written here rather than pulled from `rand` so that the engine keeps no dependency beyond
//! serde and toml, and so that a seed gives the same stream on every platform, WebAssembly too.

/// xoshiro256** seeded through SplitMix64 (Blackman & Vigna).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn seeded(seed: u64) -> Self {
        // SplitMix64 spreads even neighbouring seeds over the whole state, which must never be
        // all zero for xoshiro.
        let mut mixer = seed;
        let mut next = || {
            mixer = mixer.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = mixer;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            state: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..bound`; `bound` must be positive.
    pub fn below(&mut self, bound: usize) -> usize {
        // Multiply-high (Lemire) avoids the bias of a modulo without a rejection loop; the
        // remaining bias is below 2^-64 · bound, far under anything a simulation can see.
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// A standard normal draw (Marsaglia's polar method).
    pub fn standard_normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }

    /// A Gamma(shape, 1) draw by Marsaglia & Tsang (2000); `shape` must be positive.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            // Boost: Gamma(a) = Gamma(a + 1) · U^(1/a), since the squeeze needs a ≥ 1.
            let boost = self.uniform().powf(1.0 / shape);
            return self.gamma(shape + 1.0) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.standard_normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// A Beta(a, b) draw as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); both must be positive.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y > 0.0 {
            x / (x + y)
        } else {
            // Both draws underflow only for tiny shapes; the mean is the honest fallback.
            a / (a + b)
        }
    }

    /// An index drawn with probability proportional to `weights` (non-negative, not all zero).
    pub fn pick_weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut target = self.uniform() * total;
        for (index, weight) in weights.iter().enumerate() {
            if target < *weight {
                return index;
            }
            target -= weight;
        }
        // Rounding can leave `target` a hair above the last weight: take the last positive one.
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }

    /// Shuffles `items` uniformly (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_variance(draws: &[f64]) -> (f64, f64) {
        let n = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let variance = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, variance)
    }

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_does_not() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::seeded(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::seeded(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..5)
            .scan(Rng::seeded(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn gamma_draws_have_the_right_mean_and_variance_for_small_and_large_shapes() {
        let mut rng = Rng::seeded(1);
        for shape in [0.3, 1.0, 4.5] {
            let draws: Vec<f64> = (0..40_000).map(|_| rng.gamma(shape)).collect();
            let (mean, variance) = mean_and_variance(&draws);
            assert!(
                (mean - shape).abs() < 0.05 * shape.max(1.0),
                "shape {shape}: mean {mean}"
            );
            assert!(
                (variance - shape).abs() < 0.1 * shape.max(1.0),
                "shape {shape}: var {variance}"
            );
        }
    }

    #[test]
    fn beta_draws_have_the_right_mean_and_variance() {
        let mut rng = Rng::seeded(2);
        let (a, b) = (2.0, 5.0);
        let draws: Vec<f64> = (0..40_000).map(|_| rng.beta(a, b)).collect();
        let (mean, variance) = mean_and_variance(&draws);
        let expected_variance = a * b / ((a + b).powi(2) * (a + b + 1.0));
        assert!((mean - a / (a + b)).abs() < 0.005, "mean {mean}");
        assert!(
            (variance - expected_variance).abs() < 0.002,
            "variance {variance}"
        );
        assert!(draws.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn weighted_picks_follow_the_weights_and_never_pick_a_zero_weight() {
        let mut rng = Rng::seeded(3);
        let weights = [1.0, 0.0, 3.0];
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[rng.pick_weighted(&weights)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.02, "share {share}");
    }

    #[test]
    fn shuffling_keeps_every_item() {
        let mut rng = Rng::seeded(4);
        let mut items: Vec<usize> = (0..50).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
