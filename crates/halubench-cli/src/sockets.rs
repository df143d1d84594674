//! The process set up for a run over HTTP with many calls in flight, before the run starts.
//!
//! Each call in flight holds a socket, and opening 1,024 of them at once was slow for two
//! reasons besides the sockets themselves (measured with the throughput bench):
//! - The kernel grows a process's table of descriptors by doubling, each time waiting out
//!   an RCU grace period once several threads share the table: 5-12 ms with the runtime
//!   stalled, three times on the way to 1,024. Grown once up front, it waits at
//!   most once, at start-up. A soft limit of 1,024 open files (a common default) would
//!   also fail calls with "Too many open files": it is raised, within the hard limit.
//! - mimalloc asks for transparent huge pages for its arena, so the first touch of each
//!   2 MiB zeroes all of it: more than half the CPU of opening the connections, for memory
//!   the run uses sparsely. The local judge keeps them (its weights are dense and large):
//!   a suite that runs it after an endpoint judge, in the same process, turns them back on.

/// Set once [`prepare`] has turned transparent huge pages off, so that only that is undone.
#[cfg(target_os = "linux")]
static HUGE_PAGES_TURNED_OFF: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Descriptors beyond the calls in flight: files, the journal, the cache, and connections
/// that the HTTP client opens while an idle one is on its way back to its pool.
const HEADROOM: u64 = 256;

/// Prepares this process for `concurrency` calls over HTTP; best effort. Returns a warning
/// when the hard limit on open files is too low for them.
#[cfg(unix)]
pub fn prepare(concurrency: u32) -> Option<String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    #[cfg(target_os = "linux")]
    if rustix::thread::disable_transparent_huge_pages(true).is_ok() {
        HUGE_PAGES_TURNED_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    // Twice the calls: a connection being replaced and its replacement overlap.
    let needed = 2 * u64::from(concurrency) + HEADROOM;
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let (soft, hard) = (current.unwrap_or(u64::MAX), maximum.unwrap_or(u64::MAX));
    let mut warning = None;
    let mut usable = soft;
    if soft < needed {
        let raised = needed.min(hard);
        let limit = Rlimit {
            current: Some(raised),
            maximum,
        };
        if setrlimit(Resource::Nofile, limit).is_ok() {
            usable = raised;
        }
        if hard < needed {
            warning = Some(format!(
                "--concurrency {concurrency} may need {needed} open files, but this process \
                 may open at most {hard} (`ulimit -Hn`); calls beyond that fail with \
                 \"Too many open files\""
            ));
        }
    }
    // A descriptor at the top of the range grows the table once; closing it keeps the size.
    let top = i32::try_from(needed.min(usable) - 1).unwrap_or(i32::MAX);
    if let Ok(any) = std::fs::File::open("/dev/null")
        && let Ok(high) = rustix::io::fcntl_dupfd_cloexec(&any, top)
    {
        drop(high);
    }
    warning
}

#[cfg(not(unix))]
pub fn prepare(_concurrency: u32) -> Option<String> {
    None
}

/// Turns transparent huge pages back on if [`prepare`] turned them off: for a judge that
/// runs a model in this process.
pub fn restore_huge_pages() {
    #[cfg(target_os = "linux")]
    if HUGE_PAGES_TURNED_OFF.swap(false, std::sync::atomic::Ordering::Relaxed) {
        let _ = rustix::thread::disable_transparent_huge_pages(false);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::{Resource, getrlimit};

    #[test]
    fn prepare_makes_room_for_twice_the_calls_and_turns_huge_pages_off() {
        let hard = getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX);
        let warning = super::prepare(1500);
        // Where the hard limit is lower than that, the soft one goes as far as it can.
        let needed = (2 * 1500 + super::HEADROOM).min(hard);
        assert_eq!(warning.is_some(), needed == hard, "{warning:?}");
        let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        assert!(soft >= needed, "soft limit {soft}");
        // The kernel reports the table's size: big enough already, no doubling to come.
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let size: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("FDSize:"))
            .and_then(|size| size.trim().parse().ok())
            .expect("FDSize");
        assert!(size >= needed, "FDSize {size}");
        let huge_pages_off = rustix::thread::transparent_huge_pages_are_disabled;
        assert_eq!(huge_pages_off().ok(), Some(true));
        super::restore_huge_pages();
        assert_eq!(huge_pages_off().ok(), Some(false));
    }
}
