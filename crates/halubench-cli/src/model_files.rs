//! `--model` for the local judge: a local path, or a Hugging Face model repository resolved
//! through the same cache and offline rules as datasets.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use halubench_data::hub::{self, HubFile, RepoKind};
use halubench_data::{DataError, HubSettings};

/// Files of a safetensors checkpoint besides the weights; those not in the repository are
/// simply absent.
const OPTIONAL_FILES: &[&str] = &[
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
];

/// A local `.gguf` file or model directory as is; `owner/name/file.gguf` as that file of a hub
/// repository; `owner/name` as a safetensors checkpoint (config, tokenizer and every shard).
pub fn resolve(spec: &str, revision: &str, hub: &HubSettings) -> anyhow::Result<PathBuf> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let parts: Vec<&str> = spec.split('/').collect();
    let looks_like_repo = parts.len() >= 2
        && !spec.starts_with(['.', '/', '~'])
        && parts.iter().all(|p| !p.is_empty());
    if !looks_like_repo {
        bail!(
            "--model {spec}: no such file or directory (expected a .gguf file, a model \
             directory, or a hub repository such as owner/name or owner/name/file.gguf)"
        );
    }
    let repo = format!("{}/{}", parts[0], parts[1]);
    let fetch = |file: &str| {
        hub::fetch(
            hub,
            spec,
            HubFile {
                kind: RepoKind::Model,
                repo: &repo,
                revision,
                file,
            },
        )
        .map(|cached| cached.path)
    };
    if parts.len() > 2 {
        let file = parts[2..].join("/");
        return fetch(&file).with_context(|| format!("--model {spec}"));
    }

    let config = fetch("config.json").with_context(|| {
        format!("--model {spec}: a repository of GGUF files needs the file named: {spec}/FILE.gguf")
    })?;
    fetch("tokenizer.json").with_context(|| format!("--model {spec}"))?;
    for optional in OPTIONAL_FILES {
        match fetch(optional) {
            Ok(_) | Err(DataError::HubStatus { status: 404, .. }) => {}
            // Without tokenizer_config.json the model falls back to the built-in Llama 3
            // chat template: fine for Lynx, silently wrong for another model.
            Err(e) => eprintln!(
                "warning: --model {spec}: {optional} not fetched, so the model loads \
                 without it: {e}"
            ),
        }
    }
    match fetch("model.safetensors.index.json") {
        Ok(index) => {
            for shard in halubench_candle::shard_names(&index)? {
                fetch(&shard).with_context(|| format!("--model {spec}: shard {shard}"))?;
            }
        }
        Err(_) => {
            fetch("model.safetensors").with_context(|| format!("--model {spec}"))?;
        }
    }
    Ok(config
        .parent()
        .context("a cached file has a parent directory")?
        .to_path_buf())
}
