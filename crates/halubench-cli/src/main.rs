//! `halubench`: judge HaluBench-style datasets and write per-task accuracy reports.
//!
//! The binary owns everything that touches the user: flags, settings, the progress bar, the
//! run directory and its journal. Datasets, judges and scoring live in library crates.

mod datasets_cmd;
mod report;
mod run_cmd;
mod runner;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use halubench_data::{HubSettings, Registry};

/// Benchmark hallucination judges on HaluBench and datasets shaped like it.
///
/// A run loads a dataset, asks a judge whether each answer is faithful to its passage,
/// appends every judgement to a journal as it arrives, and writes per-task accuracy in the
/// layout of the Lynx paper's Table 3.
#[derive(Debug, Parser)]
#[command(name = "halubench", version, propagate_version = true)]
struct Cli {
    /// Dataset registry to use instead of ./datasets.toml (or the built-in copy when there
    /// is none).
    #[arg(long, global = true, env = "HALUBENCH_REGISTRY", value_name = "FILE")]
    registry: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Judge a dataset and write a report to reports/<run-id>/.
    Run(RunArgs),
    /// Rebuild the summaries of a run from its journal, without calling any judge.
    Score {
        /// A run directory (holding judgements.jsonl and run.toml).
        run_dir: PathBuf,
    },
    /// List, download or describe datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
}

#[derive(Debug, Subcommand)]
enum DatasetsCommand {
    /// Show the registry's datasets and whether each is available locally.
    List,
    /// Download a registry dataset into the Hugging Face cache and verify it.
    Fetch {
        /// A name from the registry.
        name: String,
    },
    /// Rows per task and label, and passage lengths.
    Inspect {
        /// A registry name or a path to a parquet, JSONL or CSV file.
        dataset: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JudgeKind {
    /// Built-in lexical support check; needs no model. See the README.
    Baseline,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A registry name (see `halubench datasets list`) or a path to a parquet, JSONL or
    /// CSV file with HaluBench's columns. `demo` is built in and needs no files.
    #[arg(short, long, default_value = "demo", value_name = "NAME|PATH")]
    dataset: String,

    /// Which judge answers.
    #[arg(short, long, value_enum, default_value_t = JudgeKind::Baseline)]
    judge: JudgeKind,

    /// Baseline judge: share of the answer's content terms the passage must contain for a
    /// PASS (0 to 1).
    #[arg(long, default_value_t = halubench_judge::baseline::DEFAULT_THRESHOLD, value_name = "SHARE")]
    threshold: f64,

    /// Only these tasks (`source_ds` values, case-sensitive), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "TASK,...")]
    tasks: Vec<String>,

    /// At most N examples per task, sampled deterministically from --seed.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Seed of the --limit sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// How many judge calls may be in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,

    /// Write the report here instead of <reports-dir>/<run-id>/. Must not already hold a run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Parent directory of run directories.
    #[arg(
        long,
        default_value = "reports",
        env = "HALUBENCH_REPORTS_DIR",
        value_name = "DIR"
    )]
    reports_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let registry = load_registry(cli.registry.as_deref())?;
    let hub = HubSettings::from_env();
    match cli.command {
        Command::Run(args) => run_cmd::run(&registry, &hub, &args),
        Command::Score { run_dir } => run_cmd::rescore(&run_dir),
        Command::Datasets(DatasetsCommand::List) => datasets_cmd::list(&registry, &hub),
        Command::Datasets(DatasetsCommand::Fetch { name }) => {
            datasets_cmd::fetch(&registry, &hub, &name)
        }
        Command::Datasets(DatasetsCommand::Inspect { dataset }) => {
            datasets_cmd::inspect(&registry, &hub, &dataset)
        }
    }
}

fn load_registry(explicit: Option<&std::path::Path>) -> anyhow::Result<Registry> {
    if let Some(path) = explicit {
        return Ok(Registry::from_file(path)?);
    }
    let local = std::path::Path::new("datasets.toml");
    if local.is_file() {
        return Ok(Registry::from_file(local)?);
    }
    Ok(Registry::embedded())
}
