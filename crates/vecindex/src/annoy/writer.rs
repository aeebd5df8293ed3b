//! Lays out a built forest as annoy 1.17.3 file bytes (docs/file-formats.md).

use super::build::{BuildNode, Items, Ref};
use crate::metric::Metric;
use rayon::prelude::*;

fn put_i32(b: &mut [u8], off: usize, v: i32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Copies f32 values into little-endian file bytes (`out.len() == 4 * v.len()`).
fn put_f32s(out: &mut [u8], v: &[f32]) {
    if cfg!(target_endian = "little") {
        out.copy_from_slice(bytemuck::cast_slice(v));
    } else {
        for (b, x) in out.chunks_exact_mut(4).zip(v) {
            b.copy_from_slice(&x.to_le_bytes());
        }
    }
}

/// Items, then every tree's nodes in order (children before parents), then a copy of each root.
/// Returns the bytes in u64 words (aligned, so the forest can use them without a copy) and
/// the byte length.
/// The item nodes are written by up to `threads` threads (the build's thread count). `buffer`
/// is reused for the bytes (its contents are discarded).
pub fn write(
    items: &Items<'_>,
    trees: &[Vec<BuildNode>],
    threads: usize,
    buffer: Vec<u64>,
) -> (Vec<u64>, usize) {
    let l = items.layout;
    let n_items = items.n_items;
    let tree_nodes: usize = trees.iter().map(Vec::len).sum();
    let n_nodes = n_items + tree_nodes + trees.len();
    let len = n_nodes * l.size;
    let mut words = buffer;
    words.clear();
    // Growing a large allocation remaps it: the pages it had stay, only the rest is new.
    words.reserve_exact(len.div_ceil(8));
    words.resize(len.div_ceil(8), 0);
    let out = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len];
    let per_thread = n_items.div_ceil(threads.max(1)).max(1);
    out[..n_items * l.size]
        .par_chunks_mut(per_thread * l.size)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (r, b) in chunk.chunks_exact_mut(l.size).enumerate() {
                write_item(items, c * per_thread + r, b);
            }
        });
    let mut base = n_items;
    let mut roots = Vec::with_capacity(trees.len());
    for nodes in trees {
        let global = |r: Ref| match r {
            Ref::Item(i) => i,
            Ref::Local(j) => (base + j) as i32,
        };
        for (j, node) in nodes.iter().enumerate() {
            let at = base + j;
            let b = &mut out[at * l.size..(at + 1) * l.size];
            match node {
                BuildNode::Leaf { n_descendants, ids } => {
                    put_i32(b, 0, *n_descendants);
                    for (s, id) in ids.iter().enumerate() {
                        put_i32(b, l.children + 4 * s, *id);
                    }
                }
                BuildNode::Split {
                    n_descendants,
                    children,
                    plane,
                    a,
                    dot_factor,
                    bit,
                } => {
                    put_i32(b, 0, *n_descendants);
                    put_i32(b, l.children, global(children[0]));
                    put_i32(b, l.children + 4, global(children[1]));
                    match l.metric {
                        Metric::Euclidean | Metric::Manhattan => put_f32(b, 4, *a),
                        Metric::Dot => put_f32(b, 12, *dot_factor),
                        _ => {}
                    }
                    if l.metric == Metric::Hamming {
                        b[l.v..l.v + 8].copy_from_slice(&bit.to_le_bytes());
                    } else {
                        put_f32s(&mut b[l.v..l.v + 4 * l.f], plane);
                    }
                }
            }
        }
        roots.push(base + nodes.len() - 1);
        base += nodes.len();
    }
    for (t, &r) in roots.iter().enumerate() {
        let dst = n_items + tree_nodes + t;
        let (src, dst) = (r * l.size, dst * l.size);
        out.copy_within(src..src + l.size, dst);
    }
    (words, len)
}

/// Item node `i` into its bytes `b`.
fn write_item(items: &Items<'_>, i: usize, b: &mut [u8]) {
    let l = items.layout;
    if l.metric == Metric::Dot {
        put_f32(b, 12, items.dot_factors[i]);
    }
    put_i32(b, 0, 1);
    match l.metric {
        Metric::Angular => put_f32(b, 4, items.norms[i]),
        Metric::Hamming => {
            for (w, word) in items.bits[i * l.words..(i + 1) * l.words]
                .iter()
                .enumerate()
            {
                b[l.v + 8 * w..l.v + 8 * w + 8].copy_from_slice(&word.to_le_bytes());
            }
            return;
        }
        _ => {}
    }
    put_f32s(&mut b[l.v..l.v + 4 * l.f], &items.v[i * l.f..(i + 1) * l.f]);
}
