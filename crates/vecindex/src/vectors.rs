//! Row-major f32 matrices: an owned `Vectors` and a borrowed `VectorsView`, with validation.

use crate::error::{Error, Result};

/// A borrowed row-major matrix of `rows() × dim()` f32 values.
#[derive(Debug, Clone, Copy)]
pub struct VectorsView<'a> {
    data: &'a [f32],
    dim: usize,
}

impl<'a> VectorsView<'a> {
    /// Views `data` as rows of `dim` values. `data.len()` must be a multiple of `dim`, and `dim > 0`.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid("vector dimension must be at least 1"));
        }
        if !data.len().is_multiple_of(dim) {
            return Err(Error::invalid(format!(
                "a buffer of {} values is not a whole number of rows of dimension {dim}",
                data.len()
            )));
        }
        Ok(VectorsView { data, dim })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The whole buffer, row after row.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`. Panics if `i >= rows()`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `start..end` as a view.
    pub fn slice_rows(&self, start: usize, end: usize) -> VectorsView<'a> {
        VectorsView {
            data: &self.data[start * self.dim..end * self.dim],
            dim: self.dim,
        }
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> std::slice::ChunksExact<'a, f32> {
        self.data.chunks_exact(self.dim)
    }

    /// Checks every value is finite; the error names the first offending row and column.
    /// `what` says which input this is ("item", "query") for the message.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        use rayon::prelude::*;
        // Parallel over large inputs; the first offending position is still the one reported.
        const CHUNK: usize = 1 << 16;
        let first_bad = self
            .data
            .par_chunks(CHUNK)
            .enumerate()
            .filter_map(|(c, chunk)| {
                chunk
                    .iter()
                    .position(|v| !v.is_finite())
                    .map(|p| c * CHUNK + p)
            })
            .min();
        if let Some(pos) = first_bad {
            return Err(Error::NonFinite {
                what: what.to_string(),
                row: pos / self.dim,
                col: pos % self.dim,
                value: self.data[pos],
            });
        }
        Ok(())
    }

    /// Checks the dimension equals `expected`.
    pub fn check_dim(&self, what: &str, expected: usize) -> Result<()> {
        if self.dim != expected {
            return Err(Error::DimensionMismatch {
                what: what.to_string(),
                expected,
                got: self.dim,
            });
        }
        Ok(())
    }

    /// Copies into an owned matrix.
    pub fn to_owned(&self) -> Vectors {
        Vectors {
            data: self.data.to_vec(),
            dim: self.dim,
        }
    }
}

/// An owned row-major matrix of f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    data: Vec<f32>,
    dim: usize,
}

impl Vectors {
    /// Takes ownership of `data` as rows of `dim` values (same rules as [`VectorsView::new`]).
    pub fn new(data: Vec<f32>, dim: usize) -> Result<Self> {
        VectorsView::new(&data, dim)?;
        Ok(Vectors { data, dim })
    }

    /// A borrowed view.
    pub fn view(&self) -> VectorsView<'_> {
        VectorsView {
            data: &self.data,
            dim: self.dim,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Gives the buffer back.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

impl<'a> From<&'a Vectors> for VectorsView<'a> {
    fn from(v: &'a Vectors) -> Self {
        v.view()
    }
}

#[cfg(feature = "ndarray")]
impl<'a> TryFrom<ndarray::ArrayView2<'a, f32>> for VectorsView<'a> {
    type Error = Error;

    /// Zero-copy for C-order (standard layout) arrays; other layouts are an error that says how
    /// to fix them, because silently copying a large matrix would hide a cost.
    fn try_from(a: ndarray::ArrayView2<'a, f32>) -> Result<Self> {
        let dim = a.ncols();
        let slice = a.to_slice().ok_or_else(|| {
            Error::invalid(
                "the array is not in standard (C, row-major) layout; call .as_standard_layout() first",
            )
        })?;
        VectorsView::new(slice, dim)
    }
}

#[cfg(feature = "ndarray")]
impl<'a> TryFrom<&'a ndarray::Array2<f32>> for VectorsView<'a> {
    type Error = Error;

    fn try_from(a: &'a ndarray::Array2<f32>) -> Result<Self> {
        VectorsView::try_from(a.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_rows() {
        let d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let v = VectorsView::new(&d, 3).unwrap();
        assert_eq!(v.rows(), 2);
        assert_eq!(v.row(1), &[4.0, 5.0, 6.0]);
        assert!(VectorsView::new(&d, 4).is_err());
        assert!(VectorsView::new(&d, 0).is_err());
    }

    #[test]
    fn non_finite_names_row_and_column() {
        let d = [1.0, 2.0, 3.0, f32::NAN];
        let err = VectorsView::new(&d, 2)
            .unwrap()
            .check_finite("item")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("item row 1, column 1"), "{msg}");
        let d = [f32::INFINITY, 0.0];
        let msg = VectorsView::new(&d, 2)
            .unwrap()
            .check_finite("query")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("query row 0, column 0 is inf"), "{msg}");
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn from_ndarray_requires_standard_layout() {
        let a =
            ndarray::Array2::<f32>::from_shape_vec((2, 3), vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let v = VectorsView::try_from(a.view()).unwrap();
        assert_eq!(v.row(1), &[4., 5., 6.]);
        let t = a.t();
        assert!(VectorsView::try_from(t).is_err());
    }
}
