//! One process per run directory. Two processes appending to one journal (a second
//! terminal's `--resume`, an overlapping cron job) would interleave and double-judge it, so
//! every command that writes a run directory first takes an advisory lock on
//! `<dir>/run.lock`. The operating system releases it when the holder exits or dies, so a
//! `kill -9` never leaves a stale lock behind; the file itself stays, holding the last
//! holder's pid, and is harmless.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

use anyhow::{Context, bail};

pub const LOCK: &str = "run.lock";

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist) at once, or fails naming the process that
    /// holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<DirLock> {
        let path = dir.join(LOCK);
        let context = || format!("cannot lock {}", path.display());
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(context)?;
        match file.try_lock() {
            Ok(()) => {
                // Only the holder writes the pid, so a reader sees the holder's or nothing.
                file.set_len(0).with_context(context)?;
                file.rewind().with_context(context)?;
                writeln!(file, "{}", std::process::id()).with_context(context)?;
                Ok(DirLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "a process that has not written its pid yet".to_string(),
                    pid => format!("pid {pid}"),
                };
                bail!(
                    "{} is in use by another halubench process ({holder}); wait for it to \
                     finish or stop it, then try again",
                    dir.display()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path()).expect("first");
        // A second open file description conflicts even within one process.
        let error = DirLock::acquire(dir.path())
            .expect_err("second")
            .to_string();
        assert!(
            error.contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        drop(first);
        DirLock::acquire(dir.path()).expect("free again");
    }
}
