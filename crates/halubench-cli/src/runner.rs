//! Runs a judge over examples with bounded concurrency and appends every judgement to the
//! journal the moment it arrives, so a crash loses at most the calls in flight.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use halubench_core::{Example, Judgement, Verdict};
use halubench_judge::Judge;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

/// The append-only `judgements.jsonl`: one JSON object per line, written with a single
/// `write` each so that a line is never interleaved, and not buffered so that a finished
/// judgement survives a `kill -9`.
pub struct Journal {
    file: File,
    path: std::path::PathBuf,
}

impl Journal {
    /// Creates a new journal; refuses to touch one that exists.
    pub fn create(path: &Path) -> anyhow::Result<Journal> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create journal {}", path.display()))?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn append(&mut self, judgement: &Judgement) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(judgement)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot append to journal {}", self.path.display()))
    }
}

/// Reads a journal, skipping a torn last line (a write cut short by a crash). A damaged
/// line anywhere else is an error: that is not what a crash leaves behind.
pub fn read_journal(path: &Path) -> anyhow::Result<(Vec<Judgement>, Option<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read journal {}", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut judgements = Vec::with_capacity(lines.len());
    let mut warning = None;
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Judgement>(line) {
            Ok(judgement) => judgements.push(judgement),
            Err(e) if index + 1 == lines.len() && !text.ends_with('\n') => {
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

/// Judges every example, at most `concurrency` at a time, journaling each result in the
/// order it finishes. Returns the judgements in that order.
pub async fn run(
    judge: Arc<dyn Judge>,
    examples: Arc<Vec<Example>>,
    concurrency: usize,
    journal: &mut Journal,
) -> anyhow::Result<Vec<Judgement>> {
    let progress = progress_bar(examples.len() as u64);
    let mut in_flight = JoinSet::new();
    let mut next = 0;
    let mut done = Vec::with_capacity(examples.len());
    loop {
        while in_flight.len() < concurrency && next < examples.len() {
            let (judge, examples, index) = (judge.clone(), examples.clone(), next);
            in_flight.spawn(async move { judge_one(judge.as_ref(), &examples[index]).await });
            next += 1;
        }
        let Some(finished) = in_flight.join_next().await else {
            break;
        };
        let judgement = finished.context("a judge task panicked")?;
        journal.append(&judgement)?;
        progress.inc(1);
        done.push(judgement);
    }
    progress.finish_and_clear();
    Ok(done)
}

async fn judge_one(judge: &dyn Judge, example: &Example) -> Judgement {
    let started = Instant::now();
    let result = judge.judge(example).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (verdict, raw, error) = match result {
        Ok(reply) => (reply.verdict, reply.raw, None),
        Err(e) => (Verdict::Invalid, String::new(), Some(e.to_string())),
    };
    Judgement {
        id: example.id.clone(),
        task: example.task.clone(),
        label: example.label,
        verdict,
        raw,
        latency_ms,
        error,
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
        }
    }

    #[test]
    fn journal_round_trips_and_skips_only_a_torn_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("judgements.jsonl");
        let mut journal = Journal::create(&path).expect("create");
        journal.append(&judgement("a")).expect("append");
        journal.append(&judgement("b")).expect("append");
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
