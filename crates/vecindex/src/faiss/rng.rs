//! faiss's random numbers: `std::mt19937` streams as wrapped by `faiss::RandomGenerator`, and
//! `rand_perm`. Reproducing them exactly is what makes our k-means pick the same points as faiss.

/// MT19937 (the C++ `std::mt19937` stream).
#[derive(Clone)]
pub struct Mt19937 {
    mt: Box<[u32; 624]>,
    index: usize,
}

impl Mt19937 {
    /// Seeds the generator as `std::mt19937(seed)` does.
    pub fn new(seed: u32) -> Self {
        let mut mt = Box::new([0u32; 624]);
        mt[0] = seed;
        for i in 1..624 {
            let prev = mt[i - 1];
            mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7fff_ffff);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.mt[i] = v;
        }
        self.index = 0;
    }

    /// The next 32-bit output, as `std::mt19937` returns it.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// `faiss::RandomGenerator`.
#[derive(Clone)]
pub struct FaissRng(Mt19937);

impl std::fmt::Debug for FaissRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaissRng")
    }
}

impl FaissRng {
    /// Seeds with the low 32 bits of `seed`, as `faiss::RandomGenerator` does.
    pub fn new(seed: i64) -> Self {
        FaissRng(Mt19937::new(seed as u32))
    }

    /// `mt() % max`.
    pub fn rand_int(&mut self, max: u32) -> u32 {
        self.0.next_u32() % max
    }

    /// `float(mt()) / float(4294967295)`, in f32.
    pub fn rand_float(&mut self) -> f32 {
        self.0.next_u32() as f32 / 4_294_967_295.0f32
    }
}

/// `faiss::rand_perm`: forward Fisher–Yates with `RandomGenerator(seed)`.
pub fn rand_perm(n: usize, seed: i64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = FaissRng::new(seed);
    for i in 0..n.saturating_sub(1) {
        let i2 = i + rng.rand_int((n - i) as u32) as usize;
        perm.swap(i, i2);
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_reference_values() {
        // The C++ standard requires the 10000th output of a default-seeded mt19937 to be 4123659995.
        let mut m = Mt19937::new(5489);
        assert_eq!(m.next_u32(), 3_499_211_612);
        for _ in 1..9999 {
            m.next_u32();
        }
        assert_eq!(m.next_u32(), 4_123_659_995);
    }

    #[test]
    fn perm_is_a_permutation() {
        let mut p = rand_perm(1000, 1234);
        assert_ne!(p[..10], (0..10).collect::<Vec<_>>()[..]);
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
