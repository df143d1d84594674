//! `halubench run` and `halubench score`: the straight line from settings to a report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use halubench_core::{ACCURACY_RULE, RunManifest, Selection};
use halubench_data::{HubSettings, Registry, SelectOptions};
use halubench_judge::{BaselineJudge, Judge};
use halubench_score::Summary;

use crate::report::{self, JOURNAL};
use crate::runner::{self, Journal};
use crate::{JudgeKind, RunArgs};

pub fn run(registry: &Registry, hub: &HubSettings, args: &RunArgs) -> anyhow::Result<()> {
    let judge = build_judge(args)?;
    let spec = registry.resolve(&args.dataset)?;
    let dataset = halubench_data::load(&spec, hub)?;
    for warning in &dataset.warnings {
        eprintln!("warning: {warning}");
    }
    let options = SelectOptions {
        tasks: args.tasks.clone(),
        limit: args.limit,
        seed: args.seed,
    };
    let examples = halubench_data::select(dataset.examples, &options)?;
    if examples.is_empty() {
        bail!("nothing to judge: the selection is empty");
    }

    let started_at = now();
    let run_id = run_id(&started_at, &args.judge, &dataset.info.name);
    let dir = prepare_dir(args, &run_id)?;
    let mut manifest = RunManifest {
        run_id: dir
            .file_name()
            .map_or(run_id.clone(), |n| n.to_string_lossy().into_owned()),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        accuracy_rule: ACCURACY_RULE.to_string(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: None,
        dataset: dataset.info,
        selection: Selection {
            tasks: options.tasks,
            limit: options.limit,
            seed: options.seed,
            examples: examples.len(),
        },
        judge: judge.info(),
    };
    // Written before judging so that an interrupted run can still be re-scored.
    report::write_manifest(&dir, &manifest)?;
    let mut journal = Journal::create(&dir.join(JOURNAL))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let judgements = runtime.block_on(async {
        judge.health().await.context("the judge is not ready")?;
        runner::run(
            judge.clone(),
            Arc::new(examples),
            args.concurrency as usize,
            &mut journal,
        )
        .await
    })?;

    manifest.finished_at = Some(now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    report::write_manifest(&dir, &manifest)?;
    let summary = Summary::from_judgements(&judgements);
    let markdown = report::write_summaries(&dir, &manifest, &summary)?;
    println!("{markdown}");
    println!("report: {}", dir.display());
    Ok(())
}

pub fn rescore(dir: &Path) -> anyhow::Result<()> {
    let manifest = report::read_manifest(dir)?;
    let (judgements, warning) = runner::read_journal(&dir.join(JOURNAL))?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    if judgements.len() < manifest.selection.examples {
        eprintln!(
            "warning: the journal holds {} of the run's {} examples; the run did not finish",
            judgements.len(),
            manifest.selection.examples
        );
    }
    let summary = Summary::from_judgements(&judgements);
    println!("{}", report::write_summaries(dir, &manifest, &summary)?);
    println!("report: {}", dir.display());
    Ok(())
}

fn build_judge(args: &RunArgs) -> anyhow::Result<Arc<dyn Judge>> {
    Ok(match args.judge {
        JudgeKind::Baseline => {
            Arc::new(BaselineJudge::new(args.threshold).context("invalid --threshold")?)
        }
    })
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn run_id(started: &chrono::DateTime<chrono::Utc>, judge: &JudgeKind, dataset: &str) -> String {
    let judge = format!("{judge:?}").to_lowercase();
    // A path given as --dataset names the run by its directory and file stem, since shard
    // names like test-00000-of-00001 say little on their own.
    let path = Path::new(dataset);
    let dataset = match (path.parent().and_then(Path::file_name), path.file_stem()) {
        (Some(parent), Some(stem)) => {
            format!("{}-{}", parent.to_string_lossy(), stem.to_string_lossy())
        }
        (None, Some(stem)) => stem.to_string_lossy().into_owned(),
        _ => dataset.to_string(),
    };
    let slug: String = dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{}-{judge}-{slug}", started.format("%Y%m%d-%H%M%S"))
}

/// The run directory: `--out`, or a fresh `<reports-dir>/<run-id>` (suffixed when two runs
/// start in the same second). Never one that already holds a journal.
fn prepare_dir(args: &RunArgs, run_id: &str) -> anyhow::Result<PathBuf> {
    let dir = match &args.out {
        Some(out) => {
            if out.join(JOURNAL).exists() {
                bail!(
                    "{} already holds a run ({JOURNAL}); choose another --out or remove it",
                    out.display()
                );
            }
            out.clone()
        }
        None => {
            let mut dir = args.reports_dir.join(run_id);
            let mut n = 2;
            while dir.exists() {
                dir = args.reports_dir.join(format!("{run_id}-{n}"));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    Ok(dir)
}
