//! The library's internals that its own tests, examples, benchmarks and fuzz targets reach:
//! public only so that they can, hidden from the docs, with no stability promise. Everything
//! else inside the backends is `pub(crate)`.

pub use crate::annoy::build::DEFAULT_SEED as ANNOY_DEFAULT_SEED;
pub use crate::annoy::forest::AnnoyForest;
pub use crate::annoy::index::{build as annoy_build, BuildParams as AnnoyBuildParams};
pub use crate::annoy::layout::NodeLayout;
pub use crate::annoy::search::nns as annoy_nns;
pub use crate::faiss::format::write_index as write_faiss_index;
pub use crate::faiss::hnsw::HnswIndex;
pub use crate::faiss::ivf::{IvfIndex, ListCodecSpec};
pub use crate::faiss::sq::QType;
pub use crate::kernels::{kernels, Kernels};
