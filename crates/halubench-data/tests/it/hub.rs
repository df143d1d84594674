//! The hub code against a cache laid out as the Python client lays it out, and against a
//! fake hub on 127.0.0.1.

use std::path::{Path, PathBuf};

use halubench_data::{DataError, DatasetSpec, Registry};

use crate::files::{self, GOOD};
use crate::{fake_hub, hub_settings};

const REPO: &str = "PatronusAI/HaluBench";
const FILE: &str = "data/test-00000-of-00001.parquet";
const COMMIT: &str = "5966a87929f51c204ab3cbef986b449495cc97b6";

fn good_parquet_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = files::write_parquet(dir.path(), "x.parquet", &mut files::frame(&GOOD));
    std::fs::read(path).expect("read")
}

fn hub_spec(revision: &str) -> DatasetSpec {
    let toml =
        format!("[hb]\nhub = \"{REPO}\"\nrevision = \"{revision}\"\nfile = \"{FILE}\"\nrows = 4\n");
    Registry::parse(&toml, "test", Path::new(""))
        .expect("registry")
        .resolve("hb")
        .expect("entry")
}

/// Lays the file out as `huggingface_hub` does: a blob named by its sha256, a relative
/// symlink from the snapshot, and a ref naming the commit.
fn seed_cache(cache: &Path, bytes: &[u8], blob_name: &str, ref_text: &str) -> PathBuf {
    let repo_dir = cache.join("datasets--PatronusAI--HaluBench");
    std::fs::create_dir_all(repo_dir.join("blobs")).expect("mkdir");
    std::fs::create_dir_all(repo_dir.join("refs")).expect("mkdir");
    let snapshot_dir = repo_dir.join("snapshots").join(COMMIT).join("data");
    std::fs::create_dir_all(&snapshot_dir).expect("mkdir");
    std::fs::write(repo_dir.join("blobs").join(blob_name), bytes).expect("blob");
    let link = snapshot_dir.join("test-00000-of-00001.parquet");
    std::os::unix::fs::symlink(format!("../../../blobs/{blob_name}"), &link).expect("symlink");
    std::fs::write(repo_dir.join("refs").join("main"), ref_text).expect("ref");
    link
}

#[test]
fn a_python_style_cache_is_used_offline_and_verified_against_the_blob_digest() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = good_parquet_bytes();
    let link = seed_cache(
        cache.path(),
        &bytes,
        &halubench_data::sha256_hex(&bytes),
        COMMIT,
    );
    let settings = hub_settings(cache.path(), None, true);
    let dataset = halubench_data::load(&hub_spec(COMMIT), &settings).expect("cached");
    assert_eq!(dataset.examples.len(), 4);
    assert_eq!(dataset.info.source, link.display().to_string());
    assert_eq!(dataset.info.revision.as_deref(), Some(COMMIT));
    assert!(dataset.warnings.is_empty(), "{:?}", dataset.warnings);
}

#[test]
fn a_branch_revision_goes_through_refs_even_with_a_trailing_newline() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = good_parquet_bytes();
    seed_cache(
        cache.path(),
        &bytes,
        &halubench_data::sha256_hex(&bytes),
        &format!("{COMMIT}\n"),
    );
    let settings = hub_settings(cache.path(), None, true);
    let dataset = halubench_data::load(&hub_spec("main"), &settings).expect("via refs/main");
    assert_eq!(dataset.examples.len(), 4);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = good_parquet_bytes();
    seed_cache(cache.path(), &bytes, &"ab".repeat(32), COMMIT);
    let settings = hub_settings(cache.path(), None, true);
    let err = halubench_data::load(&hub_spec(COMMIT), &settings).expect_err("corrupt");
    assert!(matches!(err, DataError::Sha256Mismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("hub's digest"), "{err}");
}

#[test]
fn offline_and_not_cached_names_the_cache_and_the_way_out() {
    let cache = tempfile::tempdir().expect("tempdir");
    let settings = hub_settings(cache.path(), None, true);
    let err = halubench_data::load(&hub_spec(COMMIT), &settings).expect_err("not cached");
    let msg = err.to_string();
    assert!(matches!(err, DataError::NotCached { .. }), "{msg}");
    assert!(msg.contains(&cache.path().display().to_string()), "{msg}");
    assert!(
        msg.contains("HF_HUB_OFFLINE") && msg.contains("--dataset"),
        "{msg}"
    );
}

#[test]
fn an_unreachable_hub_is_a_clear_error() {
    let cache = tempfile::tempdir().expect("tempdir");
    let endpoint = fake_hub::closed_port_endpoint();
    let settings = hub_settings(cache.path(), Some(&endpoint), false);
    let err = halubench_data::load(&hub_spec(COMMIT), &settings).expect_err("unreachable");
    let msg = err.to_string();
    assert!(matches!(err, DataError::NotCached { .. }), "{msg}");
    assert!(
        msg.contains("cannot be reached") && msg.contains(&endpoint),
        "{msg}"
    );
}

#[test]
fn a_silent_hub_gives_up_after_the_probe_timeout_instead_of_hanging() {
    let cache = tempfile::tempdir().expect("tempdir");
    let (endpoint, _server) = fake_hub::silent();
    let settings = hub_settings(cache.path(), Some(&endpoint), false);
    let err = halubench_data::load(&hub_spec(COMMIT), &settings).expect_err("silent");
    let msg = err.to_string();
    assert!(matches!(err, DataError::NotCached { .. }), "{msg}");
    assert!(msg.to_lowercase().contains("timed out"), "{msg}");
}

#[test]
fn downloads_from_a_fake_hub_into_the_standard_layout_then_works_offline() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = good_parquet_bytes();
    let hub = fake_hub::serve(REPO, FILE, bytes.clone(), COMMIT);
    let settings = hub_settings(cache.path(), Some(&hub.endpoint), false);

    let dataset = halubench_data::load(&hub_spec(COMMIT), &settings).expect("download");
    assert_eq!(dataset.examples.len(), 4);
    assert!(
        dataset.warnings.is_empty(),
        "verified by the hub's digest: {:?}",
        dataset.warnings
    );

    let repo_dir = cache.path().join("datasets--PatronusAI--HaluBench");
    let blob = repo_dir
        .join("blobs")
        .join(halubench_data::sha256_hex(&bytes));
    assert_eq!(std::fs::read(&blob).expect("blob"), bytes);
    let snapshot = repo_dir.join("snapshots").join(COMMIT).join(FILE);
    assert!(
        snapshot.is_symlink(),
        "snapshot entry is a link to the blob"
    );
    let requests = hub.requests.lock().expect("lock").clone();
    assert!(
        requests
            .iter()
            .all(|r| r.contains(&format!("/datasets/{REPO}/resolve/{COMMIT}/{FILE}"))),
        "{requests:?}"
    );

    // Offline now, with the fake hub still up: the cache answers and nothing is requested.
    let before = requests.len();
    let offline = hub_settings(cache.path(), Some(&hub.endpoint), true);
    halubench_data::load(&hub_spec(COMMIT), &offline).expect("cached");
    assert_eq!(hub.requests.lock().expect("lock").len(), before);
}

#[test]
fn a_missing_file_on_the_hub_is_reported_with_its_status() {
    let cache = tempfile::tempdir().expect("tempdir");
    let hub = fake_hub::serve(REPO, "data/other.parquet", good_parquet_bytes(), COMMIT);
    let settings = hub_settings(cache.path(), Some(&hub.endpoint), false);
    let err = halubench_data::load(&hub_spec(COMMIT), &settings).expect_err("404");
    assert!(
        matches!(err, DataError::HubStatus { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(FILE), "{err}");
}
