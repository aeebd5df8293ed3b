//! Seeded synthetic embeddings for demos, benchmarks and tests: i.i.d. Gaussian (the hard case
//! for ANN) and clustered data that looks like real item embeddings (topics of varying size).

use crate::vectors::Vectors;

/// xoshiro256** seeded through splitmix64: small, fast, reproducible across platforms.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the state from `seed` through splitmix64; equal seeds give equal streams on every
    /// platform.
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n × d` i.i.d. N(0, 1).
pub fn gaussian(n: usize, d: usize, seed: u64) -> Vectors {
    let mut r = Rng::new(seed);
    Vectors::new((0..n * d).map(|_| r.normal() as f32).collect(), d).expect("d > 0")
}

/// `n × d` points around `clusters` random centres with Zipf-like sizes and per-cluster spread,
/// plus the cluster of each point.
pub fn clustered(n: usize, d: usize, clusters: usize, seed: u64) -> (Vectors, Vec<usize>) {
    let mut r = Rng::new(seed);
    let clusters = clusters.max(1);
    let centres: Vec<f32> = (0..clusters * d).map(|_| r.normal() as f32).collect();
    let spread: Vec<f32> = (0..clusters)
        .map(|_| 0.25 + 0.5 * r.uniform() as f32)
        .collect();
    // Zipf(1) cluster popularity.
    let weights: Vec<f64> = (1..=clusters).map(|i| 1.0 / i as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cum = Vec::with_capacity(clusters);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cum.push(acc);
    }
    let mut data = Vec::with_capacity(n * d);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let u = r.uniform();
        let c = cum.partition_point(|&x| x < u).min(clusters - 1);
        labels.push(c);
        for j in 0..d {
            data.push(centres[c * d + j] + spread[c] * r.normal() as f32);
        }
    }
    (Vectors::new(data, d).expect("d > 0"), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_plausible() {
        assert_eq!(gaussian(10, 4, 1), gaussian(10, 4, 1));
        assert_ne!(gaussian(10, 4, 1), gaussian(10, 4, 2));
        let g = gaussian(20_000, 5, 3);
        let n = g.as_slice().len() as f64;
        let mean: f64 = g.as_slice().iter().map(|&x| x as f64).sum::<f64>() / n;
        let var: f64 = g
            .as_slice()
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
        let (c, labels) = clustered(1000, 8, 10, 4);
        assert_eq!(c.rows(), 1000);
        assert!(labels.iter().all(|&l| l < 10));
        // Zipf: the first cluster is the most popular.
        let first = labels.iter().filter(|&&l| l == 0).count();
        let last = labels.iter().filter(|&&l| l == 9).count();
        assert!(first > 2 * last, "{first} {last}");
    }
}
