//! The Hugging Face hub and its cache, with the Python client's layout and environment
//! variables, so a cache made by `huggingface_hub` is reused and ours is usable by it.
//!
//! Lookups read the cache directly; only a miss goes to the network, through the `hf-hub`
//! crate. `hf-hub` 0.4 has no timeouts and ignores `HF_HUB_OFFLINE` and `HF_HUB_CACHE`, so
//! this module reads the environment itself, probes the hub with short timeouts before a
//! download, and bounds the download with its own deadline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};

use crate::DataError;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Generous: HaluBench is 7.5 MB, but models come through here too.
const DEFAULT_DOWNLOAD_TIMEOUT_SECS: u64 = 3600;
const DEFAULT_PROBE_TIMEOUT_SECS: u64 = 10;

/// An access token. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to reach the hub and where its cache lives, read from the same environment
/// variables as the Python client.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The `hub` cache directory (`$HF_HUB_CACHE`, else `$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    pub endpoint: String,
    /// `HF_HUB_OFFLINE`: never touch the network.
    pub offline: bool,
    pub token: Option<Token>,
    /// How long the reachability check before a download may take
    /// (`HALUBENCH_HUB_TIMEOUT`, seconds).
    pub probe_timeout: Duration,
    /// How long a download may take (`HALUBENCH_DOWNLOAD_TIMEOUT`, seconds).
    pub download_timeout: Duration,
}

impl HubSettings {
    pub fn from_env() -> HubSettings {
        HubSettings::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Resolution order as in `huggingface_hub.constants`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubSettings {
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(var("HOME").unwrap_or_default()).join(".cache"));
            cache.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token_path = var("HF_TOKEN_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("token"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                std::fs::read_to_string(token_path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            })
            .map(Token);
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v));
        let seconds = |name: &str, default: u64| {
            Duration::from_secs(var(name).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        HubSettings {
            cache_dir,
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            offline,
            token,
            probe_timeout: seconds("HALUBENCH_HUB_TIMEOUT", DEFAULT_PROBE_TIMEOUT_SECS),
            download_timeout: seconds("HALUBENCH_DOWNLOAD_TIMEOUT", DEFAULT_DOWNLOAD_TIMEOUT_SECS),
        }
    }
}

fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

/// Which kind of hub repository: the two live under different URL and cache prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Dataset,
    Model,
}

/// A file in a hub repository at a revision.
#[derive(Debug, Clone, Copy)]
pub struct HubFile<'a> {
    pub kind: RepoKind,
    pub repo: &'a str,
    pub revision: &'a str,
    pub file: &'a str,
}

impl HubFile<'_> {
    fn repo_dir(&self, cache_dir: &Path) -> PathBuf {
        let prefix = match self.kind {
            RepoKind::Dataset => "datasets",
            RepoKind::Model => "models",
        };
        cache_dir.join(format!("{prefix}--{}", self.repo.replace('/', "--")))
    }

    pub fn url(&self, endpoint: &str) -> String {
        let prefix = match self.kind {
            RepoKind::Dataset => "datasets/",
            RepoKind::Model => "",
        };
        format!(
            "{endpoint}/{prefix}{}/resolve/{}/{}",
            self.repo,
            self.revision.replace('/', "%2F"),
            self.file
        )
    }
}

/// A file found in the cache.
#[derive(Debug, Clone)]
pub struct Cached {
    pub path: PathBuf,
    /// The hub's own digest of the file where the cache records it: an LFS file's blob is
    /// named by its sha256.
    pub blob_sha256: Option<String>,
}

/// Looks a file up in the cache without touching the network. A revision that is a full
/// commit hash is looked up directly under `snapshots/`; a branch or tag goes through
/// `refs/` (trimmed: the Python client writes no newline, other tools do).
pub fn find_in_cache(cache_dir: &Path, file: HubFile<'_>) -> Option<Cached> {
    let repo_dir = file.repo_dir(cache_dir);
    let commit = if is_commit_hash(file.revision) {
        file.revision.to_string()
    } else {
        std::fs::read_to_string(repo_dir.join("refs").join(file.revision))
            .ok()?
            .trim()
            .to_string()
    };
    let path = repo_dir.join("snapshots").join(commit).join(file.file);
    if !path.is_file() {
        return None;
    }
    let blob_sha256 = std::fs::read_link(&path)
        .ok()
        .and_then(|target| target.file_name()?.to_str().map(str::to_string))
        .filter(|name| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()));
    Some(Cached { path, blob_sha256 })
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Returns the cached file, downloading it first if needed (unless offline). `name` is what
/// the user asked for (a registry name, a model id), for the error messages.
pub fn fetch(settings: &HubSettings, name: &str, file: HubFile<'_>) -> Result<Cached, DataError> {
    if let Some(cached) = find_in_cache(&settings.cache_dir, file) {
        return Ok(cached);
    }
    let location = format!("{}@{}, file {}", file.repo, file.revision, file.file);
    let not_cached = |reason: String| match file.kind {
        RepoKind::Dataset => DataError::NotCached {
            dataset: name.to_string(),
            location: location.clone(),
            cache_dir: settings.cache_dir.clone(),
            reason,
        },
        RepoKind::Model => DataError::ModelNotCached {
            location: location.clone(),
            cache_dir: settings.cache_dir.clone(),
            reason,
        },
    };
    if settings.offline {
        return Err(not_cached("HF_HUB_OFFLINE is set".to_string()));
    }
    let url = file.url(&settings.endpoint);
    probe(settings, &url).map_err(|e| match e {
        Probe::Unreachable(reason) => not_cached(format!(
            "the hub at {} cannot be reached ({reason})",
            settings.endpoint
        )),
        Probe::Status(status) => DataError::HubStatus {
            url: url.clone(),
            status,
            hint: match status {
                401 | 403 => " (a gated or private repository needs HF_TOKEN)",
                404 if file.kind == RepoKind::Model => {
                    " (check the repository, revision and file name given to --model)"
                }
                404 => " (check the repository, revision and file in datasets.toml)",
                _ => "",
            },
        },
    })?;
    download(settings, file, &url)?;
    find_in_cache(&settings.cache_dir, file).ok_or_else(|| DataError::Download {
        url,
        message: format!(
            "the download finished but the file is not in the cache at {}",
            settings.cache_dir.display()
        ),
    })
}

enum Probe {
    Unreachable(String),
    Status(u16),
}

/// One short request so that an unreachable or silent hub fails in seconds: `hf-hub` itself
/// would wait forever on a server that accepts and never answers.
fn probe(settings: &HubSettings, url: &str) -> Result<(), Probe> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(settings.probe_timeout)
        .timeout(settings.probe_timeout)
        .redirects(0)
        .try_proxy_from_env(true)
        .build();
    let mut request = agent.head(url);
    if let Some(token) = &settings.token {
        request = request.set("Authorization", &format!("Bearer {}", token.expose()));
    }
    match request.call() {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(status, _)) if (300..400).contains(&status) => Ok(()),
        Err(ureq::Error::Status(status, _)) => Err(Probe::Status(status)),
        Err(ureq::Error::Transport(t)) => Err(Probe::Unreachable(t.to_string())),
    }
}

fn download(settings: &HubSettings, file: HubFile<'_>, url: &str) -> Result<(), DataError> {
    let api = ApiBuilder::new()
        .with_cache_dir(settings.cache_dir.clone())
        .with_endpoint(settings.endpoint.clone())
        .with_token(settings.token.as_ref().map(|t| t.expose().to_string()))
        .with_progress(true)
        .build()
        .map_err(|e| DataError::Download {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let kind = match file.kind {
        RepoKind::Dataset => RepoType::Dataset,
        RepoKind::Model => RepoType::Model,
    };
    let repo = Repo::with_revision(file.repo.to_string(), kind, file.revision.to_string());
    let name = file.file.to_string();
    let (tx, rx) = mpsc::channel();
    // hf-hub has no deadline of its own; if the server stalls mid-transfer the thread is
    // abandoned and the caller gets an error instead of a hang.
    std::thread::spawn(move || {
        let result = api.repo(repo).download(&name).map_err(|e| e.to_string());
        let _ = tx.send(result);
    });
    match rx.recv_timeout(settings.download_timeout) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(message)) => Err(DataError::Download {
            url: url.to_string(),
            message,
        }),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(DataError::DownloadTimeout {
            url: url.to_string(),
            secs: settings.download_timeout.as_secs(),
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(DataError::Download {
            url: url.to_string(),
            message: "the download thread stopped without a result".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> HubSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn cache_dir_follows_the_python_client() {
        assert_eq!(
            settings(&[("HOME", "/home/u")]).cache_dir,
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
        assert_eq!(
            settings(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]).cache_dir,
            PathBuf::from("/xdg/huggingface/hub")
        );
        assert_eq!(
            settings(&[("HOME", "/home/u"), ("HF_HOME", "/hf")]).cache_dir,
            PathBuf::from("/hf/hub")
        );
        assert_eq!(
            settings(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")]).cache_dir,
            PathBuf::from("/c")
        );
    }

    #[test]
    fn offline_accepts_the_python_spellings() {
        for on in ["1", "true", "YES", "On"] {
            assert!(settings(&[("HF_HUB_OFFLINE", on)]).offline, "{on}");
        }
        for off in ["0", "false", "no"] {
            assert!(!settings(&[("HF_HUB_OFFLINE", off)]).offline, "{off}");
        }
    }

    #[test]
    fn token_never_prints() {
        let s = settings(&[("HF_TOKEN", "hf_secret_value")]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("hf_secret_value"), "{shown}");
        assert_eq!(s.token.as_ref().map(Token::expose), Some("hf_secret_value"));
    }

    #[test]
    fn endpoint_loses_its_trailing_slash() {
        let s = settings(&[("HF_ENDPOINT", "http://127.0.0.1:9/")]);
        let file = HubFile {
            kind: RepoKind::Dataset,
            repo: "a/b",
            revision: "main",
            file: "data/x.parquet",
        };
        assert_eq!(
            file.url(&s.endpoint),
            "http://127.0.0.1:9/datasets/a/b/resolve/main/data/x.parquet"
        );
        let model = HubFile {
            kind: RepoKind::Model,
            ..file
        };
        assert_eq!(
            model.url(&s.endpoint),
            "http://127.0.0.1:9/a/b/resolve/main/data/x.parquet"
        );
        assert_eq!(
            model.repo_dir(Path::new("/c")),
            PathBuf::from("/c/models--a--b")
        );
    }
}
