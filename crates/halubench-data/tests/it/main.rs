//! Integration tests of halubench-data: real parquet/CSV/JSONL files written by the tests,
//! the real shared data, a Hugging Face cache laid out as the Python client lays it out,
//! and a fake hub on 127.0.0.1.

mod fake_hub;
mod files;
mod hub;
mod malformed;
mod repeats;
mod shared_data;

use std::path::{Path, PathBuf};
use std::time::Duration;

use halubench_data::{DataError, Dataset, DatasetSpec, HubSettings};

/// Hub settings for a test: its own cache, a dead endpoint unless given, never the
/// process environment.
pub fn hub_settings(cache_dir: &Path, endpoint: Option<&str>, offline: bool) -> HubSettings {
    HubSettings {
        cache_dir: cache_dir.to_path_buf(),
        endpoint: endpoint.unwrap_or("http://127.0.0.1:9").to_string(),
        offline,
        token: None,
        probe_timeout: Duration::from_secs(2),
        download_timeout: Duration::from_secs(20),
    }
}

pub fn load_file(path: &Path) -> Result<Dataset, DataError> {
    let offline = hub_settings(Path::new("/nonexistent-hf-cache"), None, true);
    halubench_data::load(&DatasetSpec::file(path), &offline)
}

/// `../shared/data/<rel>` from the workspace root.
pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}
