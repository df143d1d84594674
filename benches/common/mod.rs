//! Helpers shared by the benchmarks.

/// CPU seconds (user + system) and the largest resident set (KiB) of all waited-for child
/// processes so far, from `getrusage(RUSAGE_CHILDREN)`: measured by the kernel, not by the
/// program under test.
pub struct ChildrenUsage {
    pub cpu_seconds: f64,
    pub max_rss_kb: i64,
}

pub fn children_usage() -> ChildrenUsage {
    let usage = rusage(libc::RUSAGE_CHILDREN);
    ChildrenUsage {
        cpu_seconds: cpu_seconds(&usage),
        max_rss_kb: usage.ru_maxrss,
    }
}

/// CPU seconds (user + system) this process has used so far, from `getrusage(RUSAGE_SELF)`.
// Each bench compiles this module on its own, and not every bench serves from its process.
#[allow(dead_code)]
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(&rusage(libc::RUSAGE_SELF))
}

fn rusage(who: libc::c_int) -> libc::rusage {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    }
}

fn cpu_seconds(usage: &libc::rusage) -> f64 {
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
