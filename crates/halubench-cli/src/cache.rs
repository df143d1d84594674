//! The response cache: one file per reply, named by the judge's cache key (a digest of
//! everything that shapes the reply), so a re-run costs nothing and a changed parameter
//! can never hit a stale entry.

use std::path::{Path, PathBuf};

use halubench_core::{Usage, Verdict};
use halubench_judge::Reply;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct ResponseCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    verdict: Verdict,
    raw: String,
    #[serde(default)]
    invalid_reason: Option<String>,
    usage: Option<Usage>,
    model: Option<String>,
}

impl ResponseCache {
    pub fn new(dir: PathBuf) -> ResponseCache {
        ResponseCache { dir }
    }

    /// `$HALUBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/halubench/responses`, else
    /// `~/.cache/halubench/responses`.
    pub fn default_dir() -> PathBuf {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("HALUBENCH_CACHE_DIR").unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"))
                .join("halubench")
                .join("responses")
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        let shard = key.get(..2).unwrap_or("00");
        self.dir.join(shard).join(format!("{key}.json"))
    }

    /// A cached reply; a missing or unreadable entry is a miss, never an error.
    pub fn get(&self, key: &str) -> Option<Reply> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_str(&text).ok()?;
        Some(Reply {
            verdict: entry.verdict,
            raw: entry.raw,
            invalid_reason: entry.invalid_reason,
            usage: entry.usage,
            model: entry.model,
        })
    }

    /// Stores a reply. Written to a temporary file and renamed, so that concurrent runs and
    /// crashes leave either the whole entry or none.
    pub fn put(&self, key: &str, reply: &Reply) -> std::io::Result<()> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let entry = Entry {
            verdict: reply.verdict,
            raw: reply.raw.clone(),
            invalid_reason: reply.invalid_reason.clone(),
            usage: reply.usage,
            model: reply.model.clone(),
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_vec(&entry).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
