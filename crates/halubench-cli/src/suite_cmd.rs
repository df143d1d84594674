//! `halubench suite run FILE`: several judges over one dataset, then their comparison.
//!
//! A suite file is TOML. Top-level keys are `halubench run` flags shared by every judge;
//! each `[[judge]]` table has a `name` (its run directory) and the flags of that judge, which
//! replace shared ones of the same name. Keys are flag names without the dashes, so the file takes exactly what the command line takes,
//! with the same defaults, checks and error messages:
//!
//! ```toml
//! dataset = "halubench"
//! limit = 100
//!
//! [[judge]]
//! name = "gpt-4o"
//! judge = "openai"
//! model = "gpt-4o"
//!
//! [[judge]]
//! name = "lynx-8b"
//! judge = "openai"
//! model = "PatronusAI/Llama-3-Patronus-Lynx-8B-Instruct"
//! base-url = "http://localhost:8000/v1"
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use halubench_data::{HubSettings, Registry};

use crate::loaded_runs;
use crate::lock::DirLock;
use crate::report_page::{self, ReportOptions};
use crate::run_cmd::RunEnd;
use crate::run_files::{JOURNAL, MANIFEST};
use crate::{RunArgs, run_cmd};

/// `halubench run`'s flags, parsed from a suite entry.
#[derive(Debug, Parser)]
#[command(name = "halubench run")]
struct SuiteEntry {
    #[command(flatten)]
    run: RunArgs,
}

/// A judge of the suite: its name and its `halubench run` arguments.
#[derive(Debug)]
struct Judge {
    name: String,
    args: RunArgs,
}

pub fn run(
    registry: &Registry,
    hub: &HubSettings,
    file: &Path,
    out: Option<PathBuf>,
    reports_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let judges = read_suite(file)?;
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
    for (i, Judge { name, mut args }) in judges.into_iter().enumerate() {
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
            Ok(RunEnd::Complete) => finished.push(dir),
            Ok(RunEnd::Incomplete) => {
                incomplete.push(name);
                finished.push(dir);
            }
            Err(e) => {
                eprintln!("error: suite judge `{name}`: {e:#}");
                failed.push(name);
            }
        }
    }
    if finished.len() > 1 || (finished.len() == 1 && failed.is_empty()) {
        let runs = loaded_runs::load_runs(&finished)?;
        let warnings = loaded_runs::check_comparable(&runs)?;
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
        let texts = loaded_runs::example_texts(registry, hub, &runs[0].manifest)
            .map_err(|warning| eprintln!("warning: {warning}"))
            .ok();
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

fn read_suite(file: &Path) -> anyhow::Result<Vec<Judge>> {
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
        judges.push(Judge {
            name,
            args: parsed.run,
        });
    }
    Ok(judges)
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
