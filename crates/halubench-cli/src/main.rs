//! `halubench`: judge HaluBench-style datasets and write per-task accuracy reports.
//!
//! The binary owns everything that touches the user: flags, settings, the progress bar, the
//! run directory and its journal. Datasets, judges and scoring live in library crates.

/// Many small allocations per call (request bodies, replies, journal lines) from several
/// threads: mimalloc serves them with less CPU than glibc's malloc (see reports/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cache;
mod compare_cmd;
mod datasets_cmd;
mod history;
mod loaded_runs;
mod lock;
#[cfg(feature = "local")]
mod model_files;
mod panel_cmd;
mod prices;
mod report_page;
mod rules;
mod run_cmd;
mod run_files;
mod runner;
mod settings;
mod sockets;
mod suite_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use halubench_data::{HubSettings, Registry};

use crate::settings::{Sensitive, number_in, open_unit_interval, seconds_in, sensitive};

/// `halubench run` and `suite run` exit with this when the run was written but is not
/// complete: some examples got no reply (an outage, rejected calls) or were never started
/// (a spent retry budget, `--max-wait`, `--max-cost`). `--resume` finishes it.
pub const EXIT_INCOMPLETE: u8 = 3;

/// Benchmark hallucination judges on HaluBench and datasets shaped like it.
///
/// A run loads a dataset, asks a judge whether each answer is faithful to its passage,
/// appends every judgement to a journal as it arrives, and writes per-task accuracy in the
/// layout of the Lynx paper's Table 3.
#[derive(Debug, Parser)]
#[command(
    name = "halubench",
    version,
    propagate_version = true,
    after_long_help = EXIT_STATUS_HELP
)]
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
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Run(Box<RunArgs>),
    /// Rebuild the summaries of a run from its journal, without calling any judge.
    Score {
        /// A run directory (holding judgements.jsonl and run.toml).
        run_dir: PathBuf,

        /// Read every stored reply again with this version's verdict parser and rewrite the
        /// journal with the new verdicts (the original is kept as judgements.jsonl.orig).
        /// For the openai and local judges; prints how many verdicts changed.
        #[arg(long)]
        reparse: bool,

        #[command(flatten)]
        rule: RuleArgs,
    },
    /// List, download or describe datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Put finished runs side by side: accuracy per task with bootstrap intervals and, for
    /// each run against the first, exact McNemar tests (Holm-adjusted over the tasks) and
    /// paired bootstrap intervals of the difference. Prints the tables and writes them with
    /// charts and an HTML report. Runs of different data are refused. With three or more
    /// runs, also suspect-labels.csv: the examples whose gold label a strict majority of the
    /// judges contradict.
    Compare(CompareArgs),
    /// Fail a nightly job only on a real regression: a task (or Overall) that fell by more
    /// than --max-drop points, significantly. Exit status 0: the candidate holds; 1: it
    /// regressed; 2: an error (unreadable or incomparable runs).
    Gate(GateArgs),
    /// Several judges over one dataset from a suite file, then their comparison.
    #[command(subcommand)]
    Suite(SuiteCommand),
    /// Write a run's judgements as lm-evaluation-harness-style per-sample JSONL, one file per
    /// task.
    Export(ExportArgs),
    /// Build a judge panel from finished runs of the same examples: a run directory whose
    /// verdict for each example is the strict majority of the members' verdicts (an INVALID
    /// vote stays in the count; no strict majority is INVALID, reason no_majority) and whose
    /// p_fail is the members' mean where all have one. No judge is called; the panel is
    /// scored, compared, exported and gated like any run.
    Panel {
        /// The member runs (run directories of the same dataset and examples).
        #[arg(required = true, num_args = 2.., value_name = "RUN")]
        runs: Vec<PathBuf>,

        /// The panel's run directory (must not already hold a run).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Where run directories live; the default place for comparisons, suites and the history.
#[derive(Debug, Args)]
struct ReportsDir {
    /// Parent directory of run directories.
    #[arg(
        long = "reports-dir",
        default_value = "reports",
        env = "HALUBENCH_REPORTS_DIR",
        value_name = "DIR"
    )]
    dir: PathBuf,
}

/// Which rows count and how a reply is read, when scoring.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// The accuracy rule: `paper` (every selected row; INVALID counts wrong: the paper's
    /// protocol), `exclude-invalid` (rows with no verdict, RAGAS's no_statements included,
    /// leave the denominator: the RAGAS notebook's rule; in a comparison a row goes when any
    /// judge has no verdict on it) or `lynx-script` (prompts of 4,000 Llama-3 tokens or more
    /// are dropped and a verdict is read only from a quoted "SCORE": "...": the official
    /// Lynx script's rule; needs the Llama-3 tokenizer, see --tokenizer).
    #[arg(long, default_value = "paper", value_name = "RULE")]
    rule: halubench_score::AccuracyRule,

    /// The Llama-3 tokenizer.json that --rule lynx-script counts prompt tokens with
    /// [default: Lynx-8B's, from the Hugging Face cache or hub].
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// Seed of the bootstrap resampling (same seed, same intervals).
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Bootstrap resamples.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    resamples: u32,
}

impl StatsArgs {
    fn bootstrap(&self) -> halubench_score::bootstrap::BootstrapConfig {
        halubench_score::bootstrap::BootstrapConfig {
            resamples: self.resamples as usize,
            ..halubench_score::bootstrap::BootstrapConfig::with_seed(self.seed)
        }
    }
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Run directories (each holding run.toml and judgements.jsonl); the first is the
    /// reference the others are tested against.
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,

    /// Where to write compare.md, compare.json, report.html and the charts
    /// [default: <reports-dir>/compare-<time>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Also set each run beside this row of the paper's Table 3, e.g. "Lynx (70B)" or
    /// GPT-4o: per task the paper's value, the run's with its bootstrap interval, and a
    /// verdict, `consistent` or `differs` (see --tolerance). Listed in compare.json under
    /// `reproduction`.
    #[arg(long, value_name = "MODEL")]
    paper: Option<String>,

    /// How far, in percentage points, the paper's value may lie outside the run's bootstrap
    /// interval and still be `consistent` (the paper rounds to 0.1 and its runs differ from
    /// ours in details no interval covers).
    #[arg(
        long,
        default_value_t = halubench_score::paper::DEFAULT_TOLERANCE_PP,
        value_name = "PP",
        value_parser = number_in(0.0, 100.0)
    )]
    tolerance: f64,

    #[command(flatten)]
    rule: RuleArgs,

    /// Run history for the trend chart [default: <reports-dir>/history.jsonl, if present].
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,

    /// Most examples listed in the HTML report.
    #[arg(long, default_value_t = 200)]
    max_examples: usize,

    #[command(flatten)]
    stats: StatsArgs,

    #[command(flatten)]
    reports: ReportsDir,
}

#[derive(Debug, Args)]
struct GateArgs {
    /// The run to hold the candidate to (last night's, or a pinned release's).
    #[arg(long, value_name = "RUN")]
    baseline: PathBuf,

    /// The run under test.
    #[arg(long, value_name = "RUN")]
    candidate: PathBuf,

    /// Largest tolerated fall of a task's accuracy, and of Overall, in percentage points.
    #[arg(long, default_value_t = 2.0, value_name = "PP", value_parser = number_in(0.0, 100.0))]
    max_drop: f64,

    /// Significance level for the Holm-adjusted McNemar test of each task.
    #[arg(long, default_value_t = 0.05, value_parser = open_unit_interval)]
    alpha: f64,

    #[command(flatten)]
    rule: RuleArgs,

    /// Also append the markdown summary to this file (in GitHub Actions, the job summary).
    #[arg(long, env = "GITHUB_STEP_SUMMARY", value_name = "FILE")]
    summary: Option<PathBuf>,

    #[command(flatten)]
    stats: StatsArgs,
}

#[derive(Debug, Subcommand)]
enum SuiteCommand {
    /// Run every judge of FILE (TOML; see examples/paper-judges.toml) and compare them. A
    /// judge whose run directory already holds a run is resumed, so an interrupted suite
    /// picks up where it stopped.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Run {
        /// The suite file.
        file: PathBuf,

        /// Where the runs and the comparison go [default: <reports-dir>/suite-<name>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,

        /// Call no judge: print what each judge would send and cost (as `run --dry-run`),
        /// then stop. Writes nothing.
        #[arg(long)]
        dry_run: bool,

        #[command(flatten)]
        reports: ReportsDir,
    },
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The run directory.
    run: PathBuf,

    /// Where to write samples_<task>.jsonl [default: <RUN>/lm-eval].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
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
    /// Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, vLLM, llama.cpp, TGI).
    Openai,
    /// A Llama-architecture model (Lynx, Llama 3, SmolLM2) run in-process on candle, from
    /// one GGUF file or a safetensors checkpoint; see --model.
    Local,
    /// RAGAS faithfulness (a row of the paper's Table 3) over an OpenAI-compatible endpoint,
    /// with the OpenAI judge's flags: one call turns the answer's sentences into standalone
    /// statements, one call checks them all against the passage; PASS when the supported
    /// share is above --ragas-threshold. See --ragas-mode.
    Ragas,
}

/// Which answer sentences the RAGAS judge turns into statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RagasModeArg {
    /// As ragas 0.1.x did for the paper: only sentences ending in "."; an answer without one
    /// ("Rams", a list, a number) is INVALID with reason no_statements (ragas' NaN, which
    /// the paper's RAGAS numbers dropped from the denominator).
    Paper,
    /// Every sentence counts, so short answers are judged too.
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    /// NVIDIA GPU 0 (needs a build with `--features cuda`).
    Cuda,
    /// Apple GPU (needs a build with `--features metal`).
    Metal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    Bf16,
}

impl DtypeArg {
    #[cfg(feature = "local")]
    pub fn dtype(self) -> candle_core::DType {
        match self {
            DtypeArg::F32 => candle_core::DType::F32,
            DtypeArg::F16 => candle_core::DType::F16,
            DtypeArg::Bf16 => candle_core::DType::BF16,
        }
    }
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
    #[arg(
        long,
        default_value_t = halubench_judge::baseline::DEFAULT_THRESHOLD,
        value_name = "SHARE",
        value_parser = number_in(0.0, 1.0)
    )]
    threshold: f64,

    /// The model. OpenAI judge: the name to ask the server for. Local judge: a .gguf file, a
    /// directory with config.json, *.safetensors and tokenizer.json, or a Hugging Face repo
    /// (owner/name for safetensors, owner/name/FILE.gguf for one GGUF file) fetched into
    /// the Hugging Face cache like datasets are.
    #[arg(long, required_if_eq_any([("judge", "openai"), ("judge", "local"), ("judge", "ragas")]))]
    model: Option<String>,

    /// RAGAS judge: which answer sentences count. `fixed`: every sentence. `paper`: only
    /// those ending in "." as in ragas 0.1.x, which the paper ran; an answer with none is
    /// INVALID (no_statements). A malformed JSON reply gets one repair request in either
    /// mode, then is INVALID (malformed_json).
    #[arg(
        long,
        value_enum,
        default_value_t = RagasModeArg::Fixed,
        help_heading = "RAGAS judge"
    )]
    ragas_mode: RagasModeArg,

    /// RAGAS judge: PASS when the share of the answer's statements the passage supports is
    /// above this (strictly between 0 and 1; ragas and the paper: 0.5).
    #[arg(
        long,
        default_value_t = halubench_judge::ragas::DEFAULT_THRESHOLD,
        value_name = "SCORE",
        help_heading = "RAGAS judge",
        value_parser = open_unit_interval
    )]
    ragas_threshold: f64,

    /// OpenAI judge: base URL ending in /v1; repeat (or comma-separate) to spread calls over
    /// replicas. Credentials inside it (user:key@, ?key=) are sent but shown as *** wherever
    /// the URL is printed or recorded.
    #[arg(
        long = "base-url",
        value_delimiter = ',',
        default_value = "https://api.openai.com/v1",
        help_heading = "OpenAI-compatible judge",
        value_name = "URL",
        value_parser = sensitive
    )]
    base_urls: Vec<Sensitive>,

    /// OpenAI judge: environment variable holding the API key (unset: no key is sent, as
    /// local servers want).
    #[arg(
        long,
        default_value = "OPENAI_API_KEY",
        help_heading = "OpenAI-compatible judge",
        value_name = "VAR"
    )]
    api_key_env: String,

    /// OpenAI judge: sampling temperature, 0 to 2 (0 is greedy, the paper's protocol).
    #[arg(
        long,
        default_value_t = 0.0,
        help_heading = "OpenAI-compatible judge",
        value_parser = number_in(0.0, 2.0)
    )]
    temperature: f64,

    /// Most tokens a reply may have (the paper's protocol: 600).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,

    /// OpenAI judge: ask for a JSON object reply (`response_format`), as Patronus ran GPT-4o.
    #[arg(long, help_heading = "OpenAI-compatible judge")]
    json_mode: bool,

    /// OpenAI judge: do not ask for token log-probabilities. By default they are asked for
    /// (`logprobs`, `top_logprobs: 5`) to journal the judge's confidence `p_fail`; a server
    /// that rejects them is detected once and the run goes on without.
    #[arg(long, help_heading = "OpenAI-compatible judge")]
    no_logprobs: bool,

    /// OpenAI judge: extra request header, "Name: value"; repeatable. Values are never
    /// recorded.
    #[arg(
        long = "header",
        help_heading = "OpenAI-compatible judge",
        value_name = "NAME: VALUE",
        value_parser = sensitive
    )]
    headers: Vec<Sensitive>,

    /// OpenAI judge: seconds one request may take, response body included (at most a day).
    #[arg(
        long,
        default_value = "120",
        help_heading = "OpenAI-compatible judge",
        value_name = "SECONDS",
        value_parser = seconds_in(0.001, 86_400.0)
    )]
    timeout: std::time::Duration,

    /// Longest wait a server may ask for (Retry-After) before the run stops instead: calls
    /// in flight finish, everything is written, the exit status is 3 and --resume continues.
    #[arg(
        long,
        default_value = "300",
        value_name = "SECONDS",
        value_parser = seconds_in(0.0, 86_400.0)
    )]
    max_wait: std::time::Duration,

    /// Prompt template file with {question}, {context} and {answer}; default: the Lynx prompt.
    #[arg(long, value_name = "FILE")]
    prompt: Option<PathBuf>,

    /// Local judge: where the model runs. On a CPU with AMX (Intel Xeon since Sapphire
    /// Rapids) prompts on Q4_K/Q6_K weights, such as Lynx's Q4_K_M file, go through
    /// halubench's own AMX kernel (twice candle's speed there), and with AVX-512 decoding
    /// goes through its own kernel on the file's bytes (no repacked copy: 5.6 instead of 9.3
    /// GB for Lynx-8B); HALUBENCH_AMX=off and HALUBENCH_KQUANT_DECODE=off leave them to
    /// candle's kernels.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu, help_heading = "Local judge")]
    device: DeviceArg,

    /// Local judge: weight type of safetensors models [default: f32 on CPU, bf16 on a GPU].
    /// GGUF models keep their quantization.
    #[arg(long, value_enum, help_heading = "Local judge")]
    dtype: Option<DtypeArg>,

    /// Local judge: what the KV cache holds [default: f16 on CPU, the model's type on a GPU].
    /// f16 takes half the memory of f32 (as llama.cpp keeps it); f32 repeats the reference
    /// implementations' arithmetic exactly.
    #[arg(long, value_enum, help_heading = "Local judge")]
    kv_cache: Option<DtypeArg>,

    /// Local judge: most examples decoded together. Keep --concurrency at least as large so
    /// that batches fill.
    #[arg(
        long,
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=256),
        help_heading = "Local judge"
    )]
    batch_size: u32,

    /// Local judge: a tokenizer.json to use instead of the model's own (for a GGUF whose
    /// tokenizer.ggml.pre halubench does not know).
    #[arg(long, value_name = "FILE", help_heading = "Local judge")]
    tokenizer: Option<PathBuf>,

    /// Local judge: revision of a hub --model (branch, tag or commit).
    #[arg(
        long,
        default_value = "main",
        value_name = "REV",
        help_heading = "Local judge"
    )]
    model_revision: String,

    /// Attempts per example before it is recorded as failed (transient errors only; a
    /// request the server rejects is not retried).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// Retries allowed in the whole run; once spent, the next failure stops the run and the
    /// rest can be resumed [default: 20 + one per example].
    #[arg(long, value_name = "N")]
    retry_budget: Option<usize>,

    /// Continue the run in DIR: judge only what its journal lacks or recorded as failed.
    /// Pass the same dataset, selection and judge flags as the original run.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,

    /// Price table (TOML: [model] input_per_mtok, output_per_mtok in USD per million tokens)
    /// for the cost report, --dry-run and --max-cost.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,

    /// Stop starting new calls once this run has spent this many USD (needs --prices);
    /// calls in flight still finish. Replies from the cache cost nothing. What is left can
    /// be resumed.
    #[arg(long, value_name = "USD", requires = "prices", value_parser = number_in(0.0, 1e9))]
    max_cost: Option<f64>,

    /// Print how many calls, tokens and (with --prices) USD the run would take, and stop.
    /// Cached replies are not counted; token counts are estimates (4 characters a token,
    /// every reply at --max-tokens).
    #[arg(long)]
    dry_run: bool,

    /// Read replies from the response cache and store new ones. Off by default: the cache is
    /// keyed on what is sent, not on what answers, so a judge that changed behind the same
    /// URL and model name would be served old replies. Use it to replay a judge known not to
    /// change.
    #[arg(long)]
    cache: bool,

    /// Do not use the response cache (the default; overrides --cache, for scripts).
    #[arg(long, overrides_with = "cache")]
    no_cache: bool,

    /// Where cached replies live, with --cache [default: $XDG_CACHE_HOME/halubench/responses].
    #[arg(long, env = "HALUBENCH_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Only these tasks (`source_ds` values, case-sensitive), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "TASK,...")]
    tasks: Vec<String>,

    /// At most N examples per task, sampled deterministically from --seed.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Seed of the --limit sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// How many judge calls may be in flight at once. For the endpoint judges the soft limit
    /// on open files is raised to fit (within `ulimit -Hn`; a warning says when it cannot).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,

    /// Write the report here instead of <reports-dir>/<run-id>/. Must not already hold a run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    #[command(flatten)]
    reports: ReportsDir,

    /// Append a line for the finished run to this history file, which feeds the trend chart
    /// [default: <reports-dir>/history.jsonl for runs in <reports-dir>; none with --out
    /// elsewhere].
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (gate: the candidate holds)
  1  an error: bad input, a bad URL or header, an unreachable judge, a run directory
     in use (gate: a regression)
  2  a flag unknown, missing or out of range (gate: any error)
  3  run, suite run: everything was written, but some examples got no reply or were not
     started (an outage, rejected calls, a spent retry budget, --max-wait, --max-cost);
     finish with `halubench run ... --resume DIR`";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `gate` keeps 1 for "regressed", so its errors need another status.
    let error_status = match cli.command {
        Command::Gate(_) => 2,
        _ => 1,
    };
    match dispatch(cli) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(error_status)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = load_registry(cli.registry.as_deref())?;
    let hub = HubSettings::from_env();
    match cli.command {
        Command::Run(args) => return Ok(run_cmd::run(&registry, &hub, &args)?.exit_code()),
        Command::Score {
            run_dir,
            reparse,
            rule,
        } => run_cmd::rescore(&registry, &hub, &run_dir, reparse, &rule)?,
        Command::Datasets(DatasetsCommand::List) => datasets_cmd::list(&registry, &hub)?,
        Command::Datasets(DatasetsCommand::Fetch { name }) => {
            datasets_cmd::fetch(&registry, &hub, &name)?
        }
        Command::Datasets(DatasetsCommand::Inspect { dataset }) => {
            datasets_cmd::inspect(&registry, &hub, &dataset)?
        }
        Command::Compare(args) => compare_cmd::compare(&registry, &hub, &args)?,
        Command::Gate(args) => return compare_cmd::gate(&registry, &hub, &args),
        Command::Suite(SuiteCommand::Run {
            file,
            out,
            dry_run,
            reports,
        }) => {
            if dry_run {
                return suite_cmd::dry_run(&registry, &hub, &file);
            }
            return suite_cmd::run(&registry, &hub, &file, out, &reports.dir);
        }
        Command::Export(args) => compare_cmd::export(&registry, &hub, &args)?,
        Command::Panel { runs, out } => panel_cmd::panel(&registry, &hub, &runs, &out)?,
    }
    Ok(ExitCode::SUCCESS)
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
