//! Finished run directories read back for `compare`, `gate`, `export`, `panel` and the
//! reports: the manifest and the latest judgement of each example, a name for each judge,
//! the check that runs can be compared example by example, and the examples' texts.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::bail;
use halubench_core::{Example, Judgement, RunManifest};
use halubench_data::{HubSettings, Registry};

use crate::run_files::{self, JOURNAL};
use crate::runner;

/// A run directory read back: its manifest and the latest judgement of each example.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub dir: PathBuf,
    pub manifest: RunManifest,
    pub judgements: Vec<Judgement>,
    /// What tables and charts call the judge.
    pub name: String,
}

pub fn load_run(dir: &Path) -> anyhow::Result<LoadedRun> {
    let manifest = run_files::read_manifest(dir)?;
    let (judgements, warning) = runner::read_journal(&dir.join(JOURNAL))?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    let judgements = runner::latest_per_id(judgements);
    if judgements.len() < manifest.selection.examples {
        eprintln!(
            "warning: {}: the journal holds {} of the run's {} examples; the run did not finish",
            dir.display(),
            judgements.len(),
            manifest.selection.examples
        );
    }
    Ok(LoadedRun {
        dir: dir.to_path_buf(),
        name: judge_name(&manifest),
        manifest,
        judgements,
    })
}

/// `openai gpt-4o`, `local Lynx-8B`, `baseline`: the judge kind and its model, if any.
pub fn judge_name(manifest: &RunManifest) -> String {
    let settings = &manifest.judge.settings;
    match settings.get("model_name").or_else(|| settings.get("model")) {
        Some(model) => format!("{} {model}", manifest.judge.name),
        None => manifest.judge.name.clone(),
    }
}

/// Loads every run, naming each one apart from the others.
pub fn load_runs(dirs: &[PathBuf]) -> anyhow::Result<Vec<LoadedRun>> {
    let mut runs = dirs
        .iter()
        .map(|dir| load_run(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Runs of one judge are told apart by the settings that differ between them
    // (`baseline threshold=0.5`), else by when they started (the run id's stamp).
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    for (i, name) in names.iter().enumerate() {
        let namesakes: Vec<usize> = (0..runs.len()).filter(|&j| &names[j] == name).collect();
        if namesakes.len() < 2 {
            continue;
        }
        let settings = |j: usize| &runs[j].manifest.judge.settings;
        let differing: Vec<String> = settings(i)
            .iter()
            .filter(|(key, value)| {
                namesakes
                    .iter()
                    .any(|&j| settings(j).get(*key) != Some(*value))
            })
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let suffix = if differing.is_empty() {
            runs[i].manifest.run_id.chars().take(15).collect()
        } else {
            differing.join(" ")
        };
        runs[i].name = format!("{name} {suffix}");
    }
    // Still alike (the same run twice, say): numbered.
    for i in 1..runs.len() {
        let twins = (0..i).filter(|&j| runs[j].name == runs[i].name).count();
        if twins > 0 {
            runs[i].name = format!("{} #{}", runs[i].name, twins + 1);
        }
    }
    Ok(runs)
}

/// Refuses runs that cannot be compared example by example (another dataset file or
/// revision, other examples); returns warnings for what can be compared but should be read
/// with care (another prompt).
pub fn check_comparable(runs: &[LoadedRun]) -> anyhow::Result<Vec<String>> {
    let Some(first) = runs.first() else {
        bail!("no runs given");
    };
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let ids = |run: &LoadedRun| -> BTreeSet<String> {
        run.judgements.iter().map(|j| j.id.clone()).collect()
    };
    let first_ids = ids(first);
    let (a, ad) = (&first.name, &first.manifest.dataset);
    for run in &runs[1..] {
        let (b, bd) = (&run.name, &run.manifest.dataset);
        if ad.sha256 != bd.sha256 {
            refusals.push(format!(
                "`{a}` judged {} (sha256 {}) but `{b}` judged {} (sha256 {})",
                ad.name, ad.sha256, bd.name, bd.sha256
            ));
        }
        if ad.revision != bd.revision {
            refusals.push(format!(
                "`{a}` used dataset revision {} but `{b}` used {}",
                ad.revision.as_deref().unwrap_or("(none)"),
                bd.revision.as_deref().unwrap_or("(none)")
            ));
        }
        let run_ids = ids(run);
        if run_ids != first_ids {
            let only: Vec<&String> = first_ids.symmetric_difference(&run_ids).collect();
            refusals.push(format!(
                "`{a}` judged {} examples and `{b}` {}; {} examples are in only one of them \
                 (first: `{}`); compare runs with the same --tasks, --limit and --seed",
                first_ids.len(),
                run_ids.len(),
                only.len(),
                only.first().map_or("", |s| s.as_str())
            ));
        }
        let (pa, pb) = (
            &first.manifest.judge.prompt_sha256,
            &run.manifest.judge.prompt_sha256,
        );
        if pa != pb && pa.is_some() && pb.is_some() {
            warnings.push(format!(
                "`{a}` and `{b}` were given different prompts (sha256 {} and {}): differences \
                 may come from the prompt, not the judge",
                short(pa.as_deref()),
                short(pb.as_deref())
            ));
        }
    }
    if !refusals.is_empty() {
        bail!(
            "the runs are not comparable:\n  - {}",
            refusals.join("\n  - ")
        );
    }
    Ok(warnings)
}

fn short(hash: Option<&str>) -> String {
    hash.map_or("none".to_string(), |h| h.chars().take(12).collect())
}

/// The examples of a run's dataset by id, when the dataset can still be loaded and is the
/// same file; otherwise a warning saying why passages are left out.
pub fn example_texts(
    registry: &Registry,
    hub: &HubSettings,
    manifest: &RunManifest,
) -> Result<HashMap<String, Example>, String> {
    let dataset = &manifest.dataset;
    let loaded = registry
        .resolve(&dataset.name)
        .map_err(|e| e.to_string())
        .and_then(|spec| halubench_data::load(&spec, hub).map_err(|e| e.to_string()))
        .map_err(|e| format!("passages are not shown: dataset {}: {e}", dataset.name))?;
    if loaded.info.sha256 != dataset.sha256 {
        return Err(format!(
            "passages are not shown: dataset {} has changed since the run (sha256 {} now, {} then)",
            dataset.name, loaded.info.sha256, dataset.sha256
        ));
    }
    Ok(loaded
        .examples
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect())
}
