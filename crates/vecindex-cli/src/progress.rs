//! Progress display: bars on a terminal, nothing when stderr is not one (logs stay clean).

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A spinner for work of unknown length; call `finish` with a closing message.
pub fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar of `total` steps.
pub fn bar(total: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} [{elapsed}<{eta}]")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// A library progress callback that drives one bar per stage.
pub fn callback() -> vecindex::Progress {
    callback_replacing(None)
}

/// Like [`callback`], clearing `spinner` when the first real progress arrives (so a build shows a
/// spinner until the backend reports stages, then bars — never both).
pub fn callback_replacing(spinner: Option<ProgressBar>) -> vecindex::Progress {
    let current: Arc<Mutex<Option<(String, ProgressBar)>>> = Arc::new(Mutex::new(None));
    let spinner = Mutex::new(spinner);
    Arc::new(move |stage: &str, done: u64, total: u64| {
        if let Some(sp) = spinner.lock().expect("progress lock").take() {
            sp.finish_and_clear();
        }
        let mut cur = current.lock().expect("progress lock");
        let same = cur.as_ref().map(|(s, _)| s == stage).unwrap_or(false);
        if !same {
            if let Some((_, pb)) = cur.take() {
                pb.finish();
            }
            *cur = Some((stage.to_string(), bar(total, stage)));
        }
        if let Some((_, pb)) = cur.as_ref() {
            pb.set_length(total);
            pb.set_position(done);
            if done >= total {
                pb.finish();
            }
        }
    })
}
