//! Portable kernels: eight independent accumulators so LLVM can vectorise them (SSE2 on x86-64,
//! NEON on aarch64) without fast-math.

use super::Kernels;

pub(super) const KERNELS: Kernels = Kernels {
    name: "scalar",
    dot,
    l2sq,
    scan_dot,
    scan_l2,
    norms,
    l2sq_x4,
    dot_x4,
    f16_encode: None,
    dot_x4_f16: None,
};

fn l2sq_x4(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    [l2sq(q, r[0]), l2sq(q, r[1]), l2sq(q, r[2]), l2sq(q, r[3])]
}

fn dot_x4(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    [dot(q, r[0]), dot(q, r[1]), dot(q, r[2]), dot(q, r[3])]
}

const LANES: usize = 8;

#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0.0;
    for (x, y) in ta.iter().zip(tb) {
        s += x * y;
    }
    s + acc.iter().sum::<f32>()
}

#[inline(always)]
pub(super) fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s = 0.0;
    for (x, y) in ta.iter().zip(tb) {
        s += (x - y) * (x - y);
    }
    s + acc.iter().sum::<f32>()
}

fn scan_dot(q: &[f32], data: &[f32], out: &mut [f32]) {
    let dim = q.len();
    for (o, row) in out.iter_mut().zip(data.chunks_exact(dim.max(1))) {
        *o = dot(q, row);
    }
}

fn scan_l2(q: &[f32], data: &[f32], out: &mut [f32]) {
    let dim = q.len();
    for (o, row) in out.iter_mut().zip(data.chunks_exact(dim.max(1))) {
        *o = l2sq(q, row);
    }
}

fn norms(data: &[f32], dim: usize, out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(data.chunks_exact(dim.max(1))) {
        *o = dot(row, row);
    }
}
