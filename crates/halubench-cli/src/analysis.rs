//! Finished runs read back and put side by side: `halubench compare`, `gate` and `export`,
//! and the charts and HTML page every run gets. Statistics come from halubench-score and
//! pictures from halubench-report; this module loads runs, checks that they can be compared
//! and writes the files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use halubench_core::{Example, Judgement, RunManifest, task_heading};
use halubench_data::{HubSettings, Registry};
use halubench_report::{
    Block, Chart, CurveSeries, Curves, ExampleCard, GroupedBars, Heatmap, Page, Reply, Section,
    Series, Table, Trend, TrendSeries, Whisker, unit_curves,
};
use halubench_score::bootstrap::BootstrapConfig;
use halubench_score::compare::{Comparison, Entrant, compare};
use halubench_score::paper::{PaperComparison, compare_with_paper};

use crate::history::HistoryLine;
use crate::report::{self, JOURNAL};
use crate::runner;

/// A run directory read back: its manifest and the latest judgement of each example.
#[derive(Debug)]
pub struct LoadedRun {
    pub dir: PathBuf,
    pub manifest: RunManifest,
    pub judgements: Vec<Judgement>,
    /// What tables and charts call the judge.
    pub name: String,
}

pub fn load_run(dir: &Path) -> anyhow::Result<LoadedRun> {
    let manifest = report::read_manifest(dir)?;
    let (judgements, warning) = runner::read_journal(&dir.join(JOURNAL))?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    let judgements = runner::latest_per_id(judgements);
    if judgements.len() < manifest.selection.examples {
        eprintln!(
            "warning: {}: the journal holds {} of the run's {} examples; the run did not finish",
            dir.display(),
            judgements.len(),
            manifest.selection.examples
        );
    }
    Ok(LoadedRun {
        dir: dir.to_path_buf(),
        name: judge_name(&manifest),
        manifest,
        judgements,
    })
}

/// `openai gpt-4o`, `local Lynx-8B`, `baseline`: the judge kind and its model, if any.
pub fn judge_name(manifest: &RunManifest) -> String {
    let settings = &manifest.judge.settings;
    match settings.get("model_name").or_else(|| settings.get("model")) {
        Some(model) => format!("{} {model}", manifest.judge.name),
        None => manifest.judge.name.clone(),
    }
}

/// Loads every run, naming each one apart from the others.
pub fn load_runs(dirs: &[PathBuf]) -> anyhow::Result<Vec<LoadedRun>> {
    let mut runs = dirs
        .iter()
        .map(|dir| load_run(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Runs of one judge are told apart by the settings that differ between them
    // (`baseline threshold=0.5`), else by when they started (the run id's stamp).
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    for (i, name) in names.iter().enumerate() {
        let namesakes: Vec<usize> = (0..runs.len()).filter(|&j| &names[j] == name).collect();
        if namesakes.len() < 2 {
            continue;
        }
        let settings = |j: usize| &runs[j].manifest.judge.settings;
        let differing: Vec<String> = settings(i)
            .iter()
            .filter(|(key, value)| {
                namesakes
                    .iter()
                    .any(|&j| settings(j).get(*key) != Some(*value))
            })
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let suffix = if differing.is_empty() {
            runs[i].manifest.run_id.chars().take(15).collect()
        } else {
            differing.join(" ")
        };
        runs[i].name = format!("{name} {suffix}");
    }
    // Still alike (the same run twice, say): numbered.
    for i in 1..runs.len() {
        let twins = (0..i).filter(|&j| runs[j].name == runs[i].name).count();
        if twins > 0 {
            runs[i].name = format!("{} #{}", runs[i].name, twins + 1);
        }
    }
    Ok(runs)
}

/// Refuses runs that cannot be compared example by example (another dataset file or
/// revision, other examples); returns warnings for what can be compared but should be read
/// with care (another prompt).
pub fn check_comparable(runs: &[LoadedRun]) -> anyhow::Result<Vec<String>> {
    let Some(first) = runs.first() else {
        bail!("no runs given");
    };
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let ids = |run: &LoadedRun| -> BTreeSet<String> {
        run.judgements.iter().map(|j| j.id.clone()).collect()
    };
    let first_ids = ids(first);
    let (a, ad) = (&first.name, &first.manifest.dataset);
    for run in &runs[1..] {
        let (b, bd) = (&run.name, &run.manifest.dataset);
        if ad.sha256 != bd.sha256 {
            refusals.push(format!(
                "`{a}` judged {} (sha256 {}) but `{b}` judged {} (sha256 {})",
                ad.name, ad.sha256, bd.name, bd.sha256
            ));
        }
        if ad.revision != bd.revision {
            refusals.push(format!(
                "`{a}` used dataset revision {} but `{b}` used {}",
                ad.revision.as_deref().unwrap_or("(none)"),
                bd.revision.as_deref().unwrap_or("(none)")
            ));
        }
        let run_ids = ids(run);
        if run_ids != first_ids {
            let only: Vec<&String> = first_ids.symmetric_difference(&run_ids).collect();
            refusals.push(format!(
                "`{a}` judged {} examples and `{b}` {}; {} examples are in only one of them \
                 (first: `{}`); compare runs with the same --tasks, --limit and --seed",
                first_ids.len(),
                run_ids.len(),
                only.len(),
                only.first().map_or("", |s| s.as_str())
            ));
        }
        let (pa, pb) = (
            &first.manifest.judge.prompt_sha256,
            &run.manifest.judge.prompt_sha256,
        );
        if pa != pb && pa.is_some() && pb.is_some() {
            warnings.push(format!(
                "`{a}` and `{b}` were given different prompts (sha256 {} and {}): differences \
                 may come from the prompt, not the judge",
                short(pa.as_deref()),
                short(pb.as_deref())
            ));
        }
    }
    if !refusals.is_empty() {
        bail!(
            "the runs are not comparable:\n  - {}",
            refusals.join("\n  - ")
        );
    }
    Ok(warnings)
}

fn short(hash: Option<&str>) -> String {
    hash.map_or("none".to_string(), |h| h.chars().take(12).collect())
}

/// The examples of a run's dataset by id, when the dataset can still be loaded and is the
/// same file; otherwise a warning saying why passages are left out.
pub fn example_texts(
    registry: &Registry,
    hub: &HubSettings,
    manifest: &RunManifest,
) -> Result<HashMap<String, Example>, String> {
    let dataset = &manifest.dataset;
    let loaded = registry
        .resolve(&dataset.name)
        .map_err(|e| e.to_string())
        .and_then(|spec| halubench_data::load(&spec, hub).map_err(|e| e.to_string()))
        .map_err(|e| format!("passages are not shown: dataset {}: {e}", dataset.name))?;
    if loaded.info.sha256 != dataset.sha256 {
        return Err(format!(
            "passages are not shown: dataset {} has changed since the run (sha256 {} now, {} then)",
            dataset.name, loaded.info.sha256, dataset.sha256
        ));
    }
    Ok(loaded
        .examples
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect())
}

/// What goes into a report besides the runs.
#[derive(Debug, Default)]
pub struct ReportOptions<'a> {
    pub bootstrap: BootstrapConfig,
    /// Paper rows to set each run beside, with the tolerance in percentage points.
    pub paper: Option<(&'a str, f64)>,
    pub history: Option<&'a [HistoryLine]>,
    /// Most example cards in the HTML page.
    pub max_examples: usize,
}

/// A comparison's files, written into `out`: compare.md and compare.json beside what
/// `write_report` writes. Returns the markdown.
pub fn write_comparison(
    out: &Path,
    title: &str,
    runs: &[LoadedRun],
    warnings: &[String],
    texts: Option<&HashMap<String, Example>>,
    options: &ReportOptions<'_>,
) -> anyhow::Result<String> {
    let (mut markdown, json) = write_report(out, title, runs, warnings, texts, options)?;
    if runs.len() >= 3 {
        markdown.push_str(&write_suspect_labels(out, runs)?);
    }
    report::write_atomically(&out.join("compare.md"), &markdown)?;
    report::write_atomically(&out.join("compare.json"), &json)?;
    Ok(markdown)
}

/// `suspect-labels.csv`: the examples whose gold label a strict majority of the judges
/// contradict. Returns a markdown section counting them per task.
fn write_suspect_labels(out: &Path, runs: &[LoadedRun]) -> anyhow::Result<String> {
    let views: Vec<&[Judgement]> = runs.iter().map(|r| r.judgements.as_slice()).collect();
    let suspects = halubench_score::votes::suspect_labels(&views);
    let header = ["id", "task", "label", "against", "judges"];
    let file = halubench_score::compare::Table {
        header: header.map(String::from).to_vec(),
        rows: suspects
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.task.clone(),
                    s.label.to_string(),
                    s.against.to_string(),
                    s.judges.to_string(),
                ]
            })
            .collect(),
    };
    report::write_atomically(&out.join("suspect-labels.csv"), &file.to_csv())?;
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for judgement in &runs[0].judgements {
        per_task.entry(judgement.task.as_str()).or_default();
    }
    for suspect in &suspects {
        *per_task.entry(suspect.task.as_str()).or_default() += 1;
    }
    let mut per_task: Vec<(&str, usize)> = per_task.into_iter().collect();
    per_task.sort_by_key(|(task, _)| halubench_core::task_order(task));
    let counts = halubench_score::compare::Table {
        header: vec!["task".to_string(), "suspect labels".to_string()],
        rows: per_task
            .iter()
            .map(|(task, n)| vec![task_heading(task).to_string(), n.to_string()])
            .collect(),
    };
    Ok(format!(
        "\n## Suspect labels\n\n{} examples whose gold label a strict majority of the {} judges \
         contradict (an INVALID verdict is no vote against), listed in suspect-labels.csv.\n\n{}",
        suspects.len(),
        runs.len(),
        counts.to_markdown()
    ))
}

/// report.html and the charts (SVG and PNG) of one or more runs, written into `out`.
/// Returns the comparison as markdown and as JSON.
pub fn write_report(
    out: &Path,
    title: &str,
    runs: &[LoadedRun],
    warnings: &[String],
    texts: Option<&HashMap<String, Example>>,
    options: &ReportOptions<'_>,
) -> anyhow::Result<(String, String)> {
    let entrants: Vec<Entrant<'_>> = runs
        .iter()
        .map(|r| Entrant {
            name: &r.name,
            judgements: &r.judgements,
        })
        .collect();
    let comparison = compare(&entrants, &options.bootstrap)?;
    let papers = match options.paper {
        Some((model, tolerance)) => comparison
            .judges
            .iter()
            .map(|j| compare_with_paper(&j.metrics.task_accuracies(), model, tolerance))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };

    let mut markdown = format!("# {title}\n\n");
    for run in runs {
        markdown.push_str(&format!(
            "- `{}`: {} ({} examples of {})\n",
            run.name,
            run.dir.display(),
            run.judgements.len(),
            run.manifest.dataset.name
        ));
    }
    markdown.push('\n');
    for warning in warnings {
        markdown.push_str(&format!("**Warning:** {warning}\n\n"));
    }
    markdown.push_str(&comparison.to_markdown());
    for (paper, judge) in papers.iter().zip(&comparison.judges) {
        markdown.push('\n');
        markdown.push_str(&paper.to_markdown(&judge.name));
    }

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut charts = vec![(
        "accuracy".to_string(),
        "Accuracy per task, with bootstrap intervals".to_string(),
        // Every judge is set beside the same paper row: draw it once.
        accuracy_chart(&comparison, papers.first())?,
    )];
    for (i, judge) in comparison.judges.iter().enumerate() {
        charts.push((
            format!("confusion-{}", i + 1),
            format!("Confusion matrix of {}", judge.name),
            confusion_chart(&judge.name, &judge.metrics.all_rows.confusion)?,
        ));
    }
    charts.extend(confidence_charts(runs)?);
    if let Some(history) = options.history
        && let Some(trend) = trend_chart(history, &runs[0].manifest)?
    {
        charts.push((
            "trend".to_string(),
            "Overall accuracy over the run history".to_string(),
            trend,
        ));
    }
    for (file, _, chart) in &charts {
        report::write_atomically(&out.join(format!("{file}.svg")), &chart.svg)?;
        report::write_bytes_atomically(&out.join(format!("{file}.png")), &chart.png)?;
    }
    let page = page(
        title,
        runs,
        warnings,
        &comparison,
        &papers,
        &charts,
        texts,
        options,
    );
    report::write_atomically(
        &out.join("report.html"),
        &halubench_report::html_page(&page),
    )?;
    Ok((markdown, comparison.to_json()))
}

/// The charts and report.html of one finished run, in its own directory. A report that
/// cannot be drawn is a warning: the run's results are already safe in its journal.
pub fn report_run(registry: &Registry, hub: &HubSettings, dir: &Path, history: Option<&Path>) {
    let written = (|| -> anyhow::Result<()> {
        let run = load_run(dir)?;
        let texts = example_texts(registry, hub, &run.manifest)
            .map_err(|warning| eprintln!("warning: {warning}"))
            .ok();
        // The history only feeds the trend chart: if it cannot be read, the report goes
        // without that chart.
        let history = match history.filter(|p| p.is_file()).map(crate::history::read) {
            Some(Ok((lines, warnings))) => {
                warnings.iter().for_each(|w| eprintln!("warning: {w}"));
                Some(lines)
            }
            Some(Err(e)) => {
                eprintln!("warning: no trend chart: {e:#}");
                None
            }
            None => None,
        };
        let title = format!(
            "{} on {} ({})",
            run.name, run.manifest.dataset.name, run.manifest.run_id
        );
        write_report(
            dir,
            &title,
            std::slice::from_ref(&run),
            &[],
            texts.as_ref(),
            &ReportOptions {
                history: history.as_deref(),
                max_examples: 200,
                ..ReportOptions::default()
            },
        )?;
        Ok(())
    })();
    if let Err(e) = written {
        eprintln!("warning: no HTML report for {}: {e:#}", dir.display());
    }
}

/// The ROC curves (all rows) and the reliability diagram of the runs whose judge gave a
/// confidence `p_fail`; nothing when none did.
fn confidence_charts(runs: &[LoadedRun]) -> anyhow::Result<Vec<(String, String, Chart)>> {
    use halubench_score::ranking::{DEFAULT_ECE_BINS, reliability_bins, roc_points};
    let scored: Vec<(&str, Vec<(halubench_core::Label, f64)>)> = runs
        .iter()
        .map(|run| {
            let pairs = run
                .judgements
                .iter()
                .filter_map(|j| j.p_fail.map(|p| (j.label, p)))
                .collect();
            (run.name.as_str(), pairs)
        })
        .filter(|(_, pairs): &(&str, Vec<_>)| !pairs.is_empty())
        .collect();
    let mut roc = Vec::new();
    let mut reliability = Vec::new();
    for (name, pairs) in &scored {
        if let Some(points) = roc_points(pairs) {
            roc.push(CurveSeries {
                name: name.to_string(),
                points,
                markers: false,
            });
        }
        let bins = reliability_bins(pairs, DEFAULT_ECE_BINS);
        if !bins.is_empty() {
            reliability.push(CurveSeries {
                name: name.to_string(),
                points: bins.iter().map(|b| (b.mean_p, b.fail_rate)).collect(),
                markers: true,
            });
        }
    }
    let mut charts = Vec::new();
    if !roc.is_empty() {
        charts.push((
            "roc".to_string(),
            "ROC curves of the judges' confidence p_fail over all rows (FAIL is positive); \
             the diagonal is chance"
                .to_string(),
            unit_curves(&Curves {
                title: "ROC, all rows".to_string(),
                x_label: "false positive rate".to_string(),
                y_label: "true positive rate".to_string(),
                series: roc,
            })?,
        ));
    }
    if !reliability.is_empty() {
        charts.push((
            "reliability".to_string(),
            format!(
                "Reliability diagram: observed FAIL rate against mean p_fail in {DEFAULT_ECE_BINS} \
                 equal-width bins; the diagonal is perfect calibration"
            ),
            unit_curves(&Curves {
                title: "Reliability, all rows".to_string(),
                x_label: "mean p_fail".to_string(),
                y_label: "observed FAIL rate".to_string(),
                series: reliability,
            })?,
        ));
    }
    Ok(charts)
}

fn accuracy_chart(
    comparison: &Comparison,
    paper: Option<&PaperComparison>,
) -> anyhow::Result<Chart> {
    let tasks = comparison.tasks();
    let mut groups: Vec<String> = tasks.iter().map(|t| task_heading(t).to_string()).collect();
    groups.push("Overall".to_string());
    let pct = |i: &halubench_score::bootstrap::Interval| Whisker {
        value: i.estimate * 100.0,
        lower: i.lower * 100.0,
        upper: i.upper * 100.0,
    };
    let mut series: Vec<Series> = comparison
        .judges
        .iter()
        .map(|j| Series {
            name: j.name.clone(),
            values: tasks
                .iter()
                .map(|t| j.intervals.tasks.get(t).map(pct))
                .chain(std::iter::once(Some(pct(&j.intervals.overall_macro))))
                .collect(),
        })
        .collect();
    if let Some(paper) = paper {
        let point = |v: f64| Whisker {
            value: v,
            lower: v,
            upper: v,
        };
        series.push(Series {
            name: format!("paper: {}", paper.model),
            values: tasks
                .iter()
                .map(|t| {
                    paper
                        .tasks
                        .iter()
                        .find(|p| &p.task == t)
                        .map(|p| point(p.paper_pct))
                })
                .chain(std::iter::once(
                    paper
                        .overall
                        .run_pct
                        .map(|_| point(paper.overall.paper_mean_of_cells_pct)),
                ))
                .collect(),
        });
    }
    Ok(halubench_report::accuracy_bars(&GroupedBars {
        title: "Accuracy per task (%)".to_string(),
        groups,
        series,
    })?)
}

fn confusion_chart(
    judge: &str,
    confusion: &halubench_score::metrics::Confusion,
) -> anyhow::Result<Chart> {
    let row = |c: &halubench_score::metrics::VerdictCounts| {
        vec![c.pass as u64, c.fail as u64, c.invalid as u64]
    };
    Ok(halubench_report::confusion_heatmap(&Heatmap {
        title: format!("{judge}: label by verdict"),
        rows: vec!["label PASS".to_string(), "label FAIL".to_string()],
        columns: vec![
            "verdict PASS".to_string(),
            "verdict FAIL".to_string(),
            "INVALID".to_string(),
        ],
        counts: vec![row(&confusion.pass), row(&confusion.fail)],
    })?)
}

/// Overall accuracy of each judge over the history's runs of the same dataset file and
/// selection as `manifest`; `None` when there is nothing to draw. A resumed run appears once,
/// with its last line.
fn trend_chart(history: &[HistoryLine], manifest: &RunManifest) -> anyhow::Result<Option<Chart>> {
    let mut latest: Vec<&HistoryLine> = Vec::new();
    // Runs with examples the judge never answered measure an outage, not accuracy.
    let same_quantity = |l: &&HistoryLine| {
        l.dataset_sha256 == manifest.dataset.sha256
            && l.selection == manifest.selection
            && l.failed == 0
    };
    for line in history.iter().filter(same_quantity) {
        latest.retain(|l| (&l.run_id, &l.started_at) != (&line.run_id, &line.started_at));
        latest.push(line);
    }
    if latest.is_empty() {
        return Ok(None);
    }
    latest.sort_by(|a, b| a.finished_at.cmp(&b.finished_at));
    let mut labels: Vec<String> = Vec::new();
    let mut series: Vec<TrendSeries> = Vec::new();
    for line in latest {
        // Minutes are enough to tell nightly runs apart; runs within one minute get (2), (3).
        let minute: String = line
            .finished_at
            .replace('T', " ")
            .chars()
            .take(16)
            .collect();
        let repeats = labels.iter().filter(|l| l.starts_with(&minute)).count();
        let label = match repeats {
            0 => minute,
            n => format!("{minute} ({})", n + 1),
        };
        labels.push(label.clone());
        let point = (label, line.overall_macro * 100.0);
        match series.iter_mut().find(|s| s.name == line.judge) {
            Some(s) => s.points.push(point),
            None => series.push(TrendSeries {
                name: line.judge.clone(),
                points: vec![point],
            }),
        }
    }
    Ok(Some(halubench_report::trend_lines(&Trend {
        title: "Overall accuracy by run".to_string(),
        y_label: "Overall accuracy (%)".to_string(),
        labels,
        series,
    })?))
}

#[allow(clippy::too_many_arguments)]
fn page(
    title: &str,
    runs: &[LoadedRun],
    warnings: &[String],
    comparison: &Comparison,
    papers: &[PaperComparison],
    charts: &[(String, String, Chart)],
    texts: Option<&HashMap<String, Example>>,
    options: &ReportOptions<'_>,
) -> Page {
    let pct = halubench_score::compare::pct;
    let html_table = |t: halubench_score::compare::Table| Table {
        header: t.header,
        rows: t.rows,
    };
    let accuracy = html_table(comparison.accuracy_table());
    let metrics = Table {
        header: [
            "judge",
            "PASS acc.",
            "FAIL acc.",
            "balanced acc.",
            "precision (FAIL)",
            "recall (FAIL)",
            "F1 (FAIL)",
            "MCC",
            "invalid",
            "n",
        ]
        .map(String::from)
        .to_vec(),
        rows: comparison
            .judges
            .iter()
            .map(|j| {
                let m = &j.metrics.all_rows;
                let opt = |v: Option<f64>| v.map_or("-".to_string(), pct);
                vec![
                    j.name.clone(),
                    opt(m.pass_accuracy),
                    opt(m.fail_accuracy),
                    opt(m.balanced_accuracy),
                    pct(m.precision),
                    pct(m.recall),
                    pct(m.f1),
                    format!("{:.3}", m.mcc),
                    format!("{} ({}%)", m.invalid, pct(m.invalid_rate)),
                    m.n.to_string(),
                ]
            })
            .collect(),
    };
    let mut overview = vec![
        Block::Paragraph(format!(
            "Accuracy (%) with {:.0}% stratified bootstrap intervals ({} resamples, seed {}). \
             Overall is the unweighted mean of the tasks, the paper's rule; INVALID replies \
             count as wrong.",
            comparison.bootstrap.level * 100.0,
            comparison.bootstrap.resamples,
            comparison.bootstrap.seed
        )),
        Block::Table(accuracy),
        Block::Paragraph("All rows pooled; the hallucination (FAIL) class is positive.".into()),
        Block::Table(metrics),
    ];
    overview.extend(charts.iter().map(|(_, caption, chart)| Block::Chart {
        caption: caption.clone(),
        svg: chart.svg.clone(),
    }));
    let mut sections = vec![Section {
        heading: "Accuracy".to_string(),
        blocks: overview,
    }];
    for pair in &comparison.pairs {
        sections.push(Section {
            heading: format!("{} against {}", pair.second, pair.first),
            blocks: vec![
                Block::Paragraph(pair.explanation()),
                Block::Table(html_table(pair.table())),
            ],
        });
    }
    for (paper, judge) in papers.iter().zip(&comparison.judges) {
        sections.push(Section {
            heading: format!("{} beside the paper's {}", judge.name, paper.model),
            blocks: vec![
                Block::Table(html_table(paper.table(&judge.name))),
                Block::Paragraph(paper.explanation()),
            ],
        });
    }
    sections.push(examples_section(runs, texts, options.max_examples));
    Page {
        title: title.to_string(),
        notes: warnings.to_vec(),
        sections,
    }
}

/// One run: the examples its judge got wrong. Several: the examples where the judges
/// disagree (some right, some wrong).
fn examples_section(
    runs: &[LoadedRun],
    texts: Option<&HashMap<String, Example>>,
    max_examples: usize,
) -> Section {
    let single = runs.len() == 1;
    let by_id: Vec<HashMap<&str, &Judgement>> = runs
        .iter()
        .map(|r| r.judgements.iter().map(|j| (j.id.as_str(), j)).collect())
        .collect();
    let mut chosen: Vec<&Judgement> = runs[0]
        .judgements
        .iter()
        .filter(|j| {
            let correct: Vec<bool> = by_id
                .iter()
                .filter_map(|m| m.get(j.id.as_str()).map(|j| j.is_correct()))
                .collect();
            if single {
                !j.is_correct()
            } else {
                correct.iter().any(|c| *c) && correct.iter().any(|c| !*c)
            }
        })
        .collect();
    chosen.sort_by(|a, b| {
        halubench_core::task_order(&a.task)
            .cmp(&halubench_core::task_order(&b.task))
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = chosen.len();
    let cards: Vec<ExampleCard> = chosen
        .into_iter()
        .take(max_examples)
        .map(|j| {
            let example = texts.and_then(|t| t.get(&j.id));
            ExampleCard {
                id: j.id.clone(),
                task: j.task.clone(),
                label: j.label.to_string(),
                question: example.map(|e| e.question.clone()),
                answer: example.map(|e| e.answer.clone()),
                passage: example.map(|e| e.passage.clone()),
                replies: runs
                    .iter()
                    .zip(&by_id)
                    .filter_map(|(run, m)| {
                        let judged = m.get(j.id.as_str())?;
                        Some(Reply {
                            judge: run.name.clone(),
                            verdict: judged.verdict.to_string(),
                            correct: judged.is_correct(),
                            text: match (&judged.error, judged.raw.is_empty()) {
                                (Some(error), true) => format!("(no reply: {error})"),
                                _ => judged.raw.clone(),
                            },
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    let what = if single {
        "examples the judge got wrong"
    } else {
        "examples where the judges disagree"
    };
    let mut blocks = vec![Block::Paragraph(if cards.len() < total {
        format!(
            "{total} {what}; the first {} are shown (raise --max-examples for more).",
            cards.len()
        )
    } else {
        format!("{total} {what}.")
    })];
    if texts.is_none() {
        blocks.push(Block::Paragraph(
            "Passages, questions and answers are not shown: the dataset could not be loaded."
                .to_string(),
        ));
    }
    blocks.push(Block::Examples(cards));
    Section {
        heading: if single {
            "Wrong verdicts".to_string()
        } else {
            "Disagreements".to_string()
        },
        blocks,
    }
}
