//! faiss's `ScalarQuantizer` for `QT_8bit` and `QT_fp16`: range training, encoding and
//! reconstruction with faiss 1.15.1's exact f32 arithmetic (docs/file-formats.md, "Scalar
//! quantizer"), so codes and reconstructions are faiss's byte for byte.

use crate::error::{Error, Result};
use crate::kernels::faiss_order::{f32_to_half, half_to_f32};

/// The code types we implement (faiss's `QuantizerType` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// `QT_8bit` (factory `SQ8`): one byte per component, per-dimension min/max range.
    Sq8,
    /// `QT_fp16` (factory `SQfp16`): IEEE half floats, nothing to train.
    Fp16,
}

impl QType {
    /// faiss's enum value, as stored in files.
    pub fn code(self) -> i32 {
        match self {
            QType::Sq8 => 0,
            QType::Fp16 => 4,
        }
    }

    /// From faiss's enum value; the code types we do not implement are `Unsupported`.
    pub fn from_code(code: i32) -> Result<QType> {
        match code {
            0 => Ok(QType::Sq8),
            4 => Ok(QType::Fp16),
            1..=3 | 5..=26 => Err(Error::Unsupported(format!(
                "ScalarQuantizer qtype {code} ({}) is not implemented; supported: 0 (QT_8bit, \
                 SQ8), 4 (QT_fp16, SQfp16)",
                QTYPE_NAMES
                    .get(code as usize)
                    .copied()
                    .unwrap_or("a newer faiss type")
            ))),
            _ => Err(Error::invalid(format!(
                "invalid ScalarQuantizer qtype {code} (faiss knows 0..=26)"
            ))),
        }
    }

    /// The factory token (`SQ8`, `SQfp16`).
    pub fn token(self) -> &'static str {
        match self {
            QType::Sq8 => "SQ8",
            QType::Fp16 => "SQfp16",
        }
    }

    /// Bytes per vector of dimension `d`.
    pub fn code_size(self, d: usize) -> usize {
        match self {
            QType::Sq8 => d,
            QType::Fp16 => 2 * d,
        }
    }

    /// Length of the `trained` range vector for dimension `d` (vmin then vdiff per dimension).
    pub fn trained_len(self, d: usize) -> usize {
        match self {
            QType::Sq8 => 2 * d,
            QType::Fp16 => 0,
        }
    }

    /// True when the quantizer needs no training (faiss marks such indexes trained at once).
    pub fn trained_at_construction(self) -> bool {
        self == QType::Fp16
    }
}

/// faiss's names of the qtypes 0..=8, for messages.
const QTYPE_NAMES: [&str; 9] = [
    "QT_8bit",
    "QT_4bit",
    "QT_8bit_uniform",
    "QT_4bit_uniform",
    "QT_fp16",
    "QT_8bit_direct",
    "QT_6bit",
    "QT_bf16",
    "QT_8bit_direct_signed",
];

/// A scalar quantizer: the code type, the dimension and (SQ8) the trained ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarQuantizer {
    /// The code type.
    pub qtype: QType,
    /// Values per vector.
    pub d: usize,
    /// faiss's `rangestat` (0 = min/max); stored and written back, training uses min/max.
    pub rangestat: i32,
    /// faiss's `rangestat_arg`: min/max training widens the range by this fraction each side.
    pub rangestat_arg: f32,
    /// SQ8: `vmin[d]` then `vdiff[d]`; empty until trained, and for fp16.
    pub trained: Vec<f32>,
}

impl ScalarQuantizer {
    /// An untrained quantizer (fp16 needs no training).
    pub fn new(qtype: QType, d: usize) -> Self {
        ScalarQuantizer {
            qtype,
            d,
            rangestat: 0,
            rangestat_arg: 0.0,
            trained: Vec::new(),
        }
    }

    /// Bytes per vector.
    pub fn code_size(&self) -> usize {
        self.qtype.code_size(self.d)
    }

    /// True once the quantizer can encode.
    pub fn is_trained(&self) -> bool {
        self.trained.len() == self.qtype.trained_len(self.d) && self.d > 0
    }

    /// faiss's `RS_minmax` training over row-major `x` (at least one row): per dimension the
    /// min and max in f32 starting from row 0 with strict updates, widened by
    /// `rangestat_arg` × the width on each side; `trained = [vmin.., vdiff..]`.
    pub fn train(&mut self, x: &[f32]) {
        let d = self.d;
        if self.qtype != QType::Sq8 || x.len() < d || d == 0 {
            return;
        }
        let mut vmin = x[..d].to_vec();
        let mut vmax = x[..d].to_vec();
        for row in x.chunks_exact(d).skip(1) {
            for j in 0..d {
                if row[j] < vmin[j] {
                    vmin[j] = row[j];
                }
                if row[j] > vmax[j] {
                    vmax[j] = row[j];
                }
            }
        }
        let mut trained = vec![0.0f32; 2 * d];
        for j in 0..d {
            let vexp = (vmax[j] - vmin[j]) * self.rangestat_arg;
            let lo = vmin[j] - vexp;
            let hi = vmax[j] + vexp;
            trained[j] = lo;
            trained[d + j] = hi - lo;
        }
        self.trained = trained;
    }

    /// Encodes one row of `d` values into `code` (`code_size` bytes). Trained quantizer only.
    pub fn encode(&self, x: &[f32], code: &mut [u8]) {
        match self.qtype {
            QType::Sq8 => {
                let (vmin, vdiff) = self.trained.split_at(self.d);
                for j in 0..self.d {
                    let xi = if vdiff[j] != 0.0 {
                        (x[j] - vmin[j]) / vdiff[j]
                    } else {
                        0.0
                    };
                    // A NaN stays NaN through the clamp and converts to 0, as on x86.
                    code[j] = (255.0f32 * xi.clamp(0.0, 1.0)) as i32 as u8;
                }
            }
            QType::Fp16 => {
                for (j, &v) in x.iter().enumerate().take(self.d) {
                    code[2 * j..2 * j + 2].copy_from_slice(&f32_to_half(v).to_le_bytes());
                }
            }
        }
    }

    /// Encodes row-major rows into `codes` (`code_size` bytes per row), in parallel.
    pub fn encode_into(&self, x: &[f32], codes: &mut [u8]) {
        use rayon::prelude::*;
        let cs = self.code_size();
        codes
            .par_chunks_mut(cs.max(1))
            .zip(x.par_chunks(self.d.max(1)))
            .for_each(|(c, row)| self.encode(row, c));
    }

    /// faiss's reconstruction (`sa_decode`): SQ8 maps code c to the bucket centre
    /// `vmin + ((c + 0.5) / 255) · vdiff`, fused when d is a multiple of 8 (faiss's SIMD unit);
    /// fp16 converts exactly.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        match self.qtype {
            QType::Sq8 => {
                let (vmin, vdiff) = self.trained.split_at(self.d);
                let fused = self.d.is_multiple_of(8);
                for j in 0..self.d {
                    let u = (code[j] as f32 + 0.5) / 255.0;
                    out[j] = if fused {
                        u.mul_add(vdiff[j], vmin[j])
                    } else {
                        vmin[j] + u * vdiff[j]
                    };
                }
            }
            QType::Fp16 => {
                for j in 0..self.d {
                    out[j] = half_to_f32(u16::from_le_bytes([code[2 * j], code[2 * j + 1]]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sq8_trains_the_range_and_truncates() {
        let mut sq = ScalarQuantizer::new(QType::Sq8, 2);
        sq.train(&[0.0, 5.0, 2.0, 5.0, 1.0, 5.0]);
        assert_eq!(sq.trained, vec![0.0, 5.0, 2.0, 0.0]);
        let mut c = [0u8; 2];
        sq.encode(&[1.0, 7.0], &mut c);
        // 255 · 0.5 = 127.5 truncates; a zero-width range codes 0.
        assert_eq!(c, [127, 0]);
        sq.encode(&[f32::NAN, 1.0], &mut c);
        assert_eq!(c[0], 0);
        sq.encode(&[9.0, 1.0], &mut c);
        assert_eq!(c[0], 255);
        let mut out = [0.0f32; 2];
        sq.decode(&[127, 0], &mut out);
        assert_eq!(out, [0.0 + (127.5f32 / 255.0) * 2.0, 5.0]);
    }
}
