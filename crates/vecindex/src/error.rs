//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong in vecindex, with enough context to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `builder_factory` was given a backend name it does not know.
    #[error("unknown backend '{name}'; valid backends: {valid}")]
    UnknownBackend {
        /// The name as given.
        name: String,
        /// The backend names `builder_factory` accepts, comma-separated.
        valid: String,
    },

    /// A configuration key that the backend does not take.
    #[error("unknown parameter '{key}' for backend '{backend}'{hint}; valid parameters: {valid}")]
    UnknownParameter {
        /// The backend the configuration was for.
        backend: String,
        /// The key as given.
        key: String,
        /// `" (did you mean 'x'?)"` for a known name within edit distance 2, otherwise empty.
        hint: String,
        /// The backend's canonical parameter names, comma-separated.
        valid: String,
    },

    /// A configuration value of the wrong type, out of range or not among the choices.
    #[error("invalid value '{value}' for parameter '{key}': {reason}")]
    InvalidParameter {
        /// The parameter's canonical name.
        key: String,
        /// The value as given.
        value: String,
        /// What a valid value looks like (range, choices) or why this one does not apply.
        reason: String,
    },

    /// Input vectors have the wrong shape.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which input or file disagreed (e.g. "query").
        what: String,
        /// The dimension the index or file requires.
        expected: usize,
        /// The dimension that was supplied.
        got: usize,
    },

    /// A non-finite value in input vectors.
    #[error("{what} row {row}, column {col} is {value}: vectors must be finite (no NaN or Inf)")]
    NonFinite {
        /// Which input held it ("item", "query", ...).
        what: String,
        /// Zero-based row of the first non-finite value.
        row: usize,
        /// Zero-based column of that value.
        col: usize,
        /// The offending value (NaN or ±Inf).
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
    Format {
        /// The file (or other source) that was being read.
        path: String,
        /// What is wrong with it, with the byte offset where one is known.
        reason: String,
    },

    /// A vector database server (Milvus) could not be reached or refused a request; `message`
    /// carries the server's or transport's own words.
    #[error("milvus at {uri}: {action}: {message}")]
    Server {
        /// The server address that was used.
        uri: String,
        /// What was being attempted (e.g. "inserting", "searching").
        action: String,
        /// The server's or transport's own error text.
        message: String,
    },

    /// An I/O error with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying operating-system error.
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
