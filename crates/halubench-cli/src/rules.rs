//! Accuracy rules (`--rule`) in the commands: which runs a rule can read, and each example's
//! Lynx prompt length in Llama-3 tokens, which the `lynx-script` rule drops rows by.
//!
//! The official script counted the user message (the rendered Lynx prompt) with the Llama-3
//! tokenizer, as `len(tokenizer.encode(message))` does; so does this, with the same
//! `tokenizer.json`, whatever prompt the run itself used: the rule reproduces the script's
//! selection of rows.

use std::collections::HashMap;
use std::path::Path;

use anyhow::anyhow;
use halubench_core::{Example, RunManifest};
use halubench_data::{HubSettings, Registry};
use halubench_score::AccuracyRule;
use halubench_score::rule::PromptLengths;

use crate::RuleArgs;
use crate::loaded_runs;

/// Where the tokenizer comes from when `--tokenizer` does not say: Lynx-8B's own.
#[cfg(feature = "local")]
const LYNX_TOKENIZER: &str = "PatronusAI/Llama-3-Patronus-Lynx-8B-Instruct/tokenizer.json";

/// The judges whose replies are text in the Lynx format, which a parser can read again.
pub const LYNX_REPLY_JUDGES: [&str; 2] = ["openai", "local"];

/// Refuses to read a run under a rule that does not fit its judge: `lynx-script` re-reads
/// reply text in the Lynx format, which only [`LYNX_REPLY_JUDGES`] write. `what` names the
/// run (its directory, or a suite's judge).
pub fn check_fits(
    rule: AccuracyRule,
    judge: &str,
    what: impl std::fmt::Display,
) -> anyhow::Result<()> {
    if rule == AccuracyRule::LynxScript && !LYNX_REPLY_JUDGES.contains(&judge) {
        anyhow::bail!(
            "--rule lynx-script reads Lynx-format replies, and {} holds the {judge} judge's; \
             use paper or exclude-invalid",
            what
        );
    }
    Ok(())
}

/// What `score`, `compare` and `gate` do before reading runs under `--rule`: refuse a run
/// the rule does not fit (each of `runs`, a manifest and its directory), then give the prompt
/// lengths the rule needs, if it needs any.
pub fn prepare<'a>(
    registry: &Registry,
    hub: &HubSettings,
    args: &RuleArgs,
    runs: impl IntoIterator<Item = (&'a RunManifest, &'a Path)>,
    texts: Option<&HashMap<String, Example>>,
) -> anyhow::Result<Option<PromptLengths>> {
    let mut first = None;
    for (manifest, dir) in runs {
        check_fits(args.rule, &manifest.judge.name, dir.display())?;
        first.get_or_insert(manifest);
    }
    match first {
        Some(manifest) => prompt_lengths(registry, hub, manifest, args, &[args.rule], texts),
        None => Ok(None),
    }
}

/// The prompt lengths of the run's examples when one of `rules` needs them, else `None`.
/// `texts` are the examples when the caller has loaded them already.
pub fn prompt_lengths(
    registry: &Registry,
    hub: &HubSettings,
    manifest: &RunManifest,
    args: &RuleArgs,
    rules: &[AccuracyRule],
    texts: Option<&HashMap<String, Example>>,
) -> anyhow::Result<Option<PromptLengths>> {
    if !rules.iter().any(|r| r.needs_prompt_lengths()) {
        return Ok(None);
    }
    let loaded;
    let texts = match texts {
        Some(texts) => texts,
        None => {
            loaded = loaded_runs::example_texts(registry, hub, manifest)
                .map_err(|why| anyhow!("--rule lynx-script needs the examples' texts: {why}"))?;
            &loaded
        }
    };
    let template = halubench_judge::PromptTemplate::lynx();
    let count = counter(args.tokenizer.as_deref(), hub)?;
    let mut lengths = PromptLengths::with_capacity(texts.len());
    for (id, example) in texts {
        lengths.insert(id.clone(), count(&template.render(example))?);
    }
    Ok(Some(lengths))
}

type Count = Box<dyn Fn(&str) -> anyhow::Result<usize>>;

#[cfg(feature = "local")]
fn counter(tokenizer: Option<&Path>, hub: &HubSettings) -> anyhow::Result<Count> {
    let path = match tokenizer {
        Some(path) => path.to_path_buf(),
        None => crate::model_files::resolve(LYNX_TOKENIZER, "main", hub).map_err(|e| {
            anyhow!("--rule lynx-script: {e:#}; or name a Llama-3 tokenizer.json with --tokenizer")
        })?,
    };
    let codec = halubench_candle::TextCodec::from_file(&path, None, &[])
        .map_err(|e| anyhow!("--tokenizer {}: {e}", path.display()))?;
    Ok(Box::new(move |text| {
        Ok(codec.count_with_special_tokens(text)?)
    }))
}

#[cfg(not(feature = "local"))]
fn counter(_tokenizer: Option<&Path>, _hub: &HubSettings) -> anyhow::Result<Count> {
    anyhow::bail!(
        "--rule lynx-script counts tokens with the local judge's tokenizer, and this halubench \
         was built without it (--no-default-features)"
    )
}
