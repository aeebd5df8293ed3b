//! `vecindex::Error` → the Python exception a Python user of faiss/annoy/pymilvus expects.

use pyo3::exceptions::{
    PyConnectionError, PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError,
    PyNotImplementedError, PyOSError, PyPermissionError, PyTimeoutError, PyValueError,
};
use pyo3::PyErr;
use std::io::ErrorKind;
use vecindex::Error;

/// Maps an engine error to its Python exception; the message is the engine's own line.
pub fn to_py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::UnknownBackend { .. } | Error::Unsupported(_) => PyNotImplementedError::new_err(msg),
        Error::UnknownParameter { .. }
        | Error::InvalidParameter { .. }
        | Error::DimensionMismatch { .. }
        | Error::NonFinite { .. }
        | Error::Empty(_)
        | Error::InvalidArgument(_)
        | Error::Format { .. } => PyValueError::new_err(msg),
        Error::Server { message, .. } => {
            let m = message.to_ascii_lowercase();
            if m.contains("timed out") || m.contains("timeout") || m.contains("deadline") {
                PyTimeoutError::new_err(msg)
            } else {
                PyConnectionError::new_err(msg)
            }
        }
        Error::Io { source, .. } => match source.kind() {
            ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            ErrorKind::AlreadyExists => PyFileExistsError::new_err(msg),
            ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
            ErrorKind::TimedOut => PyTimeoutError::new_err(msg),
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof => PyValueError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        // `Error` is non-exhaustive: a kind added later is at least a RuntimeError with its text.
        _ => pyo3::exceptions::PyRuntimeError::new_err(msg),
    }
}
