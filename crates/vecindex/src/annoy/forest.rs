//! An annoy forest in memory: the node array (read-only mmap of a file, or owned), validated once
//! so that the search can index it without further checks failing.

use super::layout::NodeLayout;
use crate::error::{Error, Result};
use crate::metric::Metric;
use std::path::Path;

/// The largest dimension a forest is opened with (the `d` parameter's own limit): node sizes
/// computed from it cannot overflow.
pub const MAX_DIM: usize = 1 << 20;

/// Where the node bytes live. Owned storage is a `Vec<u64>` so views of f32/u64 words are aligned.
enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u64>, usize),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v, len) => &bytemuck::cast_slice::<u64, u8>(v)[..*len],
        }
    }
}

/// A validated annoy forest.
pub struct AnnoyForest {
    storage: Storage,
    /// Node size and field offsets for the metric and dimension.
    pub layout: NodeLayout,
    /// Nodes in the file: the items, the tree nodes and the root copies at the end.
    pub n_nodes: usize,
    /// Number of items, as annoy's loader decides it (the roots' descendant count).
    pub n_items: usize,
    /// Root node indices, as annoy's loader finds them (last to first).
    pub roots: Vec<usize>,
}

impl std::fmt::Debug for AnnoyForest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnoyForest")
            .field("layout", &self.layout)
            .field("n_nodes", &self.n_nodes)
            .field("n_items", &self.n_items)
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl AnnoyForest {
    /// Maps `path` read-only and validates it as an annoy index of dimension `f` and `metric`
    /// (annoy files carry neither, so a wrong pair must be caught here, not by a crash later).
    pub fn open(path: &Path, f: usize, metric: Metric) -> Result<Self> {
        let src = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::format(
                &src,
                "size of file is zero: not an annoy index",
            ));
        }
        // SAFETY: a read-only private mapping of a file we opened; its contents are validated
        // below before any use. (As with any mmap, another process truncating the file while it
        // is mapped can fault the reader; annoy has the same property.)
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::validate(Storage::Mmap(map), f, metric, &src)
    }

    /// Validates an in-memory copy of an annoy file.
    pub fn from_bytes(bytes: &[u8], f: usize, metric: Metric, src: &str) -> Result<Self> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::validate(Storage::Owned(words, bytes.len()), f, metric, src)
    }

    /// Validates annoy file bytes held in u64 words (`len` bytes of them are the file).
    pub fn from_words(
        words: Vec<u64>,
        len: usize,
        f: usize,
        metric: Metric,
        src: &str,
    ) -> Result<Self> {
        if len > words.len() * 8 {
            return Err(Error::format(src, "byte length beyond the buffer"));
        }
        Self::validate(Storage::Owned(words, len), f, metric, src)
    }

    fn validate(storage: Storage, f: usize, metric: Metric, src: &str) -> Result<Self> {
        if f == 0 || f > MAX_DIM {
            return Err(Error::invalid(format!(
                "annoy dimension d must be between 1 and {MAX_DIM} (got {f})"
            )));
        }
        let layout = NodeLayout::new(metric, f)?;
        let bytes = storage.bytes();
        let wrong = |why: String| {
            Error::format(
                src,
                format!(
                    "{why}; is this an annoy index of metric {metric:?} and d = {f} (node size {} bytes)? \
                     Open it with the d and metric it was built with",
                    layout.size
                ),
            )
        };
        if bytes.is_empty() {
            return Err(Error::format(
                src,
                "size of file is zero: not an annoy index",
            ));
        }
        if !bytes.len().is_multiple_of(layout.size) {
            return Err(wrong(format!(
                "file size {} is not a multiple of the node size",
                bytes.len()
            )));
        }
        let n_nodes = bytes.len() / layout.size;
        let mut forest = AnnoyForest {
            storage,
            layout,
            n_nodes,
            n_items: 0,
            roots: Vec::new(),
        };
        // annoy's root scan (docs/file-formats.md), quirks included: it decides n_items and the roots.
        let mut m: i64 = -1;
        for i in (0..n_nodes).rev() {
            let k = forest.n_descendants(i) as i64;
            if m == -1 || k == m {
                forest.roots.push(i);
                m = k;
            } else {
                break;
            }
        }
        if forest.roots.len() > 1 {
            let (first, last) = (forest.roots[0], *forest.roots.last().expect("non-empty"));
            if forest.raw_child(first, 0) == forest.raw_child(last, 0) {
                forest.roots.pop();
            }
        }
        if m < 1 || m as usize > n_nodes {
            return Err(wrong(format!(
                "root n_descendants {m} is not an item count in 1..={n_nodes}"
            )));
        }
        forest.n_items = m as usize;
        let (n_items, k) = (forest.n_items, layout.k);
        // Every node: items are 0/1; leaf lists hold item ids; split children point to earlier
        // nodes (annoy allocates post-order), which also rules out cycles.
        for i in 0..n_nodes {
            let nd = forest.n_descendants(i);
            if nd < 0 {
                return Err(wrong(format!("node {i} has n_descendants {nd}")));
            }
            let nd = nd as usize;
            if i < n_items {
                if nd <= 1 {
                    continue; // an item (the search takes it as a candidate)
                }
                if !forest.roots.contains(&i) {
                    return Err(wrong(format!("item node {i} has n_descendants {nd}")));
                }
                // A root in an item's slot: the search reads it as a leaf or a split node, so
                // it is checked as one below (fuzzing found a file whose such root listed ids
                // beyond the file).
            }
            let is_root = forest.roots.contains(&i) || nd == n_items;
            let leaf_len = if nd <= k {
                Some(nd)
            } else if is_root && n_items <= k {
                Some(n_items)
            } else {
                None
            };
            match leaf_len {
                Some(len) => {
                    for j in 0..len.min(k) {
                        let c = forest.raw_child(i, j);
                        if c < 0 || c as usize >= n_items {
                            return Err(wrong(format!(
                                "leaf node {i} lists item {c}, outside [0, {n_items})"
                            )));
                        }
                    }
                }
                None => {
                    for j in 0..2 {
                        let c = forest.raw_child(i, j);
                        if c < 0 || c as usize >= i {
                            return Err(wrong(format!(
                                "split node {i} has child {c}, outside [0, {i})"
                            )));
                        }
                    }
                }
            }
        }
        Ok(forest)
    }

    #[inline]
    fn node(&self, i: usize) -> &[u8] {
        let s = self.layout.size;
        &self.storage.bytes()[i * s..(i + 1) * s]
    }

    #[inline]
    fn i32_at(&self, i: usize, off: usize) -> i32 {
        let b = &self.node(i)[off..off + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[inline]
    fn f32_at(&self, i: usize, off: usize) -> f32 {
        f32::from_bits(self.i32_at(i, off) as u32)
    }

    /// `n_descendants` of node `i`.
    #[inline]
    pub fn n_descendants(&self, i: usize) -> i32 {
        self.i32_at(i, 0)
    }

    /// Child / leaf-list slot `j` of node `i`, unchecked against ranges (validated at load).
    #[inline]
    pub fn raw_child(&self, i: usize, j: usize) -> i32 {
        self.i32_at(i, self.layout.children + 4 * j)
    }

    /// The float vector of node `i` (float metrics).
    #[inline]
    pub fn vector(&self, i: usize) -> &[f32] {
        let b = &self.node(i)[self.layout.v..];
        // Node sizes and vector offsets are multiples of 4 and the storage is page- or
        // 8-byte-aligned, so this cast cannot fail.
        bytemuck::cast_slice(b)
    }

    /// The packed bits of node `i` (hamming).
    #[inline]
    pub fn words(&self, i: usize) -> &[u64] {
        bytemuck::cast_slice(&self.node(i)[self.layout.v..])
    }

    /// Angular: the stored squared norm of item `i` (0 if not stored).
    #[inline]
    pub fn norm_field(&self, i: usize) -> f32 {
        self.f32_at(i, 4)
    }

    /// Euclidean/manhattan split offset `a`.
    #[inline]
    pub fn plane_offset(&self, i: usize) -> f32 {
        self.f32_at(i, 4)
    }

    /// Dot: the node's `dot_factor`.
    #[inline]
    pub fn dot_factor(&self, i: usize) -> f32 {
        self.f32_at(i, 12)
    }

    /// Starts loading node `i` into cache (a hint; see `kernels::prefetch`).
    #[inline]
    pub fn prefetch_node(&self, i: usize) {
        crate::kernels::prefetch(self.node(i));
    }

    /// The raw file bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.storage.bytes()
    }
}
