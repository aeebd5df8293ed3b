//! A bounded "keep the k best" heap with FAISS's tie rules.
//!
//! Keys are "smaller is better" (similarities are negated by the caller, which is exact in f32).
//! A candidate enters only if its key is *strictly* smaller than the worst key kept, so among equal
//! keys the ones offered first win the last slots; NaN never enters, and neither does -inf (an
//! overflowed similarity from a corrupted or extreme index must not outrank finite scores).
//! Kept items are ordered by key, then by id ascending (`TieOrder::LowIdFirst`, FAISS's L2 order) or descending
//! (`TieOrder::HighIdFirst`, FAISS's inner-product order).

/// How equal keys are ordered among the kept items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieOrder {
    /// Equal keys: lower id first (FAISS L2).
    LowIdFirst,
    /// Equal keys: higher id first (FAISS inner product).
    HighIdFirst,
}

/// Keeps the `k` smallest keys seen.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    tie: TieOrder,
    /// Binary max-heap by "worse": the root is the item that would be evicted next.
    heap: Vec<(f32, i64)>,
}

impl TopK {
    /// An empty heap for the `k` best.
    pub fn new(k: usize, tie: TieOrder) -> Self {
        TopK {
            k,
            tie,
            heap: Vec::with_capacity(k.min(1 << 16)),
        }
    }

    /// Number of items kept so far.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// A candidate must have a key strictly below this to enter.
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap[0].0
        }
    }

    #[inline(always)]
    fn worse(&self, a: (f32, i64), b: (f32, i64)) -> bool {
        a.0 > b.0
            || (a.0 == b.0
                && match self.tie {
                    TieOrder::LowIdFirst => a.1 > b.1,
                    TieOrder::HighIdFirst => a.1 < b.1,
                })
    }

    /// Offers a candidate; it is kept if its key beats the threshold.
    #[inline]
    pub fn push(&mut self, key: f32, id: i64) {
        if key < self.threshold() {
            self.insert(key, id);
        }
    }

    #[inline(never)]
    fn insert(&mut self, key: f32, id: i64) {
        if self.k == 0 || key == f32::NEG_INFINITY {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push((key, id));
            // Sift up.
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if self.worse(self.heap[i], self.heap[p]) {
                    self.heap.swap(i, p);
                    i = p;
                } else {
                    break;
                }
            }
        } else {
            self.heap[0] = (key, id);
            // Sift down.
            let n = self.heap.len();
            let mut i = 0;
            loop {
                let l = 2 * i + 1;
                if l >= n {
                    break;
                }
                let r = l + 1;
                let c = if r < n && self.worse(self.heap[r], self.heap[l]) {
                    r
                } else {
                    l
                };
                if self.worse(self.heap[c], self.heap[i]) {
                    self.heap.swap(c, i);
                    i = c;
                } else {
                    break;
                }
            }
        }
    }

    /// Offers every item of another heap, best first (used to merge partial results in a fixed order).
    pub fn merge(&mut self, other: TopK) {
        for (key, id) in other.into_sorted() {
            self.push(key, id);
        }
    }

    /// The kept items, best first.
    pub fn into_sorted(mut self) -> Vec<(f32, i64)> {
        let tie = self.tie;
        self.heap.sort_unstable_by(|a, b| {
            a.0.total_cmp(&b.0).then(match tie {
                TieOrder::LowIdFirst => a.1.cmp(&b.1),
                TieOrder::HighIdFirst => b.1.cmp(&a.1),
            })
        });
        self.heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_k_smallest_sorted() {
        let keys = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0];
        let mut h = TopK::new(3, TieOrder::LowIdFirst);
        for (i, k) in keys.iter().enumerate() {
            h.push(*k, i as i64);
        }
        assert_eq!(h.into_sorted(), vec![(1.0, 1), (2.0, 5), (3.0, 3)]);
    }

    #[test]
    fn non_finite_keys_never_rank() {
        let mut h = TopK::new(3, TieOrder::LowIdFirst);
        for (i, k) in [f32::NAN, 4.0, f32::NEG_INFINITY, 2.0, f32::INFINITY]
            .iter()
            .enumerate()
        {
            h.push(*k, i as i64);
        }
        assert_eq!(h.into_sorted(), vec![(2.0, 3), (4.0, 1)]);
    }

    #[test]
    fn ties_follow_faiss_rules() {
        // Five equal keys, k = 3: the first three offered enter (strict entry); L2 lists them by
        // ascending id, IP by descending id (faiss: [0,1,2] and [2,1,0]).
        let mut l2 = TopK::new(3, TieOrder::LowIdFirst);
        let mut ip = TopK::new(3, TieOrder::HighIdFirst);
        for i in 0..5 {
            l2.push(1.0, i);
            ip.push(-1.0, i);
        }
        let ids = |v: Vec<(f32, i64)>| v.into_iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(ids(l2.into_sorted()), vec![0, 1, 2]);
        assert_eq!(ids(ip.into_sorted()), vec![2, 1, 0]);
    }

    #[test]
    fn nan_and_infinity_never_enter() {
        let mut h = TopK::new(2, TieOrder::LowIdFirst);
        h.push(f32::NAN, 0);
        h.push(f32::INFINITY, 1);
        h.push(1.0, 2);
        assert_eq!(h.into_sorted(), vec![(1.0, 2)]);
    }

    #[test]
    fn matches_sort_on_random_input() {
        let mut s = 1u64;
        for k in [1usize, 2, 10, 100] {
            let mut h = TopK::new(k, TieOrder::LowIdFirst);
            let mut all = vec![];
            for i in 0..1000i64 {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                let key = (s >> 33) as f32;
                h.push(key, i);
                all.push((key, i));
            }
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all.truncate(k);
            assert_eq!(h.into_sorted(), all);
        }
    }
}
