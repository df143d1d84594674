//! `halubench panel RUN... --out DIR`: a judge panel built from finished runs, so that one
//! unparsable reply or one odd judge does not decide an example.
//!
//! The panel is a run directory like any other (run.toml, journal, summaries, report), so it
//! is scored, compared, exported and gated like one. Its verdict for an example is the strict
//! majority of the members' verdicts; an INVALID vote stays in the count, and without a
//! strict majority the panel's verdict is INVALID with the reason `no_majority`. Its `p_fail`
//! is the members' mean where every member gave one. No judge is called.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::bail;
use halubench_core::{ACCURACY_RULE, JudgeInfo, Judgement, RunManifest, Verdict};
use halubench_data::{HubSettings, Registry};
use halubench_score::Summary;
use halubench_score::votes::strict_majority;

use crate::loaded_runs::{self, LoadedRun};
use crate::report_page;
use crate::run_cmd;
use crate::run_files::{self, JOURNAL};
use crate::runner::Journal;

/// The reason a panel's verdict is INVALID when no verdict has a strict majority.
pub const NO_MAJORITY: &str = "no_majority";

pub fn panel(
    registry: &Registry,
    hub: &HubSettings,
    members: &[PathBuf],
    out: &Path,
) -> anyhow::Result<()> {
    if members.len() < 2 {
        bail!("a panel needs at least two runs");
    }
    let runs = loaded_runs::load_runs(members)?;
    for warning in loaded_runs::check_comparable(&runs)? {
        eprintln!("warning: {warning}");
    }
    for run in &runs {
        let failed = run.judgements.iter().filter(|j| j.error.is_some()).count();
        if failed > 0 {
            eprintln!(
                "warning: `{}` has {failed} examples without a reply; they vote INVALID \
                 (finish it with --resume {} first to avoid that)",
                run.name,
                run.dir.display()
            );
        }
    }
    let _lock = run_cmd::claim_out_dir(out)?;
    let manifest = manifest(out, &runs);
    run_files::write_manifest(out, &manifest)?;
    let judgements = verdicts(&runs);
    Journal::create(&out.join(JOURNAL))?.append(&judgements)?;
    let summary = Summary::from_judgements(&judgements);
    println!("{}", run_files::write_summaries(out, &manifest, &summary)?);
    report_page::report_run(
        registry,
        hub,
        out,
        None,
        report_page::Reading::default(),
        None,
    );
    println!("report: {}", out.display());
    Ok(())
}

/// The panel's judgement of each example, in the first member's order.
fn verdicts(runs: &[LoadedRun]) -> Vec<Judgement> {
    let by_id: Vec<HashMap<&str, &Judgement>> = runs
        .iter()
        .map(|run| run.judgements.iter().map(|j| (j.id.as_str(), j)).collect())
        .collect();
    runs[0]
        .judgements
        .iter()
        .map(|first| {
            // The runs hold the same examples (checked), so every member has a vote.
            let votes: Vec<&Judgement> = by_id
                .iter()
                .filter_map(|run| run.get(first.id.as_str()).copied())
                .collect();
            let verdicts: Vec<Verdict> = votes.iter().map(|j| j.verdict).collect();
            let majority = strict_majority(&verdicts);
            let p_fails: Option<Vec<f64>> = votes.iter().map(|j| j.p_fail).collect();
            let mut judgement = Judgement::new(
                first.id.clone(),
                first.task.clone(),
                first.label,
                majority.unwrap_or(Verdict::Invalid),
            );
            judgement.raw = tally(runs, &verdicts);
            judgement.invalid_reason = majority.is_none().then(|| NO_MAJORITY.to_string());
            judgement.p_fail = p_fails.map(|p| p.iter().sum::<f64>() / p.len() as f64);
            judgement
        })
        .collect()
}

/// `PASS: a, b; FAIL: c`: who voted for what, kept as the panel's "reply".
fn tally(runs: &[LoadedRun], verdicts: &[Verdict]) -> String {
    let mut sides: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (run, verdict) in runs.iter().zip(verdicts) {
        sides
            .entry(verdict.as_str())
            .or_default()
            .push(run.name.as_str());
    }
    sides
        .iter()
        .map(|(verdict, names)| format!("{verdict}: {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn manifest(out: &Path, runs: &[LoadedRun]) -> RunManifest {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let first = &runs[0].manifest;
    // One prompt for the panel only when every member had the same one.
    let prompt = first.judge.prompt_sha256.clone().filter(|p| {
        runs.iter()
            .all(|r| r.manifest.judge.prompt_sha256.as_ref() == Some(p))
    });
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    let dirs: Vec<String> = runs.iter().map(|r| r.dir.display().to_string()).collect();
    let settings = BTreeMap::from([
        ("members".to_string(), names.join(" | ")),
        ("member_runs".to_string(), dirs.join(" ")),
        (
            "rule".to_string(),
            "strict majority of all members; INVALID votes stay in the count; no majority \
             is INVALID (no_majority)"
                .to_string(),
        ),
    ]);
    RunManifest {
        run_id: out
            .file_name()
            .map_or("panel".to_string(), |n| n.to_string_lossy().into_owned()),
        harness_version: run_cmd::HARNESS_VERSION.to_string(),
        accuracy_rule: ACCURACY_RULE.to_string(),
        started_at: now.clone(),
        finished_at: Some(now),
        dataset: first.dataset.clone(),
        selection: first.selection.clone(),
        judge: JudgeInfo {
            name: "panel".to_string(),
            prompt_sha256: prompt,
            settings,
        },
    }
}
