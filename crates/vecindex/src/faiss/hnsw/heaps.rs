//! The two heaps whose exact moves decide faiss's graphs and searches when distances tie
//! (duplicate vectors, integer data): libstdc++'s `std::priority_queue`, which faiss's build
//! uses with a distance-only comparison, and faiss's `MinimaxHeap` of the search, a (key, id)
//! array heap. Both are ports of the moves, not just of the orders, because equal keys end up
//! wherever those moves leave them (docs/algorithms.md, "Ties").

use super::search::Cand;
use crate::metric::Metric;

/// `std::priority_queue<Cand>` as libstdc++ (GCC, the Linux faiss wheels) implements it, with
/// a comparison on keys only: `MIN` = faiss's `NodeDistFarther` (top = smallest key), else
/// `NodeDistCloser` (top = largest key).
#[derive(Debug, Clone, Default)]
pub(super) struct StdHeap<const MIN: bool> {
    v: Vec<Cand>,
}

impl<const MIN: bool> StdHeap<MIN> {
    pub(super) fn new() -> Self {
        StdHeap { v: Vec::new() }
    }

    /// The comparator `less(a, b)`: `a` sinks below `b`.
    #[inline]
    fn less(a: &Cand, b: &Cand) -> bool {
        if MIN {
            a.0 > b.0
        } else {
            a.0 < b.0
        }
    }

    pub(super) fn len(&self) -> usize {
        self.v.len()
    }

    pub(super) fn top(&self) -> Option<Cand> {
        self.v.first().copied()
    }

    /// `std::push_heap`: the hole rises while its parent is `less` than the new value.
    pub(super) fn push(&mut self, x: Cand) {
        self.v.push(x);
        let mut hole = self.v.len() - 1;
        while hole > 0 {
            let parent = (hole - 1) / 2;
            if !Self::less(&self.v[parent], &x) {
                break;
            }
            self.v[hole] = self.v[parent];
            hole = parent;
        }
        self.v[hole] = x;
    }

    /// `std::pop_heap` + `pop_back`: the last element is taken out, the hole at the root walks
    /// down to a leaf through the larger child (the right one unless it is `less` than the
    /// left), then the taken element rises from there.
    pub(super) fn pop(&mut self) -> Option<Cand> {
        let len = self.v.len();
        if len <= 1 {
            return self.v.pop();
        }
        let last = len - 1;
        let value = self.v[last];
        let top = self.v[0];
        self.v[last] = top;
        // __adjust_heap over the first `last` elements, hole at 0.
        let n = last;
        let mut hole = 0usize;
        let mut second = 0usize;
        while n >= 2 && second < (n - 1) / 2 {
            second = 2 * (second + 1);
            if Self::less(&self.v[second], &self.v[second - 1]) {
                second -= 1;
            }
            self.v[hole] = self.v[second];
            hole = second;
        }
        if n >= 2 && n.is_multiple_of(2) && second == (n - 2) / 2 {
            second = 2 * (second + 1);
            self.v[hole] = self.v[second - 1];
            hole = second - 1;
        }
        // __push_heap from the hole.
        while hole > 0 {
            let parent = (hole - 1) / 2;
            if !Self::less(&self.v[parent], &value) {
                break;
            }
            self.v[hole] = self.v[parent];
            hole = parent;
        }
        self.v[hole] = value;
        self.v.pop()
    }
}

/// faiss's `cmp2` on (key, id): `a` ranks above `b` in the max-heap of keys. Equal keys rank
/// by id: the higher id above for L2 (`CMax`), the lower for inner product (`CMin` over
/// similarities, whose ids compare the other way).
#[inline]
fn above(ka: f32, ia: i32, kb: f32, ib: i32, high_ids_above: bool) -> bool {
    ka > kb || (ka == kb && if high_ids_above { ia > ib } else { ia < ib })
}

/// faiss's MinimaxHeap: a max-heap of (key, id) with capacity `n` kept by faiss's own
/// `heap_push` / `heap_pop` (ties by id), a min-pop that leaves the popped entry in the array
/// (id -1), and a count of entries better than a threshold.
pub(super) struct MinimaxHeap {
    n: usize,
    ids: Vec<i32>,
    dis: Vec<f32>,
    /// `dis` with popped entries set to +inf, so the minimum search is a plain vector scan.
    live: Vec<f32>,
    pub(super) nvalid: usize,
    high_ids_above: bool,
}

impl MinimaxHeap {
    /// A heap of at most `n` entries; memory for `max_items` (no search holds more entries than
    /// the graph has nodes, so an efSearch far beyond n allocates only what can be used).
    /// `metric` decides how equal keys order (see [`above`]).
    pub(super) fn new(n: usize, max_items: usize, metric: Metric) -> Self {
        let cap = n.min(max_items);
        MinimaxHeap {
            n,
            ids: Vec::with_capacity(cap),
            dis: Vec::with_capacity(cap),
            live: Vec::with_capacity(cap),
            nvalid: 0,
            high_ids_above: !metric.higher_is_better(),
        }
    }

    fn set(&mut self, at: usize, from: usize) {
        self.ids[at] = self.ids[from];
        self.dis[at] = self.dis[from];
        self.live[at] = self.live[from];
    }

    /// faiss's `heap_pop` (0-based here): the last entry fills the root's place, sifted down
    /// through the child that ranks above the other (the right one on a full tie).
    fn heap_pop(&mut self) {
        let k = self.ids.len();
        let (val, id, live) = (self.dis[k - 1], self.ids[k - 1], self.live[k - 1]);
        let mut i = 0usize;
        loop {
            let i1 = 2 * i + 1;
            let i2 = i1 + 1;
            if i1 >= k {
                break;
            }
            let child = if i2 == k
                || above(
                    self.dis[i1],
                    self.ids[i1],
                    self.dis[i2],
                    self.ids[i2],
                    self.high_ids_above,
                ) {
                i1
            } else {
                i2
            };
            if above(
                val,
                id,
                self.dis[child],
                self.ids[child],
                self.high_ids_above,
            ) {
                break;
            }
            self.set(i, child);
            i = child;
        }
        self.ids[i] = id;
        self.dis[i] = val;
        self.live[i] = live;
        self.ids.pop();
        self.dis.pop();
        self.live.pop();
    }

    /// faiss's `heap_push`: the new entry rises while it ranks above its parent.
    fn heap_push(&mut self, id: i32, v: f32, live: f32) {
        self.ids.push(id);
        self.dis.push(v);
        self.live.push(live);
        let mut i = self.ids.len() - 1;
        while i > 0 {
            let f = (i - 1) / 2;
            if !above(v, id, self.dis[f], self.ids[f], self.high_ids_above) {
                break;
            }
            self.set(i, f);
            i = f;
        }
        self.ids[i] = id;
        self.dis[i] = v;
        self.live[i] = live;
    }

    /// faiss's `push`: into a full heap only when strictly better than its worst entry, which
    /// is popped first (its validity counted off).
    pub(super) fn push(&mut self, i: i32, v: f32) {
        if self.ids.len() == self.n {
            if v >= self.dis[0] {
                return;
            }
            if self.ids[0] != -1 {
                self.nvalid -= 1;
            }
            self.heap_pop();
        }
        self.heap_push(i, v, v);
        self.nvalid += 1;
    }

    /// The valid entry with the smallest key (the last one on ties, as faiss scans), invalidated.
    pub(super) fn pop_min(&mut self) -> Option<(i32, f32)> {
        let b = self.min_slot()?;
        let id = self.ids[b];
        self.ids[b] = -1;
        self.live[b] = f32::INFINITY;
        self.nvalid -= 1;
        Some((id, self.dis[b]))
    }

    /// The id [`Self::pop_min`] would return next, left in place.
    pub(super) fn peek_min(&self) -> Option<i32> {
        self.min_slot().map(|b| self.ids[b])
    }

    fn min_slot(&self) -> Option<usize> {
        if self.nvalid == 0 {
            return None;
        }
        // Lane-wise minimum (vectorises), then the last position holding it.
        let mut lanes = [f32::INFINITY; 8];
        let chunks = self.live.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                lanes[l] = if c[l] < lanes[l] { c[l] } else { lanes[l] };
            }
        }
        let mut m = lanes
            .iter()
            .copied()
            .fold(f32::INFINITY, |a, b| if b < a { b } else { a });
        for &v in rest {
            if v < m {
                m = v;
            }
        }
        // Valid entries can be +inf (NaN keys are stored as +inf): fall back to the last valid one.
        match self.live.iter().rposition(|&v| v == m && m < f32::INFINITY) {
            Some(b) => Some(b),
            None => self.ids.iter().rposition(|&id| id != -1),
        }
    }

    /// Entries (popped ones included) with a key strictly below `t`.
    pub(super) fn count_below(&self, t: f32) -> usize {
        self.dis.iter().filter(|&&d| d < t).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libstdc++'s pop order of equal elements pushed with ids 0..n (from its heap code).
    #[test]
    fn std_heap_ties_pop_in_libstdcxx_order() {
        for (n, want) in [
            (3, vec![0, 1, 2]),
            (4, vec![0, 2, 1, 3]),
            (5, vec![0, 2, 4, 1, 3]),
            (6, vec![0, 2, 5, 4, 1, 3]),
            (8, vec![0, 2, 6, 5, 7, 4, 1, 3]),
        ] {
            let mut h = StdHeap::<false>::new();
            for i in 0..n {
                h.push(Cand(1.0, i));
            }
            let got: Vec<i32> = std::iter::from_fn(|| h.pop()).map(|c| c.1).collect();
            assert_eq!(got, want, "n={n}");
        }
        // Distinct keys still pop in key order, both ways.
        let keys = [3.0f32, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0];
        let mut max = StdHeap::<false>::new();
        let mut min = StdHeap::<true>::new();
        for (i, &k) in keys.iter().enumerate() {
            max.push(Cand(k, i as i32));
            min.push(Cand(k, i as i32));
        }
        let down: Vec<f32> = std::iter::from_fn(|| max.pop()).map(|c| c.0).collect();
        let up: Vec<f32> = std::iter::from_fn(|| min.pop()).map(|c| c.0).collect();
        let mut sorted = keys.to_vec();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(up, sorted);
        sorted.reverse();
        assert_eq!(down, sorted);
    }
}
