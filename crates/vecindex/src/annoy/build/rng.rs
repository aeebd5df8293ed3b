//! annoy's Kiss64 random generator, its default seed, and the division-free remainder
//! (`Modulus`) two-means uses to draw sample indices.

/// annoy's Kiss64 generator.
#[derive(Debug, Clone)]
pub struct Kiss64 {
    x: u64,
    y: u64,
    z: u64,
    c: u64,
}

/// annoy's default seed.
pub const DEFAULT_SEED: u64 = 1_234_567_890_987_654_321;

impl Kiss64 {
    /// A generator in annoy's initial state with `seed` as its first word: equal seeds give annoy's
    /// stream.
    pub fn new(seed: u64) -> Self {
        Kiss64 {
            x: seed,
            y: 362_436_362_436_362_436,
            z: 1_066_149_217_761_810,
            c: 123_456_123_456_123_456,
        }
    }

    /// The next 64-bit output, as annoy's `kiss()`.
    pub fn next_u64(&mut self) -> u64 {
        self.z = 6_906_969_069u64
            .wrapping_mul(self.z)
            .wrapping_add(1_234_567);
        self.y ^= self.y << 13;
        self.y ^= self.y >> 17;
        self.y ^= self.y << 43;
        let t = (self.x << 58).wrapping_add(self.c);
        self.c = self.x >> 6;
        self.x = self.x.wrapping_add(t);
        self.c = self.c.wrapping_add((self.x < t) as u64);
        self.x.wrapping_add(self.y).wrapping_add(self.z)
    }

    /// A value in `0..n` drawn as annoy does (`kiss() % n`); panics if `n` is 0.
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A coin flip: the lowest bit of the next output.
    pub fn flip(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// `a % d` for a fixed divisor `d` > 0 without a division instruction (~40 cycles for u64, and
/// two-means draws 200 indices per node): with m = ⌊(2⁶⁴−1)/d⌋ the quotient estimate
/// ⌊a·m/2⁶⁴⌋ is at most 2 below ⌊a/d⌋, so at most two subtractions finish the exact remainder.
#[derive(Clone, Copy)]
pub(super) struct Modulus {
    d: u64,
    m: u64,
}

impl Modulus {
    pub(super) fn new(d: usize) -> Self {
        let d = d.max(1) as u64;
        Modulus { d, m: u64::MAX / d }
    }

    #[inline]
    pub(super) fn reduce(self, a: u64) -> usize {
        let q = ((a as u128 * self.m as u128) >> 64) as u64;
        let mut r = a - q * self.d;
        if r >= self.d {
            r -= self.d;
        }
        if r >= self.d {
            r -= self.d;
        }
        r as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kiss64_known_answers() {
        let mut r = Kiss64::new(DEFAULT_SEED);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [
                8932985056925012148,
                5710300428094272059,
                18342510866933518593
            ]
        );
        let mut r = Kiss64::new(42);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [
                5680804532875375661,
                421217147685971266,
                15020224898898924438
            ]
        );
        let mut r = Kiss64::new(42);
        assert_eq!([r.index(100), r.index(100), r.index(100)], [61, 66, 38]);
    }

    #[test]
    fn modulus_equals_the_remainder_operator() {
        let mut r = Kiss64::new(9);
        let mut divisors: Vec<usize> = vec![1, 2, 3, 7, 64, 100, 1000, 65_537, u32::MAX as usize];
        divisors.extend((0..200).map(|_| 1 + (r.next_u64() >> (r.next_u64() % 64)) as usize));
        for d in divisors {
            let m = Modulus::new(d);
            let mut xs: Vec<u64> = vec![0, 1, u64::MAX, u64::MAX - 1, d as u64, d as u64 - 1];
            xs.extend((0..2000).map(|_| r.next_u64()));
            xs.extend((0..50).map(|k| u64::MAX - k * (d as u64)));
            for a in xs {
                assert_eq!(m.reduce(a), (a % d as u64) as usize, "{a} % {d}");
            }
        }
    }
}
