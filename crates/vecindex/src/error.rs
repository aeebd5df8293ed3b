//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong in vecindex, with enough context to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `builder_factory` was given a backend name it does not know.
    #[error("unknown backend '{name}'; valid backends: {valid}")]
    UnknownBackend { name: String, valid: String },

    /// A configuration key that the backend does not take.
    #[error("unknown parameter '{key}' for backend '{backend}'{hint}; valid parameters: {valid}")]
    UnknownParameter {
        backend: String,
        key: String,
        hint: String,
        valid: String,
    },

    /// A configuration value of the wrong type, out of range or not among the choices.
    #[error("invalid value '{value}' for parameter '{key}': {reason}")]
    InvalidParameter {
        key: String,
        value: String,
        reason: String,
    },

    /// Input vectors have the wrong shape.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        what: String,
        expected: usize,
        got: usize,
    },

    /// A non-finite value in input vectors.
    #[error("{what} row {row}, column {col} is {value}: vectors must be finite (no NaN or Inf)")]
    NonFinite {
        what: String,
        row: usize,
        col: usize,
        value: f32,
    },

    /// Empty input where at least one row is needed.
    #[error("{0}")]
    Empty(String),

    /// Other invalid arguments (k = 0, duplicate ids, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// The operation exists in the API but not for this backend/index type.
    #[error("{0}")]
    Unsupported(String),

    /// A file that is not what it claims to be: truncated, corrupted or of another format.
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },

    /// A vector database server (Milvus) could not be reached or refused a request; `message`
    /// carries the server's or transport's own words.
    #[error("milvus at {uri}: {action}: {message}")]
    Server {
        uri: String,
        action: String,
        message: String,
    },

    /// An I/O error with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}
