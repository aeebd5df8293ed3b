//! Ctrl-C, `kill` and a closed terminal end the program without leaving the temp files of a save
//! behind: the signals are taken by one thread, which removes the files of the saves in progress
//! (`vecindex::io::abandon_saves`) and then ends the process by the same signal, as it would have
//! ended without us. (`kill -9` cannot be caught: the next save to that path removes its files.)

/// Call first in `main`, before any other thread exists: threads inherit the signal mask.
pub fn remove_unfinished_saves_on_signal() {
    #[cfg(unix)]
    unix::install();
}

#[cfg(unix)]
mod unix {
    use std::ptr::null_mut;

    pub fn install() {
        // A signal the caller set to be ignored (e.g. SIGINT for a background job) stays ignored.
        let signals: Vec<libc::c_int> = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
            .into_iter()
            .filter(|&s| !ignored(s))
            .collect();
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t and the signal numbers are valid.
        unsafe {
            libc::sigemptyset(&mut set);
            for &s in &signals {
                libc::sigaddset(&mut set, s);
            }
        }
        // SAFETY: changes this thread's mask only; `set` is valid, the old mask is not wanted.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, null_mut()) } != 0 {
            return;
        }
        let waiter = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is valid and `sig` a valid place for the result.
                while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
                vecindex::io::abandon_saves();
                // SAFETY: restores the default action and unblocks it in this thread, so raising
                // it ends the process the way the signal itself would have.
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                    libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, null_mut());
                    libc::raise(sig);
                }
                std::process::exit(128 + sig);
            });
        if waiter.is_err() {
            // SAFETY: as above; without the waiting thread the signals act as before.
            unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, null_mut()) };
        }
    }

    fn ignored(sig: libc::c_int) -> bool {
        // SAFETY: sigaction is plain data; a null new action only reads the current one.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        }
    }
}
