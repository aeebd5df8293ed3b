//! Hamming distance, annoy's `hamming`: each component is one bit (set when it is > 0.5), and
//! the distance is the number of differing bits, smaller first.

/// annoy's packing: component j becomes bit j % 64 of word j / 64 when it is > 0.5. `words`
/// holds at least ceil(len / 64) words.
pub fn pack_bits(row: &[f32], words: &mut [u64]) {
    words.iter_mut().for_each(|w| *w = 0);
    for (j, &x) in row.iter().enumerate() {
        if x > 0.5 {
            words[j / 64] |= 1u64 << (j % 64);
        }
    }
}

/// Differing bits of two packed rows.
#[inline]
pub fn differing_bits(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Hamming distance of two float rows, each component read as one bit.
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .filter(|(x, y)| (**x > 0.5) != (**y > 0.5))
        .count() as f32
}
