//! Running engine calls from Python: without the GIL, with panics turned into exceptions, and
//! (for builds) interruptible by Ctrl-C.

use crate::errors::to_py_err;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting build looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The payload a progress callback unwinds with to stop a build that Python has interrupted.
/// It never reaches Python: [`interruptible`] catches it and raises the pending KeyboardInterrupt.
struct Interrupted;

/// Stops the build (unwinding with the [`Interrupted`] marker) when `flag` is set (by Ctrl-C, or
/// by a progress callback that raised). Called from
/// progress callbacks, which the engine invokes at its checkpoints (each annoy tree, k-means
/// iteration, HNSW batch of at most 2% of the items, Milvus insert batch). `resume_unwind` skips
/// the panic hook and rayon re-raises a worker's payload the same way, so nothing is printed.
pub fn stop_if_interrupted(flag: &AtomicBool) {
    if flag.load(Ordering::Relaxed) {
        std::panic::resume_unwind(Box::new(Interrupted));
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn panic_to_py(payload: Box<dyn Any + Send>) -> PyErr {
    PyRuntimeError::new_err(format!(
        "internal error in vecindex (please report it): {}",
        panic_message(payload.as_ref())
    ))
}

/// Runs `f` with the GIL released; engine errors and panics become Python exceptions.
pub fn detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> vecindex::Result<T> + Send,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(r) => r.map_err(to_py_err),
        Err(payload) => Err(panic_to_py(payload)),
    }
}

/// Runs a long build `f` on a helper thread while this (Python) thread, GIL released, checks for
/// Ctrl-C every 100 ms. On Ctrl-C the flag handed to `f` is set; `f`'s progress callbacks stop
/// the build at the next checkpoint (see [`stop_if_interrupted`]) and KeyboardInterrupt is raised.
pub fn interruptible<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(Arc<AtomicBool>) -> vecindex::Result<T> + Send,
{
    let flag = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel(1);
        let worker_flag = Arc::clone(&flag);
        s.spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| f(worker_flag))));
        });
        let mut rx = rx;
        let mut interrupt: Option<PyErr> = None;
        loop {
            let (got, back) = py.detach(move || (rx.recv_timeout(SIGNAL_POLL), rx));
            rx = back;
            let outcome = match got {
                Ok(outcome) => outcome,
                Err(RecvTimeoutError::Timeout) => {
                    if interrupt.is_none() {
                        if let Err(e) = py.check_signals() {
                            flag.store(true, Ordering::Relaxed);
                            interrupt = Some(e);
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err(
                        "internal error in vecindex: the build thread ended without a result",
                    ))
                }
            };
            return match (outcome, interrupt) {
                (_, Some(e)) => Err(e),
                (Ok(r), None) => r.map_err(to_py_err),
                (Err(payload), None) if payload.is::<Interrupted>() => Err(
                    PyRuntimeError::new_err("the build was stopped by its progress callback"),
                ),
                (Err(payload), None) => Err(panic_to_py(payload)),
            };
        }
    })
}
