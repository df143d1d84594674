//! End-to-end cost of a baseline run at HaluBench scale: load the 20,000-row halueval-qa
//! parquet, judge every row with the baseline, score and write the report, as a user runs
//! it (the release binary, one process per iteration).
//!
//! Run with `cargo bench -p halubench-cli --bench end_to_end` (optionally `-- ITERATIONS`).
//! Reports wall time (median, min, max) and user+system CPU time per run, and the peak
//! resident memory of the largest run, measured with `getrusage(RUSAGE_CHILDREN)` rather
//! than by the program itself. Targets from the issue: under 1 s and under 200 MB.

// getrusage has no safe wrapper in std; common/ holds the workspace's only unsafe code.
#![allow(unsafe_code)]

mod common;

use common::children_usage;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TARGET_SECONDS: f64 = 1.0;
const TARGET_MB: f64 = 200.0;

fn main() {
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("../shared/data/halueval-qa/test-00000-of-00001.parquet");
    if !data.is_file() {
        eprintln!(
            "skipping: {} is missing (it lives beside the repository)",
            data.display()
        );
        return;
    }
    let work = std::env::temp_dir().join(format!("halubench-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create work dir");

    println!("halueval-qa: 20,000 rows, {iterations} iterations each, release binary\n");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "command", "median s", "min s", "max s", "cpu s/run", "peak MB"
    );
    let data = data.display().to_string();
    let load_only = measure(&work, iterations, |_| {
        vec!["datasets".into(), "inspect".into(), data.clone()]
    });
    report("load + validate (datasets inspect)", &load_only);
    let full = measure(&work, iterations, |i| {
        vec![
            "run".into(),
            "--dataset".into(),
            data.clone(),
            "--out".into(),
            work.join(format!("run-{i}")).display().to_string(),
        ]
    });
    report("load + baseline + score (run)", &full);
    println!(
        "\nrun vs target: {:.2}x of {TARGET_SECONDS} s (median), {:.2}x of {TARGET_MB} MB (peak)",
        full.median().as_secs_f64() / TARGET_SECONDS,
        full.peak_mb / TARGET_MB
    );
    let _ = std::fs::remove_dir_all(&work);
}

struct Measurement {
    walls: Vec<Duration>,
    cpu_per_run: f64,
    peak_mb: f64,
}

impl Measurement {
    fn median(&self) -> Duration {
        self.walls[self.walls.len() / 2]
    }
}

fn measure(work: &Path, iterations: usize, args: impl Fn(usize) -> Vec<String>) -> Measurement {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_halubench"));
    // Children of earlier measurements are already counted; take differences.
    let before = children_usage();
    let mut walls = Vec::with_capacity(iterations);
    for i in 0..=iterations {
        let started = Instant::now();
        let out = Command::new(&binary)
            .args(args(i))
            .current_dir(work)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .expect("run halubench");
        let wall = started.elapsed();
        assert!(
            out.status.success(),
            "halubench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The first run warms the page cache and is not counted.
        if i > 0 {
            walls.push(wall);
        }
    }
    let after = children_usage();
    walls.sort();
    Measurement {
        walls,
        cpu_per_run: (after.cpu_seconds - before.cpu_seconds) / (iterations + 1) as f64,
        peak_mb: after.max_rss_kb as f64 / 1024.0,
    }
}

fn report(name: &str, m: &Measurement) {
    println!(
        "{:<34} {:>9.3} {:>9.3} {:>9.3} {:>10.3} {:>10.1}",
        name,
        m.median().as_secs_f64(),
        m.walls[0].as_secs_f64(),
        m.walls[m.walls.len() - 1].as_secs_f64(),
        m.cpu_per_run,
        m.peak_mb
    );
}
