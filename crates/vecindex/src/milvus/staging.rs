//! Collections under construction. A build fills a *staging* collection and renames it to its
//! final name only once it is complete, so a failed build never leaves a half-filled collection
//! under a name anyone uses. When the failure is the server going away, the build cannot drop its
//! staging collection; the next build on that server from this machine drops it instead (the way
//! a save removes the temp files of saves that were killed).
//!
//! A staging name is `<prefix>_vxb<host>_<pid>_<nanos>_<n>`: `host` is a digest of this machine's
//! identity, so only the machine that made a collection judges whether its builder is gone.

use super::client::MilvusClient;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

const MARKER: &str = "_vxb";

/// The staging names of this process's builds still running.
fn in_flight() -> &'static Mutex<HashSet<String>> {
    static SET: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SET.get_or_init(Mutex::default)
}

/// Eight hex digits naming this machine (its machine id, else its host name).
fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let id = ["/etc/machine-id", "/proc/sys/kernel/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        format!("{:08x}", crate::io::digest64(id.trim().as_bytes()) as u32)
    })
}

/// A staging collection name registered as in flight until the returned guard is dropped.
pub(crate) struct Staging {
    pub name: String,
}

/// `<pid>_<nanos, hex>_<counter>`: unique across processes and runs (the tail of generated and
/// staging collection names).
pub(super) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{}_{nanos:x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Staging {
    pub fn new(prefix: &str) -> Staging {
        let name = format!("{prefix}{MARKER}{}_{}", host_tag(), unique_suffix());
        lock(in_flight()).insert(name.clone());
        Staging { name }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        lock(in_flight()).remove(&self.name);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `name` is a staging collection this machine made for a build that is over: its
/// process is gone, or it is this process and no build of it holds the name.
pub(crate) fn is_abandoned(name: &str) -> bool {
    let Some(at) = name.rfind(MARKER) else {
        return false;
    };
    let mut parts = name[at + MARKER.len()..].split('_');
    let (Some(host), Some(pid), Some(nanos), Some(n), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let well_formed = u64::from_str_radix(nanos, 16).is_ok() && n.parse::<u64>().is_ok();
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if !well_formed || host != host_tag() || !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    if pid == std::process::id() {
        !lock(in_flight()).contains(name)
    } else {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
}

/// Drops the abandoned staging collections on the server (best effort: a build does not fail
/// because an old leftover could not be removed).
pub(crate) fn drop_abandoned(client: &MilvusClient) {
    let Ok(names) = client.list_collections() else {
        return;
    };
    for name in names.iter().filter(|n| is_abandoned(n)) {
        let _ = client.drop_collection(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machines_finished_builds_are_abandoned() {
        let live = Staging::new("items");
        assert!(live.name.starts_with("items_vxb"));
        assert!(!is_abandoned(&live.name), "a running build's collection");
        let name = live.name.clone();
        drop(live);
        assert!(is_abandoned(&name), "this process's finished build");

        // rsplitn: n, nanos, pid, then the prefix ending in the marker and host tag.
        let parts: Vec<&str> = name.rsplitn(4, '_').collect();
        let (n, nanos) = (parts[0], parts[1]);
        let prefix = &parts[3][..parts[3].len() - 8]; // ends with the host tag
        let dead = (1u32..4_000_000)
            .rev()
            .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
            .unwrap();
        let other = format!("{prefix}{}_{dead}_{nanos}_{n}", host_tag());
        assert!(is_abandoned(&other), "a process that is gone: {other}");
        let elsewhere = format!("{prefix}0000000g_{dead}_{nanos}_{n}");
        assert!(!is_abandoned(&elsewhere), "another machine's build");
        let parent = format!("{prefix}{}_1_{nanos}_{n}", host_tag());
        assert!(!is_abandoned(&parent), "a live process (pid 1): {parent}");
        for plain in ["items", "items_vxb", "vecindex_123_abc_0", "x_vxbzz_1_2"] {
            assert!(!is_abandoned(plain), "{plain}");
        }
    }
}
