//! The response cache, opt-in (`--cache`): one file per reply, named by the judge's cache
//! key (a digest of everything the harness sends), so replaying a judge costs nothing.
//!
//! It is off by default because a key can only cover what the harness sends, never what
//! answers: a self-hosted endpoint that swapped its weights under the same model name and
//! URL would be served last night's replies, and a nightly gate would pass a real
//! regression. So it is for replaying a judge known not to change (a pinned API model, a
//! re-run of a paid reproduction), and the user says so.
//!
//! An entry holds the raw reply, its usage, the model the server named and the confidence its
//! log-probabilities gave (for the RAGAS judge, also its trace: both replies, the statement
//! count and the score): never a verdict.
//! Verdicts are parsed on every read, so a fixed parser applies to cached replies too; a
//! judge whose verdict is not read from the text sets it again (`Judge::reread_cached`). The
//! layout is versioned (`v2/`), so an older harness's entries are never misread.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use halubench_core::{RagasTrace, Usage};
use halubench_judge::{Reply, parse_verdict};
use serde::{Deserialize, Serialize};

/// The layout version: a directory of its own under the cache directory.
const LAYOUT: &str = "v2";

#[derive(Debug, Clone)]
pub struct ResponseCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    raw: String,
    usage: Option<Usage>,
    model: Option<String>,
    /// What the server's log-probabilities gave, like usage a fact of the reply.
    #[serde(default)]
    p_fail: Option<f64>,
    /// The RAGAS judge's working, from which it reads its verdict again on a hit. Absent
    /// for other judges, whose entries stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ragas: Option<RagasTrace>,
}

impl ResponseCache {
    /// A cache in `dir` (the entries live in `dir/v2/`).
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
        self.dir
            .join(LAYOUT)
            .join(shard)
            .join(format!("{key}.json"))
    }

    /// A cached reply, its verdict parsed now; a missing or unreadable entry is a miss,
    /// never an error.
    pub fn get(&self, key: &str) -> Option<Reply> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let parsed = parse_verdict(&entry.raw);
        Some(Reply {
            verdict: parsed.verdict,
            invalid_reason: parsed.invalid.map(|r| r.as_str().to_string()),
            raw: entry.raw,
            usage: entry.usage,
            model: entry.model,
            p_fail: entry.p_fail,
            ragas: entry.ragas,
        })
    }

    /// Stores a reply's text, usage, model and p_fail. Written to a temporary file of its own and
    /// renamed, so that two writers of one key (two examples with the same prompt, two runs)
    /// and a crash leave either a whole entry or none.
    pub fn put(&self, key: &str, reply: &Reply) -> std::io::Result<()> {
        let path = self.path(key);
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        let entry = Entry {
            raw: reply.raw.clone(),
            usage: reply.usage,
            model: reply.model.clone(),
            p_fail: reply.p_fail,
            ragas: reply.ragas.clone(),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        tmp.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Verdict;

    fn reply(raw: &str) -> Reply {
        Reply {
            verdict: Verdict::Fail,
            raw: raw.to_string(),
            invalid_reason: None,
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 2,
            }),
            model: Some("m".to_string()),
            p_fail: None,
            ragas: None,
        }
    }

    #[test]
    fn verdicts_are_parsed_on_read_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ResponseCache::new(dir.path().to_path_buf());
        // Stored with a verdict that disagrees with its text: the text wins on read.
        cache
            .put("abcd", &reply("{\"SCORE\": \"PASS\"}"))
            .expect("put");
        let hit = cache.get("abcd").expect("hit");
        assert_eq!(hit.verdict, Verdict::Pass);
        assert_eq!(hit.usage, reply("").usage);
        let stored = std::fs::read_to_string(dir.path().join("v2/ab/abcd.json")).expect("entry");
        assert!(!stored.contains("verdict"), "{stored}");
        assert!(cache.get("abce").is_none());
    }

    #[test]
    fn concurrent_writers_of_one_key_leave_one_whole_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ResponseCache::new(dir.path().to_path_buf());
        let long = "x".repeat(200_000);
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (cache, text) = (&cache, format!("{i}{long}"));
                scope.spawn(move || {
                    for _ in 0..20 {
                        cache.put("samekey", &reply(&text)).expect("put");
                    }
                });
            }
        });
        let hit = cache.get("samekey").expect("a whole entry");
        assert_eq!(hit.raw.len(), long.len() + 1);
        let leftovers = std::fs::read_dir(dir.path().join("v2/sa"))
            .expect("shard")
            .count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
