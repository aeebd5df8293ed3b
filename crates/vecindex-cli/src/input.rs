//! Input files for the commands: embeddings read with a spinner, and the check that an output
//! is not one of the inputs.

use anyhow::Result;
use std::path::Path;
use vecindex::{io, Vectors};

/// Reads embeddings (.npy, .safetensors, .fvecs), showing a spinner while it takes.
pub fn read_vectors(path: &Path, tensor: Option<&str>) -> Result<Vectors> {
    let sp = crate::progress::spinner(&format!("reading {}", path.display()));
    let v = io::read_vectors(path, tensor)?;
    sp.finish_and_clear();
    Ok(v)
}

/// Refuses an output path that is one of the inputs (also through a symlink or a hard link):
/// saving would replace the user's file with something else.
pub fn ensure_not_an_input(output: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    #[cfg(unix)]
    fn same(a: &Path, b: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    fn same(a: &Path, b: &Path) -> bool {
        match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
    for (flag, input) in inputs {
        if same(output, input) {
            anyhow::bail!(
                "--output {} is the same file as {flag} {}; choose another output path (nothing \
                 was written)",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}
