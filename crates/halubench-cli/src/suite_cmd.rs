//! `halubench suite run FILE`: several judges over one dataset, then their comparison.
//!
//! A suite file is TOML. Top-level keys are `halubench run` flags shared by every judge;
//! each `[[judge]]` table has a `name` (its run directory) and the flags of that judge, which
//! replace shared ones of the same name. Keys are flag names without the dashes, so the file
//! takes exactly what the command line takes, with the same defaults, checks and error
//! messages. A judge may also name the row of the paper's Table 3 it reproduces (`paper`) and
//! the accuracy rule that row is read under (`rule`); the comparison then sets each such judge
//! beside its own row and writes reproduction.md and reproduction.csv:
//!
//! ```toml
//! dataset = "halubench"
//! limit = 100
//!
//! [[judge]]
//! name = "gpt-4o"
//! judge = "openai"
//! model = "gpt-4o"
//! paper = "GPT-4o"
//!
//! [[judge]]
//! name = "ragas"
//! judge = "ragas"
//! model = "gpt-3.5-turbo"
//! ragas-mode = "paper"
//! paper = "RAGAS Faithfulness"
//! rule = "exclude-invalid"
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum as _};
use halubench_data::{HubSettings, Registry};

use crate::loaded_runs;
use crate::lock::DirLock;
use crate::report_page::{self, PaperTarget, Reading, ReportOptions};
use crate::run_cmd::RunEnd;
use crate::run_files::{JOURNAL, MANIFEST};
use crate::{RuleArgs, RunArgs, rules, run_cmd};
use halubench_score::AccuracyRule;

/// `halubench run`'s flags, parsed from a suite entry.
#[derive(Debug, Parser)]
#[command(name = "halubench run")]
struct SuiteEntry {
    #[command(flatten)]
    run: RunArgs,
}

/// A judge of the suite: its name, its `halubench run` arguments, and the row of the
/// paper's Table 3 it reproduces, if any.
#[derive(Debug)]
struct Judge {
    name: String,
    args: RunArgs,
    paper: Option<PaperTarget>,
}

/// What the suite file says besides its judges.
#[derive(Debug)]
struct Suite {
    judges: Vec<Judge>,
    /// The Llama-3 tokenizer for judges reproduced under `lynx-script` (`rule-tokenizer`).
    tokenizer: Option<PathBuf>,
    /// The `--tolerance` of the reproduction verdicts, in percentage points.
    tolerance_pp: f64,
}

/// Keys of the suite file that are not `halubench run` flags: `paper`, `rule` (a judge's,
/// or the default of all at the top level), `rule-tokenizer` (what `--tokenizer` is to
/// `compare --rule lynx-script`) and `tolerance` (top level only).
const PAPER_KEY: &str = "paper";
const RULE_KEY: &str = "rule";

/// Every judge's `run --dry-run`, one after another: no call, no file.
pub fn dry_run(registry: &Registry, hub: &HubSettings, file: &Path) -> anyhow::Result<ExitCode> {
    let suite = read_suite(file)?;
    let total = suite.judges.len();
    let mut failed = Vec::new();
    for (i, mut judge) in suite.judges.into_iter().enumerate() {
        eprintln!("suite: judge {} of {total}: {}", i + 1, judge.name);
        judge.args.dry_run = true;
        if let Err(e) = run_cmd::run(registry, hub, &judge.args) {
            eprintln!("error: suite judge `{}`: {e:#}", judge.name);
            failed.push(judge.name);
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {total} judges cannot run as configured: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(
    registry: &Registry,
    hub: &HubSettings,
    file: &Path,
    out: Option<PathBuf>,
    reports_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let Suite {
        judges,
        tokenizer,
        tolerance_pp,
    } = read_suite(file)?;
    let out = out.unwrap_or_else(|| {
        let stem = file
            .file_stem()
            .map_or("suite".into(), |s| s.to_string_lossy());
        reports_dir.join(format!("suite-{stem}"))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Two suites on one directory would take turns resuming each other's judges.
    let _lock = DirLock::acquire(&out)?;
    let mut finished = Vec::new();
    let mut incomplete = Vec::new();
    let mut failed = Vec::new();
    let total = judges.len();
    let mut targets = Vec::new();
    for (
        i,
        Judge {
            name,
            mut args,
            paper,
        },
    ) in judges.into_iter().enumerate()
    {
        let dir = out.join(&name);
        if dir.join(MANIFEST).is_file() && dir.join(JOURNAL).is_file() {
            args.resume = Some(dir.clone());
        } else {
            args.out = Some(dir.clone());
        }
        eprintln!(
            "suite: judge {} of {total}: {name} -> {}",
            i + 1,
            dir.display()
        );
        match run_cmd::run(registry, hub, &args) {
            Ok(end) => {
                if end == RunEnd::Incomplete {
                    incomplete.push(name);
                }
                finished.push(dir);
                targets.push(paper);
            }
            Err(e) => {
                eprintln!("error: suite judge `{name}`: {e:#}");
                failed.push(name);
            }
        }
    }
    if finished.len() > 1 || (finished.len() == 1 && failed.is_empty()) {
        let mut runs = loaded_runs::load_runs(&finished)?;
        // The suite's own names: unique, and what the user wrote.
        for run in &mut runs {
            if let Some(name) = run.dir.file_name() {
                run.name = name.to_string_lossy().into_owned();
            }
        }
        let warnings = loaded_runs::check_comparable(&runs)?;
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
        let texts = loaded_runs::example_texts(registry, hub, &runs[0].manifest)
            .map_err(|warning| eprintln!("warning: {warning}"))
            .ok();
        let rules: Vec<AccuracyRule> = targets.iter().flatten().map(|t| t.rule).collect();
        let rule_args = RuleArgs {
            rule: AccuracyRule::Paper,
            tokenizer,
        };
        let lengths = rules::prompt_lengths(
            registry,
            hub,
            &runs[0].manifest,
            &rule_args,
            &rules,
            texts.as_ref(),
        )?;
        let comparison_dir = out.join("comparison");
        let markdown = report_page::write_comparison(
            &comparison_dir,
            &format!(
                "suite {} on {}",
                file.display(),
                runs[0].manifest.dataset.name
            ),
            &runs,
            &warnings,
            texts.as_ref(),
            &ReportOptions {
                reading: Reading {
                    rule: AccuracyRule::Paper,
                    lengths: lengths.as_ref(),
                },
                paper_rows: targets,
                tolerance_pp,
                max_examples: 200,
                ..ReportOptions::default()
            },
        )?;
        println!("{markdown}");
        println!("report: {}", comparison_dir.join("report.html").display());
    }
    if !failed.is_empty() {
        bail!(
            "{} of {total} judges failed: {}; run the suite again to resume them",
            failed.len(),
            failed.join(", ")
        )
    }
    if incomplete.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "incomplete: {} of {total} judges have examples without a reply: {}; run the \
             suite again to resume them",
            incomplete.len(),
            incomplete.join(", ")
        );
        Ok(RunEnd::Incomplete.exit_code())
    }
}

fn read_suite(file: &Path) -> anyhow::Result<Suite> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read suite file {}", file.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    let entries = match table.remove("judge") {
        Some(toml::Value::Array(entries)) if !entries.is_empty() => entries,
        _ => bail!(
            "{}: no judges: add one [[judge]] table per judge, each with a name",
            file.display()
        ),
    };
    // Not `tokenizer`: that is `halubench run`'s flag for the local judge.
    let tokenizer = match table.remove("rule-tokenizer") {
        None => None,
        Some(toml::Value::String(path)) => Some(PathBuf::from(path)),
        Some(other) => bail!(
            "{}: `rule-tokenizer` = {other} must be the path of a Llama-3 tokenizer.json",
            file.display()
        ),
    };
    let tolerance_pp = match table.remove("tolerance") {
        None => halubench_score::paper::DEFAULT_TOLERANCE_PP,
        Some(value) => match value.as_float().or(value.as_integer().map(|n| n as f64)) {
            Some(pp) if (0.0..=100.0).contains(&pp) => pp,
            _ => bail!(
                "{}: `tolerance` = {value} must be a number of percentage points from 0 to 100",
                file.display()
            ),
        },
    };
    let default_rule = rule(file, "the top level", table.remove(RULE_KEY))?;
    if table.contains_key(PAPER_KEY) {
        bail!(
            "{}: `paper` belongs in a [[judge]] table: each judge names its own row of Table 3",
            file.display()
        );
    }
    // Checked once here, so that a bad shared key is reported as such.
    flags(file, "the top level", &table)?;
    let mut judges: Vec<Judge> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let where_ = format!("judge #{}", i + 1);
        let toml::Value::Table(mut entry) = entry else {
            bail!("{}: {where_} is not a table", file.display());
        };
        let name = match entry.remove("name") {
            Some(toml::Value::String(name)) if is_dir_name(&name) => name,
            Some(other) => bail!(
                "{}: {where_}: name {other} must be a string of letters, digits, '.', '-' \
                 and '_' (it names the run directory)",
                file.display()
            ),
            None => bail!("{}: {where_} has no name", file.display()),
        };
        if judges.iter().any(|j| j.name == name) {
            bail!("{}: two judges are named `{name}`", file.display());
        }
        let rule = match entry.remove(RULE_KEY) {
            None => default_rule,
            given => rule(file, &where_, given)?,
        };
        let paper = match entry.remove(PAPER_KEY) {
            None => None,
            Some(toml::Value::String(model)) => {
                halubench_score::paper::paper_row(&model).map_err(|e| {
                    anyhow::anyhow!("{}: judge `{name}`: paper: {e}", file.display())
                })?;
                Some(PaperTarget { model, rule })
            }
            Some(other) => bail!(
                "{}: judge `{name}`: paper = {other} must name a row of Table 3, e.g. \"GPT-4o\"",
                file.display()
            ),
        };
        // A judge's own keys replace the shared ones (`json-mode = false`, another `limit`).
        let mut merged = table.clone();
        merged.extend(entry);
        let argv =
            std::iter::once("halubench run".to_string()).chain(flags(file, &where_, &merged)?);
        let parsed = SuiteEntry::try_parse_from(argv).map_err(|e| {
            anyhow::anyhow!(
                "{}: judge `{name}`: {}",
                file.display(),
                e.render().to_string().trim_end()
            )
        })?;
        // A rule that cannot read this judge's replies fails now, not after every run.
        if let Some(target) = &paper
            && let Some(kind) = parsed.run.judge.to_possible_value()
        {
            rules::check_fits(
                target.rule,
                kind.get_name(),
                format_args!("{}: judge `{name}`", file.display()),
            )?;
        }
        judges.push(Judge {
            name,
            args: parsed.run,
            paper,
        });
    }
    Ok(Suite {
        judges,
        tokenizer,
        tolerance_pp,
    })
}

/// A `rule` value (`paper` when absent).
fn rule(file: &Path, where_: &str, value: Option<toml::Value>) -> anyhow::Result<AccuracyRule> {
    match value {
        None => Ok(AccuracyRule::Paper),
        Some(toml::Value::String(name)) => name
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: {where_}: rule: {e}", file.display())),
        Some(other) => bail!(
            "{}: {where_}: rule = {other} must be a string: paper, exclude-invalid or lynx-script",
            file.display()
        ),
    }
}

/// TOML keys and values as command-line flags: `limit = 5` is `--limit 5`, `json-mode =
/// true` is `--json-mode`, a list repeats the flag.
fn flags(file: &Path, where_: &str, table: &toml::Table) -> anyhow::Result<Vec<String>> {
    let mut argv = Vec::new();
    for (key, value) in table {
        if matches!(key.as_str(), "out" | "resume" | "reports-dir") {
            bail!(
                "{}: {where_}: `{key}` is set by the suite (each judge's run goes to \
                 <out>/<name>); use `halubench suite run --out` instead",
                file.display()
            );
        }
        // `--key=value`, so that a value starting with '-' is not read as a flag.
        let flag = format!("--{key}");
        let scalar = |v: &toml::Value| -> anyhow::Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                other => bail!(
                    "{}: {where_}: `{key}` = {other} is not a string or a number",
                    file.display()
                ),
            })
        };
        match value {
            toml::Value::Boolean(true) => argv.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    argv.push(format!("{flag}={}", scalar(item)?));
                }
            }
            other => argv.push(format!("{flag}={}", scalar(other)?)),
        }
    }
    Ok(argv)
}

fn is_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != "comparison"
        && name != crate::lock::LOCK
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
