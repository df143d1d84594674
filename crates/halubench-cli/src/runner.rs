//! Runs a judge over examples with bounded concurrency and appends every judgement to the
//! journal the moment it arrives, so a crash loses at most the calls in flight.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use halubench_core::{Example, Judgement, Usage, Verdict};
use halubench_judge::{Judge, Reply};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::cache::ResponseCache;

/// The append-only `judgements.jsonl`: one JSON object per line. The lines of the calls that
/// finished together go out in a single `write`, so that a line is never interleaved, and
/// nothing is held back for later, so that a finished judgement survives a `kill -9`.
pub struct Journal {
    file: File,
    path: std::path::PathBuf,
}

impl Journal {
    /// Creates a new journal; refuses to touch one that exists. Like every writer of a
    /// journal, it appends, so no write can land on top of another line.
    pub fn create(path: &Path) -> anyhow::Result<Journal> {
        let file = File::options()
            .append(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create journal {}", path.display()))?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Reopens a journal to add to it (`--resume`), creating it if a crash came before the
    /// first line. A torn last line left by a crash is cut off first, so that new lines never
    /// glue onto it.
    pub fn open_append(path: &Path) -> anyhow::Result<Journal> {
        let context = || format!("cannot open journal {}", path.display());
        let file = File::options()
            .append(true)
            .create(true)
            .open(path)
            .with_context(context)?;
        let text = std::fs::read(path).with_context(context)?;
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            file.set_len(whole as u64).with_context(context)?;
        }
        Ok(Journal {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends a line per judgement, all with one `write`: under load, calls finish in
    /// bursts, and a system call per line was a measurable share of the engine's CPU.
    pub fn append(&mut self, judgements: &[Judgement]) -> anyhow::Result<()> {
        let mut lines = Vec::with_capacity(512 * judgements.len());
        for judgement in judgements {
            serde_json::to_writer(&mut lines, judgement)?;
            lines.push(b'\n');
        }
        self.file
            .write_all(&lines)
            .with_context(|| format!("cannot append to journal {}", self.path.display()))
    }
}

/// Reads a journal, skipping a torn last line (a write cut short by a crash or a full disk,
/// possibly inside a multi-byte character: the file is read as bytes, and each line is
/// decoded on its own). A damaged line anywhere else is an error: that is not what a crash
/// leaves behind.
pub fn read_journal(path: &Path) -> anyhow::Result<(Vec<Judgement>, Option<String>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read journal {}", path.display()))?;
    parse_journal(path, &bytes)
}

/// The journal of a run that may have been killed before its first judgement: a missing
/// file is an empty journal.
pub fn read_journal_or_empty(path: &Path) -> anyhow::Result<(Vec<Judgement>, Option<String>)> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), None)),
        read => {
            let bytes = read.with_context(|| format!("cannot read journal {}", path.display()))?;
            parse_journal(path, &bytes)
        }
    }
}

fn parse_journal(path: &Path, bytes: &[u8]) -> anyhow::Result<(Vec<Judgement>, Option<String>)> {
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let mut judgements = Vec::with_capacity(lines.len());
    let mut warning = None;
    for (index, line) in lines.iter().enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        // After the last newline, a line that is there at all is torn.
        let torn = index + 1 == lines.len();
        match serde_json::from_slice::<Judgement>(line) {
            Ok(judgement) => judgements.push(judgement),
            Err(e) if torn => {
                warning = Some(format!(
                    "{}: skipped a torn last line ({e}); that example was not finished",
                    path.display()
                ));
            }
            Err(e) => {
                anyhow::bail!(
                    "{}: line {} is not a judgement: {e}",
                    path.display(),
                    index + 1
                )
            }
        }
    }
    Ok((judgements, warning))
}

/// The last judgement of each example, in first-seen order: a resumed run appends a new
/// line for an example that failed before, and the newer line wins.
pub fn latest_per_id(judgements: Vec<Judgement>) -> Vec<Judgement> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut latest: Vec<Judgement> = Vec::with_capacity(judgements.len());
    for judgement in judgements {
        match index.get(&judgement.id) {
            Some(&i) => latest[i] = judgement,
            None => {
                index.insert(judgement.id.clone(), latest.len());
                latest.push(judgement);
            }
        }
    }
    latest
}

/// How the engine treats a judge: how much at once, how often to try, where to cache.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Calls in flight at most; the engine halves its own limit when throttled and grows it
    /// back one call at a time.
    pub concurrency: usize,
    /// Attempts per example, the first included.
    pub max_attempts: u32,
    /// Retries for the whole run; once spent, the next failure stops the run (what is left
    /// can be resumed).
    pub retry_budget: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest `Retry-After` worth waiting out; a server asking for more stops the run.
    pub max_wait: Duration,
    pub cache: Option<ResponseCache>,
}

/// What happened besides the judgements.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub retries: usize,
    pub throttled: usize,
    pub cache_hits: usize,
    pub failed: usize,
    pub usage: Usage,
    /// The lowest concurrency the engine fell back to.
    pub min_concurrency: usize,
    /// Scheduling stopped before every example was judged because the retry budget ran out.
    pub stopped_early: bool,
    /// The run stopped because the server asked to wait this long, more than `max_wait`.
    pub refused_wait: Option<Duration>,
    pub not_started: usize,
}

struct Context {
    judge: Arc<dyn Judge>,
    options: EngineOptions,
    limiter: Limiter,
    retries_left: AtomicUsize,
    stats: Mutex<RunStats>,
    /// Set once when the run must stop at once: calls waiting out a backoff give up.
    stop: tokio::sync::watch::Sender<bool>,
}

/// Judges every example, journaling each result in the order it finishes, and stops
/// scheduling new work once `keep_going` says so (calls already in flight still finish and
/// are journaled).
///
/// Everything is owned, so that the loop can run as a task on the runtime's workers: each
/// finished call would otherwise wake the thread that blocks on the runtime.
pub async fn run(
    judge: Arc<dyn Judge>,
    examples: Arc<Vec<Example>>,
    options: EngineOptions,
    mut journal: Journal,
    mut keep_going: impl FnMut(&Judgement) -> bool + Send + 'static,
) -> anyhow::Result<RunStats> {
    let concurrency = options.concurrency.max(1);
    let context = Arc::new(Context {
        judge,
        limiter: Limiter::new(concurrency),
        retries_left: AtomicUsize::new(options.retry_budget),
        stats: Mutex::new(RunStats {
            min_concurrency: concurrency,
            ..RunStats::default()
        }),
        options,
        stop: tokio::sync::watch::Sender::new(false),
    });
    let progress = progress_bar(examples.len() as u64);
    let mut in_flight = JoinSet::new();
    let mut next = 0;
    let mut stopping = false;
    loop {
        // Tasks waiting out a backoff hold no call slot, so this only bounds memory.
        while !stopping && in_flight.len() < concurrency && next < examples.len() {
            let (context, examples, index) = (context.clone(), examples.clone(), next);
            in_flight.spawn(async move { judge_with_retries(&context, &examples[index]).await });
            next += 1;
        }
        let Some(finished_first) = in_flight.join_next().await else {
            break;
        };
        // Every call that has finished by now goes into the journal in one write, before
        // anything else is scheduled; a panicked task does not cost the others their line.
        let mut finished = Vec::new();
        let mut panicked = None;
        let ready = std::iter::from_fn(|| in_flight.try_join_next());
        for result in std::iter::once(finished_first).chain(ready) {
            match result {
                Ok(judgement) => finished.push(judgement),
                Err(error) => {
                    panicked.get_or_insert(error);
                }
            }
        }
        journal.append(&finished)?;
        if let Some(error) = panicked {
            return Err(anyhow::Error::new(error).context("a judge task panicked"));
        }
        progress.inc(finished.len() as u64);
        for judgement in &finished {
            // A spent retry budget means the judge keeps failing: stop rather than burn
            // through every remaining example; `--resume` picks up the rest.
            let budget_spent =
                context.retries_left.load(Ordering::Relaxed) == 0 && judgement.error.is_some();
            if budget_spent && !stopping {
                lock(&context.stats).stopped_early = true;
            }
            stopping = stopping || budget_spent || *context.stop.borrow() || !keep_going(judgement);
        }
    }
    progress.finish_and_clear();
    let mut stats = lock(&context.stats).clone();
    stats.not_started = examples.len() - next;
    stats.min_concurrency = stats.min_concurrency.min(context.limiter.lowest());
    Ok(stats)
}

async fn judge_with_retries(context: &Context, example: &Example) -> Judgement {
    let started = Instant::now();
    let cache = context.options.cache.as_ref();
    let key = cache.and_then(|_| context.judge.cache_key(example));
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some(reply) = cache.get(key)
    {
        let reply = context.judge.reread_cached(reply);
        lock(&context.stats).cache_hits += 1;
        let mut judgement = judgement(example, Ok(reply), started);
        judgement.cached = true;
        return judgement;
    }
    let mut stop = context.stop.subscribe();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let permit = context.limiter.acquire().await;
        if *stop.borrow() {
            context.limiter.release(permit, false, false);
            lock(&context.stats).failed += 1;
            return judgement(example, Err("not sent: the run stopped".into()), started);
        }
        let result = context.judge.judge(example).await;
        let throttled = matches!(&result, Err(e) if e.is_throttled());
        context.limiter.release(permit, result.is_ok(), throttled);
        match result {
            Ok(reply) => {
                // A reply without text (a prompt too long for the model) has nothing to
                // parse again on a hit, and costs nothing to produce again.
                if let (Some(cache), Some(key)) = (cache, &key)
                    && !reply.raw.is_empty()
                    && let Err(e) = cache.put(key, &reply)
                {
                    eprintln!(
                        "warning: cannot write the response cache in {}: {e}",
                        cache.dir().display()
                    );
                }
                let mut stats = lock(&context.stats);
                if let Some(usage) = reply.usage {
                    stats.usage += usage;
                }
                drop(stats);
                return judgement(example, Ok(reply), started);
            }
            Err(error) => {
                let max_wait = context.options.max_wait;
                if let Some(wait) = error.retry_after().filter(|wait| *wait > max_wait) {
                    {
                        let mut stats = lock(&context.stats);
                        stats.failed += 1;
                        stats.refused_wait.get_or_insert(wait);
                    }
                    context.stop.send_replace(true);
                    let message = format!(
                        "{error}: the server asked to wait {}, longer than --max-wait {}; \
                         the run stopped",
                        human_duration(wait),
                        human_duration(max_wait)
                    );
                    return judgement(example, Err(message), started);
                }
                let retry = error.is_retryable()
                    && attempt < context.options.max_attempts
                    && take_one(&context.retries_left);
                {
                    let mut stats = lock(&context.stats);
                    stats.throttled += throttled as usize;
                    stats.retries += retry as usize;
                    stats.failed += !retry as usize;
                }
                if !retry {
                    let message = format!(
                        "{error} (attempt {attempt} of at most {})",
                        context.options.max_attempts
                    );
                    return judgement(example, Err(message), started);
                }
                let wait = backoff(&context.options, attempt, error.retry_after());
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stop| *stop) => {
                        lock(&context.stats).failed += 1;
                        let message = format!("{error}; not retried: the run stopped");
                        return judgement(example, Err(message), started);
                    }
                }
            }
        }
    }
}

fn judgement(example: &Example, result: Result<Reply, String>, started: Instant) -> Judgement {
    let mut judgement = Judgement {
        id: example.id.clone(),
        task: example.task.clone(),
        label: example.label,
        verdict: Verdict::Invalid,
        raw: String::new(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: None,
        invalid_reason: None,
        usage: None,
        model: None,
        cached: false,
        p_fail: None,
        ragas: None,
    };
    match result {
        Ok(reply) => {
            judgement.verdict = reply.verdict;
            judgement.p_fail = reply.p_fail;
            judgement.raw = reply.raw;
            judgement.invalid_reason = reply.invalid_reason;
            judgement.usage = reply.usage;
            judgement.model = reply.model;
            judgement.ragas = reply.ragas;
        }
        Err(message) => judgement.error = Some(message),
    }
    judgement
}

/// Exponential backoff with jitter (half to all of the step, so retries spread out), and
/// never sooner than the server's `Retry-After`.
fn backoff(options: &EngineOptions, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let step = options
        .backoff_base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(options.backoff_max);
    let jittered = step.mul_f64(0.5 + 0.5 * jitter());
    retry_after.map_or(jittered, |wait| wait.max(jittered))
}

/// `86400 s (24.0 h)`: seconds as the flag takes them, and hours when that helps.
pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 1e9 {
        format!("{seconds:.3e} s")
    } else if seconds >= 3600.0 {
        format!("{seconds:.0} s ({:.1} h)", seconds / 3600.0)
    } else {
        format!("{seconds} s")
    }
}

/// A number in [0, 1): jitter needs spread, not quality.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock only ever leaves counters behind; keep using them.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Adaptive concurrency: additive increase, multiplicative decrease. A throttled call
/// halves the limit (once per cut: a burst of 429s from one overload counts once); every
/// `limit` successes in a row earn one more slot, up to the configured maximum.
struct Limiter {
    semaphore: Arc<Semaphore>,
    max: usize,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    limit: usize,
    successes: usize,
    /// Slots still to withdraw from the current cut, as calls in flight finish.
    debt: usize,
    lowest: usize,
}

impl Limiter {
    fn new(max: usize) -> Limiter {
        Limiter {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
            state: Mutex::new(LimiterState {
                limit: max,
                successes: 0,
                debt: 0,
                lowest: max,
            }),
        }
    }

    async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed, so this only fails in theory; then run unbounded.
        self.semaphore.clone().acquire_owned().await.ok()
    }

    fn release(&self, permit: Option<OwnedSemaphorePermit>, success: bool, throttled: bool) {
        let mut state = lock(&self.state);
        if throttled && state.debt == 0 && state.limit > 1 {
            let cut = state.limit / 2;
            state.limit -= cut;
            state.debt = cut;
            state.successes = 0;
            state.lowest = state.lowest.min(state.limit);
        } else if success {
            state.successes += 1;
            if state.successes >= state.limit && state.limit < self.max && state.debt == 0 {
                state.limit += 1;
                state.successes = 0;
                self.semaphore.add_permits(1);
            }
        }
        if let Some(permit) = permit
            && state.debt > 0
        {
            permit.forget();
            state.debt -= 1;
        }
    }

    fn lowest(&self) -> usize {
        lock(&self.state).lowest
    }
}

/// A bar on stderr with rate and ETA; indicatif hides it when stderr is not a terminal.
fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} judged  {rate}  elapsed {elapsed}  ETA {eta}",
    ) {
        bar.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}/s", state.per_sec());
            },
        ));
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Label;

    fn judgement(id: &str) -> Judgement {
        Judgement {
            id: id.to_string(),
            task: "DROP".to_string(),
            label: Label::Pass,
            verdict: Verdict::Pass,
            raw: "{\"SCORE\": \"PASS\"}\nwith a newline".to_string(),
            latency_ms: 1.0,
            error: None,
            invalid_reason: None,
            usage: None,
            model: None,
            cached: false,
            p_fail: None,
            ragas: None,
        }
    }

    #[tokio::test]
    async fn throttling_halves_concurrency_once_per_cut_and_successes_win_it_back() {
        let limiter = Limiter::new(8);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(limiter.acquire().await);
        }
        assert_eq!(limiter.semaphore.available_permits(), 0);
        // A burst of 429s from one overload: the first halves the limit, the rest wait for
        // that cut to take effect.
        for _ in 0..3 {
            limiter.release(held.pop().flatten(), false, true);
        }
        assert_eq!(lock(&limiter.state).limit, 4);
        assert_eq!(limiter.lowest(), 4);
        // The first success pays the last of the cut's debt; four more in a row at a
        // limit of 4 earn one slot back.
        for permit in held.drain(..) {
            limiter.release(permit, true, false);
        }
        assert_eq!(lock(&limiter.state).limit, 5);
        assert_eq!(limiter.semaphore.available_permits(), 5);
        for _ in 0..5 {
            let permit = limiter.acquire().await;
            limiter.release(permit, true, false);
        }
        assert_eq!(lock(&limiter.state).limit, 6);
        assert_eq!(limiter.semaphore.available_permits(), 6);
        assert_eq!(limiter.lowest(), 4, "the lowest point is remembered");
    }

    /// Answers PASS at once, except to the example it panics on.
    struct PanicsOn(&'static str);

    impl Judge for PanicsOn {
        fn info(&self) -> halubench_core::JudgeInfo {
            halubench_core::JudgeInfo {
                name: "panics-on".to_string(),
                prompt_sha256: None,
                settings: Default::default(),
            }
        }

        fn judge<'a>(
            &'a self,
            example: &'a Example,
        ) -> halubench_judge::BoxFuture<'a, Result<Reply, halubench_judge::JudgeError>> {
            Box::pin(async move {
                assert_ne!(example.id, self.0, "a judge bug");
                Ok(Reply {
                    verdict: Verdict::Pass,
                    raw: "PASS".to_string(),
                    invalid_reason: None,
                    usage: None,
                    model: None,
                    p_fail: None,
                    ragas: None,
                })
            })
        }
    }

    // On this single-threaded runtime all four calls finish before the engine's loop looks
    // again, so the panic arrives in one batch with three judgements: they are written.
    #[tokio::test]
    async fn a_panicking_call_fails_the_run_but_not_the_calls_finished_beside_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("judgements.jsonl");
        let examples: Vec<Example> = ["a", "b", "boom", "c"]
            .into_iter()
            .map(|id| Example {
                id: id.to_string(),
                task: "DROP".to_string(),
                passage: "p".to_string(),
                question: "q".to_string(),
                answer: "a".to_string(),
                label: Label::Pass,
            })
            .collect();
        let options = EngineOptions {
            concurrency: 4,
            max_attempts: 1,
            retry_budget: 0,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
            max_wait: Duration::from_secs(1),
            cache: None,
        };
        let journal = Journal::create(&path).expect("create");
        let outcome = run(
            Arc::new(PanicsOn("boom")),
            Arc::new(examples),
            options,
            journal,
            |_| true,
        )
        .await;
        let error = outcome.expect_err("a panicked call fails the run");
        assert!(
            format!("{error:#}").contains("a judge task panicked"),
            "{error:#}"
        );
        let (written, _) = read_journal(&path).expect("read");
        let ids: Vec<&str> = written.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let options = EngineOptions {
            concurrency: 1,
            max_attempts: 6,
            retry_budget: 0,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            max_wait: Duration::from_secs(300),
            cache: None,
        };
        for attempt in 1..=6u32 {
            let step =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let wait = backoff(&options, attempt, None);
            assert!(
                wait >= step / 2 && wait <= step,
                "attempt {attempt}: {wait:?}"
            );
        }
        let wait = backoff(&options, 1, Some(Duration::from_secs(3)));
        assert_eq!(wait, Duration::from_secs(3));
    }

    #[test]
    fn journal_round_trips_and_skips_only_a_torn_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("judgements.jsonl");
        let mut journal = Journal::create(&path).expect("create");
        journal.append(&[judgement("a")]).expect("append");
        journal.append(&[judgement("b")]).expect("append");
        assert!(
            Journal::create(&path).is_err(),
            "an existing journal must not be reopened"
        );

        let (read, warning) = read_journal(&path).expect("read");
        assert_eq!(read, vec![judgement("a"), judgement("b")]);
        assert!(warning.is_none());

        // A crash mid-write leaves half a line with no newline.
        let mut file = File::options().append(true).open(&path).expect("open");
        file.write_all(b"{\"id\":\"c\",\"task\":\"DR")
            .expect("write");
        let (read, warning) = read_journal(&path).expect("read torn");
        assert_eq!(read.len(), 2);
        assert!(warning.is_some_and(|w| w.contains("torn")));

        // The same damage in the middle is corruption, not a crash.
        std::fs::write(&path, "{\"id\":\"c\"\n{}\n").expect("write");
        assert!(read_journal(&path).is_err());
    }
}
