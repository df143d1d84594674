//! `halubench compare`, `gate` and `export`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use halubench_core::markdown_cell;
use halubench_data::{HubSettings, Registry};
use halubench_score::compare::Entrant;
use halubench_score::gate::{GateRule, gate as judge_gate};
use halubench_score::rule;

use crate::history;
use crate::loaded_runs;
use crate::report_page::{self, PaperTarget, Reading, ReportOptions};
use crate::rules;
use crate::{CompareArgs, ExportArgs, GateArgs};

pub fn compare(registry: &Registry, hub: &HubSettings, args: &CompareArgs) -> anyhow::Result<()> {
    let runs = loaded_runs::load_runs(&args.runs)?;
    let warnings = loaded_runs::check_comparable(&runs)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let texts = match loaded_runs::example_texts(registry, hub, &runs[0].manifest) {
        Ok(texts) => Some(texts),
        Err(warning) => {
            eprintln!("warning: {warning}");
            None
        }
    };
    let history_path = args
        .history
        .clone()
        .unwrap_or_else(|| args.reports.dir.join(history::HISTORY));
    let history = read_history(&history_path, args.history.is_some())?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        args.reports.dir.join(format!("compare-{stamp}"))
    });
    let lengths = rules::prepare(
        registry,
        hub,
        &args.rule,
        runs.iter().map(|r| (&r.manifest, r.dir.as_path())),
        texts.as_ref(),
    )?;
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    let markdown = report_page::write_comparison(
        &out,
        &format!(
            "{} on {}",
            names.join(" vs "),
            runs[0].manifest.dataset.name
        ),
        &runs,
        &warnings,
        texts.as_ref(),
        &ReportOptions {
            bootstrap: args.stats.bootstrap(),
            reading: Reading {
                rule: args.rule.rule,
                lengths: lengths.as_ref(),
            },
            // Each run beside the row, under the rule the tables follow.
            paper_rows: runs
                .iter()
                .map(|_| {
                    args.paper.clone().map(|model| PaperTarget {
                        model,
                        rule: args.rule.rule,
                    })
                })
                .collect(),
            tolerance_pp: args.tolerance,
            history: history.as_deref(),
            max_examples: args.max_examples,
        },
    )?;
    println!("{markdown}");
    println!("report: {}", out.join("report.html").display());
    Ok(())
}

/// The history at `path`; a missing file is an error only when the user named it.
pub fn read_history(path: &Path, named: bool) -> anyhow::Result<Option<Vec<history::HistoryLine>>> {
    if !named && !path.is_file() {
        return Ok(None);
    }
    let (lines, warnings) = history::read(path)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(Some(lines))
}

pub fn gate(registry: &Registry, hub: &HubSettings, args: &GateArgs) -> anyhow::Result<ExitCode> {
    let runs = loaded_runs::load_runs(&[args.baseline.clone(), args.candidate.clone()])?;
    let warnings = loaded_runs::check_comparable(&runs)?;
    // A call that got no reply is recorded as INVALID, which is right for accuracy but
    // would make an outage look like a regression.
    for run in &runs {
        let failed = run.judgements.iter().filter(|j| j.error.is_some()).count();
        if failed > 0 {
            bail!(
                "{}: {failed} examples got no reply from the judge; finish the run with \
                 `halubench run --resume {}` (same flags) before gating",
                run.dir.display(),
                run.dir.display()
            );
        }
    }
    let rule = GateRule {
        max_drop_pp: args.max_drop,
        alpha: args.alpha,
        bootstrap: args.stats.bootstrap(),
    };
    let lengths = rules::prepare(
        registry,
        hub,
        &args.rule,
        runs.iter().map(|r| (&r.manifest, r.dir.as_path())),
        None,
    )?;
    let ruled = rule::apply(
        args.rule.rule,
        &[&runs[0].judgements, &runs[1].judgements],
        lengths.as_ref(),
    )?;
    let [baseline, candidate] = [0, 1].map(|i| Entrant {
        name: &runs[i].manifest.run_id,
        judgements: &ruled.runs[i],
    });
    let outcome = judge_gate(&baseline, &candidate, &rule)?;
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for judgement in &ruled.runs[0] {
        *rows.entry(judgement.task.clone()).or_default() += 1;
    }
    let mut markdown = outcome.to_markdown().trim_end().to_string();
    markdown.push_str(&format!(
        "\n\n{}\n",
        markdown_cell(&rule::statement(args.rule.rule, &rows, &ruled.dropped))
    ));
    // Rows without a verdict leave both runs under exclude-invalid, so a candidate that
    // turns wrong answers into INVALID ones would pass: say so when it has more of them.
    let invalid = |run: &loaded_runs::LoadedRun| {
        run.judgements
            .iter()
            .filter(|j| j.verdict == halubench_core::Verdict::Invalid)
            .count()
    };
    let (before, after) = (invalid(&runs[0]), invalid(&runs[1]));
    let mut warnings = warnings;
    if args.rule.rule == rule::AccuracyRule::ExcludeInvalid && after > before {
        warnings.push(format!(
            "the candidate has {after} rows without a verdict against the baseline's {before}; \
             exclude-invalid leaves them out of this gate, so check them with --rule paper"
        ));
    }
    for warning in &warnings {
        markdown.push_str(&format!("\n**Warning:** {warning}\n"));
    }
    println!("{markdown}");
    if let Some(path) = &args.summary {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open --summary {}", path.display()))?;
        file.write_all(format!("{markdown}\n").as_bytes())
            .with_context(|| format!("cannot write --summary {}", path.display()))?;
    }
    Ok(if outcome.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// lm-evaluation-harness writes one `samples_<task>_<time>.jsonl` per task, one line per
/// document: `doc_id`, `doc`, `target`, `arguments`, `resps`, `filtered_resps` and a field per
/// metric. The same shape here, so its readers (and Zeno-style viewers) open our runs.
pub fn export(registry: &Registry, hub: &HubSettings, args: &ExportArgs) -> anyhow::Result<()> {
    let run = loaded_runs::load_run(&args.run)?;
    let texts = loaded_runs::example_texts(registry, hub, &run.manifest)
        .map_err(|warning| eprintln!("warning: {warning}"))
        .ok();
    let out = args.out.clone().unwrap_or_else(|| args.run.join("lm-eval"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut by_task: std::collections::BTreeMap<&str, Vec<&halubench_core::Judgement>> =
        Default::default();
    for judgement in &run.judgements {
        by_task.entry(&judgement.task).or_default().push(judgement);
    }
    let mut written: Vec<std::path::PathBuf> = Vec::new();
    for (task, mut judgements) in by_task {
        // By id, not journal order (which is completion order), so doc_id is stable.
        judgements.sort_by(|a, b| a.id.cmp(&b.id));
        let mut text = String::new();
        for (doc_id, j) in judgements.iter().enumerate() {
            let example = texts.as_ref().and_then(|t| t.get(&j.id));
            let line = serde_json::json!({
                "doc_id": doc_id,
                "doc": {
                    "id": j.id,
                    "source_ds": j.task,
                    "question": example.map(|e| &e.question),
                    "passage": example.map(|e| &e.passage),
                    "answer": example.map(|e| &e.answer),
                    "label": j.label,
                },
                "target": j.label,
                "arguments": [],
                "resps": [[j.raw]],
                "filtered_resps": [j.verdict],
                "acc": if j.is_correct() { 1.0 } else { 0.0 },
                "invalid": j.verdict == halubench_core::Verdict::Invalid,
                "invalid_reason": j.invalid_reason,
                "model": j.model,
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        let mut path = out.join(format!("samples_{}.jsonl", safe_file_name(task)));
        // Two task names that differ only in characters a file name cannot hold.
        let mut n = 2;
        while written.contains(&path) {
            path = out.join(format!("samples_{}_{n}.jsonl", safe_file_name(task)));
            n += 1;
        }
        crate::run_files::write_atomically(&path, &text)?;
        written.push(path);
    }
    for path in &written {
        println!("{}", path.display());
    }
    Ok(())
}

/// A task name as a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`.
fn safe_file_name(task: &str) -> String {
    task.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
