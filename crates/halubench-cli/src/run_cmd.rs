//! `halubench run` and `halubench score`: the straight line from settings to a report.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use halubench_core::{ACCURACY_RULE, RunManifest, Selection, Usage};
use halubench_data::{HubSettings, Registry, SelectOptions};
use halubench_judge::{BaselineJudge, Judge, PromptTemplate};
use halubench_openai::{ApiKey, OpenAiJudge, OpenAiSettings, RagasJudge, RagasSettings};
use halubench_score::Summary;

use crate::cache::ResponseCache;
use crate::history::{self, HistoryLine};
use crate::lock::DirLock;
use crate::prices;
use crate::run_files::{self, JOURNAL};
use crate::runner::{self, EngineOptions, Journal, RunStats, human_duration};
use crate::{JudgeKind, RagasModeArg, RuleArgs, RunArgs, rules, settings};
use crate::{loaded_runs, report_page, sockets};

/// How a run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every selected example has a reply.
    Complete,
    /// Everything is written, but some examples got no reply or were never started.
    Incomplete,
}

impl RunEnd {
    pub fn exit_code(self) -> std::process::ExitCode {
        match self {
            RunEnd::Complete => std::process::ExitCode::SUCCESS,
            RunEnd::Incomplete => std::process::ExitCode::from(crate::EXIT_INCOMPLETE),
        }
    }
}

pub fn run(registry: &Registry, hub: &HubSettings, args: &RunArgs) -> anyhow::Result<RunEnd> {
    // First, while this process may still have a single thread (see the module).
    if matches!(args.judge, JudgeKind::Openai | JudgeKind::Ragas) {
        if let Some(warning) = sockets::prepare(args.concurrency) {
            eprintln!("warning: {warning}");
        }
    } else {
        sockets::restore_huge_pages();
    }
    let judge = build_judge(args, hub)?;
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
    let selection = Selection {
        tasks: options.tasks,
        limit: options.limit,
        seed: options.seed,
        examples: examples.len(),
    };
    let cache = (args.cache && !args.no_cache).then(|| {
        ResponseCache::new(
            args.cache_dir
                .clone()
                .unwrap_or_else(ResponseCache::default_dir),
        )
    });
    let price = match (&args.prices, &args.model) {
        (Some(path), Some(model)) => Some(prices::price_of(path, model)?),
        (Some(_), None) => bail!("--prices needs a judge with a --model"),
        _ => None,
    };

    let resumed = match &args.resume {
        Some(dir) => Some(Resumed::open(
            dir,
            &dataset.info,
            &selection,
            &judge.info(),
        )?),
        None => None,
    };
    let todo: Vec<_> = match &resumed {
        Some(Resumed { finished, .. }) => examples
            .into_iter()
            .filter(|e| !finished.contains(&e.id))
            .collect(),
        None => examples,
    };
    if args.dry_run {
        print_estimate(judge.as_ref(), &todo, cache.as_ref(), price);
        return Ok(RunEnd::Complete);
    }

    let started_at = now();
    let (dir, _lock, mut manifest, journal) = match resumed {
        Some(Resumed {
            dir,
            lock,
            manifest,
            finished,
        }) => {
            eprintln!(
                "resuming {}: {} of {} examples finished, {} to judge",
                dir.display(),
                finished.len(),
                selection.examples,
                todo.len()
            );
            let journal = Journal::open_append(&dir.join(JOURNAL))?;
            (dir, lock, manifest, journal)
        }
        None => {
            let run_id = run_id(&started_at, &args.judge, &dataset.info.name);
            let (dir, lock) = prepare_dir(args, &run_id)?;
            let manifest = RunManifest {
                run_id: dir
                    .file_name()
                    .map_or(run_id.clone(), |n| n.to_string_lossy().into_owned()),
                harness_version: HARNESS_VERSION.to_string(),
                accuracy_rule: ACCURACY_RULE.to_string(),
                started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                finished_at: None,
                dataset: dataset.info,
                selection,
                judge: judge.info(),
            };
            // Written before judging so that an interrupted run can still be re-scored.
            run_files::write_manifest(&dir, &manifest)?;
            let journal = Journal::create(&dir.join(JOURNAL))?;
            (dir, lock, manifest, journal)
        }
    };

    let engine = EngineOptions {
        concurrency: args.concurrency as usize,
        max_attempts: args.max_attempts,
        retry_budget: args.retry_budget.unwrap_or(20 + todo.len()),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(60),
        max_wait: args.max_wait,
        cache,
    };
    // Only calls made are spending: a reply from the cache cost nothing this time.
    let mut spent = 0.0;
    let mut over_budget = false;
    let max_cost = args.max_cost;
    let keep_going = move |judgement: &halubench_core::Judgement| {
        if let (Some(price), Some(max), Some(usage), false) =
            (price, max_cost, judgement.usage, judgement.cached)
        {
            spent += price.cost(usage);
            over_budget = spent >= max;
        }
        !over_budget
    };
    // Judges behind an endpoint wait on the network, and the work between two calls (a
    // reply read, a line journaled, the next prompt sent) is tens of microseconds: one
    // thread drives every call. A worker per core spent a fifth more CPU per call handing
    // calls between threads, and at 1,024 in flight got less done (reports/BENCHMARKS.md,
    // throughput, fourth sitting). The local judge's model runs on threads of its own. The
    // baseline's whole work is computing inside the call: it gets a worker per core (20,000
    // rows took 0.55 s on one thread, 0.48 s on two).
    let mut runtime = match args.judge {
        JudgeKind::Baseline => tokio::runtime::Builder::new_multi_thread(),
        JudgeKind::Openai | JudgeKind::Ragas | JudgeKind::Local => {
            tokio::runtime::Builder::new_current_thread()
        }
    };
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let todo = Arc::new(todo);
    let stats = runtime.block_on(async {
        if !todo.is_empty() {
            judge.health().await.context("the judge is not ready")?;
        }
        let engine_loop = tokio::spawn(runner::run(
            judge.clone(),
            todo.clone(),
            engine,
            journal,
            keep_going,
        ));
        let stats = engine_loop.await.context("the run engine stopped")??;
        anyhow::Ok(stats)
    })?;

    manifest.finished_at = Some(now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    run_files::write_manifest(&dir, &manifest)?;
    let (all, _) = runner::read_journal(&dir.join(JOURNAL))?;
    let latest = runner::latest_per_id(all);
    let mut summary = Summary::from_judgements(&latest);
    if let Some(price) = price {
        let (paid, cached) = usage_paid_and_cached(&latest);
        summary.cost_usd = Some(price.cost(paid));
        summary.cost_avoided_usd = Some(price.cost(cached)).filter(|c| *c > 0.0);
    }
    let markdown = run_files::write_summaries(&dir, &manifest, &summary)?;
    // Examples without a reply: failed calls, and those never started.
    let unanswered = latest.iter().filter(|j| j.error.is_some()).count()
        + manifest.selection.examples.saturating_sub(latest.len());
    let in_reports_dir = match (dir.parent(), std::fs::canonicalize(&args.reports.dir)) {
        (Some(parent), Ok(reports)) => std::fs::canonicalize(parent).is_ok_and(|p| p == reports),
        _ => false,
    };
    let history_path = args
        .history
        .clone()
        .or_else(|| in_reports_dir.then(|| args.reports.dir.join(history::HISTORY)));
    // Every run that ends is a line of the history, marked with what got no reply so that
    // the trend does not read an outage as a regression. The results are safe in the
    // journal already, so a history that cannot be written is a warning.
    if let Some(path) = &history_path {
        let judge = loaded_runs::judge_name(&manifest);
        let line = HistoryLine::new(&manifest, judge, &summary, unanswered);
        if let Err(e) = history::append(path, &line) {
            eprintln!("warning: the run is not in the history: {e:#}");
        }
    }
    // Where this process judged every example of the selection (no --resume, or one with
    // nothing finished), the report shows them without loading the dataset again.
    let examples = Arc::try_unwrap(todo)
        .ok()
        .filter(|todo| todo.len() == manifest.selection.examples);
    report_page::report_run(
        registry,
        hub,
        &dir,
        history_path.as_deref(),
        report_page::Reading::default(),
        examples,
    );
    println!("{markdown}");
    println!("report: {}", dir.display());
    print_stats(&stats, &dir);
    for note in judge.notes() {
        eprintln!("note: {note}");
    }
    if let Some(max) = args.max_cost
        && stats.not_started > 0
        && !stats.stopped_early
        && stats.refused_wait.is_none()
    {
        eprintln!(
            "warning: stopped at --max-cost {max} USD; {} examples were not started; continue with --resume {}",
            stats.not_started,
            dir.display()
        );
    }
    if let Some(cost) = summary.cost_usd {
        eprintln!("cost: {cost:.4} USD for the calls made");
    }
    if let Some(avoided) = summary.cost_avoided_usd {
        eprintln!("cost avoided: {avoided:.4} USD of replies served from the cache");
    }
    if unanswered > 0 {
        eprintln!(
            "incomplete: {unanswered} of {} examples have no reply (exit status {}); finish \
             with: halubench run <the same flags, without --out> --resume {}",
            manifest.selection.examples,
            crate::EXIT_INCOMPLETE,
            dir.display()
        );
        return Ok(RunEnd::Incomplete);
    }
    Ok(RunEnd::Complete)
}

/// A run directory taken up again by `--resume`: locked before its journal is read, so
/// that what is left to do cannot change under us.
struct Resumed {
    dir: PathBuf,
    lock: DirLock,
    manifest: RunManifest,
    /// Examples with a reply; the rest are judged (again).
    finished: HashSet<String>,
}

impl Resumed {
    fn open(
        dir: &Path,
        dataset: &halubench_core::DatasetInfo,
        selection: &Selection,
        judge: &halubench_core::JudgeInfo,
    ) -> anyhow::Result<Resumed> {
        let lock =
            DirLock::acquire(dir).with_context(|| format!("cannot resume {}", dir.display()))?;
        let manifest = run_files::read_manifest(dir)?;
        check_same_run(&manifest, dataset, selection, judge)?;
        let (journal, warning) = runner::read_journal_or_empty(&dir.join(JOURNAL))?;
        if let Some(warning) = warning {
            eprintln!("warning: {warning}");
        }
        let finished = runner::latest_per_id(journal)
            .into_iter()
            .filter(|j| j.error.is_none())
            .map(|j| j.id)
            .collect();
        Ok(Resumed {
            dir: dir.to_path_buf(),
            lock,
            manifest,
            finished,
        })
    }
}

/// The version a run was made with; `--resume` refuses to mix two in one journal.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `--out DIR` for a new run (or panel): created if need be and locked, and refused if it
/// already holds a run. Locked before the check, so that two processes started on one
/// `--out` cannot both pass it.
pub fn claim_out_dir(out: &Path) -> anyhow::Result<DirLock> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create run directory {}", out.display()))?;
    let lock = DirLock::acquire(out)?;
    if out.join(JOURNAL).exists() {
        bail!(
            "{} already holds a run ({JOURNAL}); choose another --out or remove it",
            out.display()
        );
    }
    Ok(lock)
}

/// Tokens of calls made, and tokens of replies served from the cache.
fn usage_paid_and_cached(judgements: &[halubench_core::Judgement]) -> (Usage, Usage) {
    let (mut paid, mut cached) = (Usage::default(), Usage::default());
    for judgement in judgements {
        let usage = judgement.usage.unwrap_or_default();
        if judgement.cached {
            cached += usage;
        } else {
            paid += usage;
        }
    }
    (paid, cached)
}

fn print_estimate(
    judge: &dyn Judge,
    todo: &[halubench_core::Example],
    cache: Option<&ResponseCache>,
    price: Option<prices::Price>,
) {
    let cached = |e: &halubench_core::Example| {
        cache.is_some_and(|c| judge.cache_key(e).is_some_and(|k| c.get(&k).is_some()))
    };
    let (mut calls, mut hits, mut usage) = (0u64, 0usize, Usage::default());
    for example in todo {
        if cached(example) {
            hits += 1;
        } else if let Some(estimate) = judge.estimate(example) {
            calls += estimate.calls;
            usage += estimate.usage;
        }
    }
    println!(
        "dry run: {} examples to judge, {hits} already cached",
        todo.len()
    );
    println!(
        "calls: {calls}; tokens (estimate): {} prompt, at most {} completion",
        usage.prompt_tokens, usage.completion_tokens
    );
    match price {
        Some(price) => println!("cost: at most {:.4} USD", price.cost(usage)),
        None => println!("cost: unknown (pass --prices FILE)"),
    }
}

fn print_stats(stats: &RunStats, dir: &Path) {
    if stats.usage != Usage::default() {
        eprintln!(
            "tokens: {} prompt + {} completion",
            stats.usage.prompt_tokens, stats.usage.completion_tokens
        );
    }
    if stats.retries + stats.throttled > 0 {
        eprintln!(
            "retries: {}, throttled: {} (concurrency fell to {})",
            stats.retries, stats.throttled, stats.min_concurrency
        );
    }
    if stats.cache_hits > 0 {
        eprintln!("cached replies: {}", stats.cache_hits);
    }
    if let Some(wait) = stats.refused_wait {
        eprintln!(
            "warning: stopped: the server asked to wait {} before the next call (Retry-After), \
             more than --max-wait allows; {} examples were not started; continue later with \
             --resume {}",
            human_duration(wait),
            stats.not_started,
            dir.display()
        );
    }
    if stats.stopped_early {
        eprintln!(
            "warning: stopped early: the run's retry budget is spent and the judge keeps failing; \
             {} examples were not started; continue with --resume {}",
            stats.not_started,
            dir.display()
        );
    }
    if stats.failed > 0 {
        eprintln!(
            "warning: {} examples got no reply and count as INVALID; judge them again with --resume {}",
            stats.failed,
            dir.display()
        );
    }
}

/// `--resume` continues a run only with the same data, examples and judge; anything else
/// would mix two experiments in one journal.
fn check_same_run(
    manifest: &RunManifest,
    dataset: &halubench_core::DatasetInfo,
    selection: &Selection,
    judge: &halubench_core::JudgeInfo,
) -> anyhow::Result<()> {
    let mut differences = Vec::new();
    // Another version may parse or prompt differently: one journal, one harness.
    if manifest.harness_version != HARNESS_VERSION {
        differences.push(format!(
            "harness version {} (run) vs {HARNESS_VERSION} (now)",
            manifest.harness_version
        ));
    }
    if manifest.dataset.sha256 != dataset.sha256 {
        differences.push(format!(
            "dataset sha256 {} (run) vs {} (now)",
            manifest.dataset.sha256, dataset.sha256
        ));
    }
    if &manifest.selection != selection {
        differences.push(format!(
            "selection {:?} (run) vs {:?} (now)",
            manifest.selection, selection
        ));
    }
    // Settings that change how calls are made but not what a reply says may differ.
    let shaping = |info: &halubench_core::JudgeInfo| {
        let mut info = info.clone();
        for key in ["timeout_s", "api_key_env"] {
            info.settings.remove(key);
        }
        info
    };
    if shaping(&manifest.judge) != shaping(judge) {
        differences.push(format!(
            "judge {:?} (run) vs {:?} (now)",
            manifest.judge, judge
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        bail!(
            "cannot resume {}: it is a different run: {}",
            manifest.run_id,
            differences.join("; ")
        )
    }
}

pub fn rescore(
    registry: &Registry,
    hub: &HubSettings,
    dir: &Path,
    reparse: bool,
    rule: &RuleArgs,
) -> anyhow::Result<()> {
    // Rewriting the summaries of a run that is still being judged would race its writer.
    let _lock = DirLock::acquire(dir)?;
    let manifest = run_files::read_manifest(dir)?;
    let (mut judgements, warning) = runner::read_journal(&dir.join(JOURNAL))?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    // Checked before --reparse rewrites the journal, so a rule that cannot be applied
    // changes nothing.
    let lengths = rules::prepare(registry, hub, rule, [(&manifest, dir)], None)?;
    if reparse {
        reparse_journal(dir, &manifest, &mut judgements)?;
    }
    if judgements.len() < manifest.selection.examples {
        eprintln!(
            "warning: the journal holds {} of the run's {} examples; the run did not finish",
            judgements.len(),
            manifest.selection.examples
        );
    }
    let judgements = runner::latest_per_id(judgements);
    let summary = Summary::under_rule(rule.rule, &judgements, lengths.as_ref())?;
    println!("{}", run_files::write_summaries(dir, &manifest, &summary)?);
    let history = dir.parent().map(|p| p.join(history::HISTORY));
    let reading = report_page::Reading {
        rule: rule.rule,
        lengths: lengths.as_ref(),
    };
    report_page::report_run(registry, hub, dir, history.as_deref(), reading, None);
    println!("report: {}", dir.display());
    Ok(())
}

/// Reads every stored reply again with the current parser and rewrites the journal with
/// the verdicts it gives, keeping the first original as `judgements.jsonl.orig`. Only replies
/// that are text to parse count: failed calls and replies without text (`too_long`) stay.
fn reparse_journal(
    dir: &Path,
    manifest: &RunManifest,
    judgements: &mut [halubench_core::Judgement],
) -> anyhow::Result<()> {
    if !rules::LYNX_REPLY_JUDGES.contains(&manifest.judge.name.as_str()) {
        bail!(
            "--reparse: the {} judge's replies are not parsed from text; nothing to re-read",
            manifest.judge.name
        );
    }
    let mut changed = 0;
    for judgement in judgements.iter_mut() {
        if judgement.error.is_some() || judgement.raw.is_empty() {
            continue;
        }
        let parsed = halubench_judge::parse_verdict(&judgement.raw);
        let reason = parsed.invalid.map(|r| r.as_str().to_string());
        if (parsed.verdict, &reason) != (judgement.verdict, &judgement.invalid_reason) {
            changed += 1;
            judgement.verdict = parsed.verdict;
            judgement.invalid_reason = reason;
        }
    }
    eprintln!(
        "reparse: {changed} of {} verdicts changed",
        judgements.len()
    );
    if changed > 0 {
        let journal = dir.join(JOURNAL);
        let original = dir.join(format!("{JOURNAL}.orig"));
        if !original.exists() {
            std::fs::copy(&journal, &original).with_context(|| {
                format!("cannot keep the original journal as {}", original.display())
            })?;
        }
        let mut text = String::new();
        for judgement in judgements.iter() {
            text.push_str(&serde_json::to_string(judgement)?);
            text.push('\n');
        }
        run_files::write_atomically(&journal, &text)?;
    }
    Ok(())
}

fn build_judge(args: &RunArgs, hub: &HubSettings) -> anyhow::Result<Arc<dyn Judge>> {
    let template = || -> anyhow::Result<PromptTemplate> {
        Ok(match &args.prompt {
            Some(path) => PromptTemplate::from_file(path)?,
            None => PromptTemplate::lynx(),
        })
    };
    Ok(match args.judge {
        JudgeKind::Baseline => {
            Arc::new(BaselineJudge::new(args.threshold).context("invalid --threshold")?)
        }
        JudgeKind::Local => local_judge(args, hub, template()?)?,
        JudgeKind::Openai => {
            let template = template()?;
            let judge = OpenAiJudge::new(openai_settings(args, "openai")?, template)?;
            if let Some(warning) = judge.insecure_credentials_warning() {
                eprintln!("warning: {warning}");
            }
            Arc::new(judge)
        }
        JudgeKind::Ragas => {
            if args.prompt.is_some() {
                bail!("--prompt: the ragas judge asks its own two prompts, not a template");
            }
            let ragas = RagasSettings {
                mode: match args.ragas_mode {
                    RagasModeArg::Paper => halubench_judge::ragas::RagasMode::Paper,
                    RagasModeArg::Fixed => halubench_judge::ragas::RagasMode::Fixed,
                },
                threshold: args.ragas_threshold,
            };
            let judge = RagasJudge::new(openai_settings(args, "ragas")?, ragas)?;
            if let Some(warning) = judge.insecure_credentials_warning() {
                eprintln!("warning: {warning}");
            }
            Arc::new(judge)
        }
    })
}

/// The endpoint flags of the judges that call an OpenAI-compatible server.
fn openai_settings(args: &RunArgs, judge: &str) -> anyhow::Result<OpenAiSettings> {
    let model = args
        .model
        .clone()
        .with_context(|| format!("--judge {judge} needs --model"))?;
    let api_key = std::env::var(&args.api_key_env)
        .ok()
        .filter(|k| !k.is_empty());
    Ok(OpenAiSettings {
        base_urls: settings::base_urls(&args.base_urls)?,
        model,
        api_key_env: api_key.as_ref().map(|_| args.api_key_env.clone()),
        api_key: api_key.map(ApiKey::new),
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        json_mode: args.json_mode,
        headers: settings::headers(&args.headers)?,
        timeout: args.timeout,
        logprobs: !args.no_logprobs,
    })
}

#[cfg(feature = "local")]
fn local_judge(
    args: &RunArgs,
    hub: &HubSettings,
    template: PromptTemplate,
) -> anyhow::Result<Arc<dyn Judge>> {
    use crate::{DeviceArg, DtypeArg};
    use halubench_candle::{DeviceKind, LocalJudge, LocalSettings};
    let spec = args
        .model
        .as_deref()
        .context("--judge local needs --model")?;
    let settings = LocalSettings {
        model: crate::model_files::resolve(spec, &args.model_revision, hub)?,
        tokenizer: args.tokenizer.clone(),
        device: match args.device {
            DeviceArg::Cpu => DeviceKind::Cpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
            DeviceArg::Metal => DeviceKind::Metal,
        },
        dtype: args.dtype.map(DtypeArg::dtype),
        kv_cache: args.kv_cache.map(DtypeArg::dtype),
        max_new_tokens: args.max_tokens as usize,
        batch_size: args.batch_size as usize,
    };
    eprintln!("loading {} ...", settings.model.display());
    let judge = LocalJudge::start(settings, template)
        .with_context(|| format!("cannot load the local model --model {spec}"))?;
    Ok(Arc::new(judge))
}

#[cfg(not(feature = "local"))]
fn local_judge(
    _args: &RunArgs,
    _hub: &HubSettings,
    _template: PromptTemplate,
) -> anyhow::Result<Arc<dyn Judge>> {
    bail!("this halubench was built without the `local` feature (rebuild with `--features local`)")
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

/// The run directory, locked: `--out`, or a fresh `<reports-dir>/<run-id>` (suffixed when
/// two runs start in the same second). Never one that already holds a journal.
fn prepare_dir(args: &RunArgs, run_id: &str) -> anyhow::Result<(PathBuf, DirLock)> {
    if let Some(out) = &args.out {
        return Ok((out.clone(), claim_out_dir(out)?));
    }
    std::fs::create_dir_all(&args.reports.dir).with_context(|| {
        format!(
            "cannot create reports directory {}",
            args.reports.dir.display()
        )
    })?;
    // `create_dir` fails on a directory that exists, so two runs started in the same second
    // each get their own.
    let mut dir = args.reports.dir.join(run_id);
    let mut n = 1;
    loop {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let lock = DirLock::acquire(&dir)?;
                return Ok((dir, lock));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                n += 1;
                dir = args.reports.dir.join(format!("{run_id}-{n}"));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create run directory {}", dir.display()));
            }
        }
    }
}
