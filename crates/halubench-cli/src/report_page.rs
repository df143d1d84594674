//! The report of one or more finished runs: `report.html` with its charts (SVG and PNG), and
//! for `compare` also `compare.md`, `compare.json` and `suspect-labels.csv`. Statistics come
//! from halubench-score and pictures from halubench-report; this module chooses what goes on
//! the page and writes the files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, bail};
use halubench_core::{
    Example, Judgement, PAPER_TASKS, RunManifest, Table, markdown_cell, task_heading,
};
use halubench_data::{HubSettings, Registry};
use halubench_report::{
    Block, Chart, CurveSeries, Curves, ExampleCard, GroupedBars, Heatmap, Page, Reply, Section,
    Series, Trend, TrendSeries, Whisker, unit_curves,
};
use halubench_score::AccuracyRule;
use halubench_score::bootstrap::BootstrapConfig;
use halubench_score::bootstrap::bootstrap_accuracy;
use halubench_score::compare::{Comparison, Entrant, compare};
use halubench_score::paper::{PaperComparison, RunTask, compare_with_paper, reproduction_table};
use halubench_score::rule::{self, PromptLengths};
use halubench_score::votes::{SuspectLabel, suspect_labels};

use crate::history::HistoryLine;
use crate::loaded_runs::{LoadedRun, example_texts, load_run};
use crate::run_files;

/// What goes into a report besides the runs.
#[derive(Debug, Default)]
pub struct ReportOptions<'a> {
    pub bootstrap: BootstrapConfig,
    /// The rule every table reads the runs under; a row it drops is dropped from every run.
    pub reading: Reading<'a>,
    /// Per run (by index), the row of Table 3 to set it beside; runs past the end have none.
    pub paper_rows: Vec<Option<PaperTarget>>,
    /// How far outside its interval the paper's value may lie and still be consistent, in
    /// percentage points.
    pub tolerance_pp: f64,
    pub history: Option<&'a [HistoryLine]>,
    /// Most example cards in the HTML page.
    pub max_examples: usize,
}

/// How runs are read: the accuracy rule, and what it needs beyond the journals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading<'a> {
    pub rule: AccuracyRule,
    /// Each example's Lynx prompt length in Llama-3 tokens, for the lynx-script rule.
    pub lengths: Option<&'a PromptLengths>,
}

/// A row of Table 3 to set a run beside, and the rule its numbers follow there: a
/// reproduction reads the run alone under that rule, as the paper's authors read theirs.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperTarget {
    pub model: String,
    pub rule: AccuracyRule,
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
    let (markdown, json) = write_report(out, title, runs, warnings, texts, options)?;
    run_files::write_atomically(&out.join("compare.md"), &markdown)?;
    run_files::write_atomically(&out.join("compare.json"), &json)?;
    Ok(markdown)
}

/// Judges needed before their majority can call a gold label into question: with two, a
/// "majority" is both, and one judge's habit would decide.
const SUSPECT_LABELS_MIN_JUDGES: usize = 3;

/// `suspect-labels.csv`: the examples whose gold label a strict majority of the judges
/// contradict, in the first run's order.
fn suspect_labels_csv(suspects: &[SuspectLabel]) -> String {
    let mut table = Table::new(["id", "task", "label", "against", "judges"]);
    for s in suspects {
        table.push([
            s.id.clone(),
            s.task.clone(),
            s.label.to_string(),
            s.against.to_string(),
            s.judges.to_string(),
        ]);
    }
    table.to_csv()
}

/// How many suspect labels each task has, every task of the runs listed (0 included).
fn suspect_counts(runs: &[LoadedRun], suspects: &[SuspectLabel]) -> Table {
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for judgement in &runs[0].judgements {
        per_task.entry(judgement.task.as_str()).or_default();
    }
    for suspect in suspects {
        *per_task.entry(suspect.task.as_str()).or_default() += 1;
    }
    let mut per_task: Vec<(&str, usize)> = per_task.into_iter().collect();
    per_task.sort_by_key(|(task, _)| halubench_core::task_order(task));
    let mut table = Table::new(["task", "suspect labels"]);
    for (task, n) in per_task {
        table.push([task_heading(task).to_string(), n.to_string()]);
    }
    table
}

fn suspect_explanation(suspects: &[SuspectLabel], judges: usize) -> String {
    format!(
        "{} examples whose gold label a strict majority of the {judges} judges contradict \
         (an INVALID verdict is no vote against), listed in suspect-labels.csv. They are \
         candidates for label noise, to be read, not dropped unseen.",
        suspects.len()
    )
}

/// A chart and where it goes: `{file}.svg` and `{file}.png`, shown under `caption`.
#[derive(Debug)]
struct Figure {
    file: String,
    caption: String,
    chart: Chart,
}

/// report.html and the charts (SVG and PNG) of one or more runs, written into `out`, and with
/// three runs or more `suspect-labels.csv`. Returns the comparison as markdown and as JSON.
pub fn write_report(
    out: &Path,
    title: &str,
    runs: &[LoadedRun],
    warnings: &[String],
    texts: Option<&HashMap<String, Example>>,
    options: &ReportOptions<'_>,
) -> anyhow::Result<(String, String)> {
    let views: Vec<&[Judgement]> = runs.iter().map(|r| r.judgements.as_slice()).collect();
    let ruled = rule::apply(options.reading.rule, &views, options.reading.lengths)?;
    let runs: Vec<LoadedRun> = runs
        .iter()
        .zip(ruled.runs)
        .map(|(run, judgements)| LoadedRun {
            judgements,
            ..run.clone()
        })
        .collect();
    let runs = runs.as_slice();
    let entrants: Vec<Entrant<'_>> = runs
        .iter()
        .map(|r| Entrant {
            name: &r.name,
            judgements: &r.judgements,
        })
        .collect();
    if runs.iter().all(|r| r.judgements.is_empty()) {
        bail!(
            "the {} rule leaves no row to compare: {}",
            options.reading.rule,
            options.reading.rule.description()
        );
    }
    let mut comparison = compare(&entrants, &options.bootstrap)?;
    comparison.rule = options.reading.rule;
    comparison.dropped = ruled.dropped;
    for ((run, judgements), target) in runs.iter().zip(&views).zip(&options.paper_rows) {
        if let Some(target) = target {
            let reproduced = reproduction(&run.name, judgements, target, options)?;
            comparison.reproduction.push(reproduced);
        }
    }
    let papers = comparison.reproduction.clone();
    let suspects = (runs.len() >= SUSPECT_LABELS_MIN_JUDGES).then(|| {
        let views: Vec<&[Judgement]> = runs.iter().map(|r| r.judgements.as_slice()).collect();
        suspect_labels(&views)
    });

    let mut markdown = format!("# {}\n\n", markdown_cell(title));
    for run in runs {
        markdown.push_str(&format!(
            "- {}: {} ({} examples of {})\n",
            markdown_cell(&run.name),
            markdown_cell(&run.dir.display().to_string()),
            run.judgements.len(),
            markdown_cell(&run.manifest.dataset.name)
        ));
    }
    markdown.push('\n');
    for warning in warnings {
        markdown.push_str(&format!("**Warning:** {}\n\n", markdown_cell(warning)));
    }
    markdown.push_str(&comparison.to_markdown());
    for paper in &papers {
        markdown.push('\n');
        markdown.push_str(&paper.to_markdown());
    }
    if let Some(suspects) = &suspects {
        markdown.push_str(&format!(
            "\n## Suspect labels\n\n{}\n\n{}",
            suspect_explanation(suspects, runs.len()),
            suspect_counts(runs, suspects).to_markdown()
        ));
    }

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if !papers.is_empty() {
        let table = reproduction_table(&papers);
        let tolerance = options.tolerance_pp;
        run_files::write_atomically(
            &out.join("reproduction.md"),
            &format!(
                "# Reproduction of the paper's Table 3\n\n{}\nA cell is consistent when the \
                 paper's value lies inside our {:.0}% bootstrap interval widened by {tolerance} \
                 pp; the paper's Overall is the mean of its six cells. Each judge is read \
                 alone under its rule.\n",
                table.to_markdown(),
                options.bootstrap.level * 100.0
            ),
        )?;
        run_files::write_atomically(&out.join("reproduction.csv"), &table.to_csv())?;
    }
    if let Some(suspects) = &suspects {
        run_files::write_atomically(
            &out.join("suspect-labels.csv"),
            &suspect_labels_csv(suspects),
        )?;
    }
    let mut accuracy_figures = vec![Figure {
        file: "accuracy".to_string(),
        caption: "Accuracy per task, with bootstrap intervals".to_string(),
        chart: accuracy_chart(&comparison, &papers)?,
    }];
    for (i, judge) in comparison.judges.iter().enumerate() {
        accuracy_figures.push(Figure {
            file: format!("confusion-{}", i + 1),
            caption: format!("Confusion matrix of {}", judge.name),
            chart: confusion_chart(&judge.name, &judge.metrics.all_rows.confusion)?,
        });
    }
    if let Some(history) = options.history
        && let Some(trend) = trend_chart(history, &runs[0].manifest)?
    {
        accuracy_figures.push(Figure {
            file: "trend".to_string(),
            caption: "Overall accuracy over the run history".to_string(),
            chart: trend,
        });
    }
    let confidence_figures = confidence_charts(runs, &comparison.tasks())?;
    for figure in accuracy_figures.iter().chain(&confidence_figures) {
        let path = |extension: &str| out.join(format!("{}.{extension}", figure.file));
        run_files::write_atomically(&path("svg"), &figure.chart.svg)?;
        run_files::write_bytes_atomically(&path("png"), &figure.chart.png)?;
    }
    let page = page(
        title,
        runs,
        warnings,
        &comparison,
        &papers,
        Figures {
            accuracy: &accuracy_figures,
            confidence: &confidence_figures,
        },
        suspects.as_deref(),
        texts,
        options,
    );
    run_files::write_atomically(
        &out.join("report.html"),
        &halubench_report::html_page(&page),
    )?;
    Ok((markdown, comparison.to_json()))
}

/// The charts and report.html of one finished run, in its own directory. A report that
/// cannot be drawn is a warning: the run's results are already safe in its journal.
/// `examples` are all the run's examples when the caller still holds them; otherwise the
/// example cards read their texts from the dataset again.
pub fn report_run(
    registry: &Registry,
    hub: &HubSettings,
    dir: &Path,
    history: Option<&Path>,
    reading: Reading<'_>,
    examples: Option<Vec<Example>>,
) {
    let written = (|| -> anyhow::Result<()> {
        let run = load_run(dir)?;
        let texts = match examples {
            Some(examples) => Some(examples.into_iter().map(|e| (e.id.clone(), e)).collect()),
            None => example_texts(registry, hub, &run.manifest)
                .map_err(|warning| eprintln!("warning: {warning}"))
                .ok(),
        };
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
                reading,
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

/// The ROC curves and the reliability diagram over all rows, then a ROC chart per task, of
/// the runs whose judge gave a confidence `p_fail`; nothing when none did.
fn confidence_charts(runs: &[LoadedRun], tasks: &[String]) -> anyhow::Result<Vec<Figure>> {
    use halubench_score::ranking::{DEFAULT_ECE_BINS, reliability_bins, roc_points};
    let pairs = |run: &LoadedRun, task: Option<&str>| -> Vec<(halubench_core::Label, f64)> {
        run.judgements
            .iter()
            .filter(|j| task.is_none_or(|t| j.task == t))
            .filter_map(|j| j.p_fail.map(|p| (j.label, p)))
            .collect()
    };
    let roc = |task: Option<&str>| -> Vec<CurveSeries> {
        runs.iter()
            .filter_map(|run| {
                Some(CurveSeries {
                    name: run.name.clone(),
                    points: roc_points(&pairs(run, task))?,
                    markers: false,
                })
            })
            .collect()
    };
    let roc_chart = |title: String, series: Vec<CurveSeries>| {
        unit_curves(&Curves {
            title,
            x_label: "false positive rate".to_string(),
            y_label: "true positive rate".to_string(),
            series,
        })
    };

    let mut figures = Vec::new();
    let all_rows = roc(None);
    if !all_rows.is_empty() {
        figures.push(Figure {
            file: "roc".to_string(),
            caption: "ROC curves of the judges' confidence p_fail over all rows (FAIL is \
                      positive); the diagonal is chance"
                .to_string(),
            chart: roc_chart("ROC, all rows".to_string(), all_rows)?,
        });
    }
    let reliability: Vec<CurveSeries> = runs
        .iter()
        .map(|run| CurveSeries {
            name: run.name.clone(),
            points: reliability_bins(&pairs(run, None), DEFAULT_ECE_BINS)
                .iter()
                .map(|b| (b.mean_p, b.fail_rate))
                .collect(),
            markers: true,
        })
        .filter(|series| !series.points.is_empty())
        .collect();
    if !reliability.is_empty() {
        figures.push(Figure {
            file: "reliability".to_string(),
            caption: format!(
                "Reliability diagram: observed FAIL rate against mean p_fail in \
                 {DEFAULT_ECE_BINS} equal-width bins; the diagonal is perfect calibration"
            ),
            chart: unit_curves(&Curves {
                title: "Reliability, all rows".to_string(),
                x_label: "mean p_fail".to_string(),
                y_label: "observed FAIL rate".to_string(),
                series: reliability,
            })?,
        });
    }
    for (i, task) in tasks.iter().enumerate() {
        let series = roc(Some(task));
        if series.is_empty() {
            continue;
        }
        let heading = task_heading(task);
        figures.push(Figure {
            // Task names are data: the file is named by the task's place, not its name.
            file: format!("roc-task-{}", i + 1),
            caption: format!("ROC curves of p_fail on {heading}"),
            chart: roc_chart(format!("ROC, {heading}"), series)?,
        });
    }
    Ok(figures)
}

/// Each judge's accuracy per task with its interval; beside them the paper's row when every
/// judge set beside the paper is set beside the same row (several rows would crowd it).
fn accuracy_chart(comparison: &Comparison, papers: &[PaperComparison]) -> anyhow::Result<Chart> {
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
    let one_row = papers
        .first()
        .filter(|first| papers.iter().all(|p| p.paper == first.paper));
    if let Some(paper) = one_row {
        let point = |v: f64| Whisker {
            value: v,
            lower: v,
            upper: v,
        };
        series.push(Series {
            name: format!("paper: {}", paper.paper),
            values: tasks
                .iter()
                .map(|t| paper.tasks.get(t).map(|p| point(p.cell.paper)))
                .chain(std::iter::once(
                    paper
                        .overall
                        .cell
                        .estimate
                        .map(|_| point(paper.overall.cell.paper)),
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

/// One run alone under its target's rule (its own INVALID rows, say, not the other judges'),
/// with bootstrap intervals over the paper's six tasks only (so Overall is their mean), set
/// beside its row of Table 3.
fn reproduction(
    name: &str,
    judgements: &[Judgement],
    target: &PaperTarget,
    options: &ReportOptions<'_>,
) -> anyhow::Result<PaperComparison> {
    let ruled = rule::apply(target.rule, &[judgements], options.reading.lengths)?;
    let kept = ruled.runs.first().map_or(&[][..], Vec::as_slice);
    let in_paper = |task: &str| PAPER_TASKS.iter().any(|(t, _)| *t == task);
    let paper_rows: Vec<Judgement> = kept.iter().filter(|j| in_paper(&j.task)).cloned().collect();
    // A rule can leave nothing to count (every answer INVALID): no estimate, not an error.
    let intervals = match paper_rows.is_empty() {
        true => None,
        false => Some(
            bootstrap_accuracy(&paper_rows, &options.bootstrap)
                .with_context(|| format!("`{name}` under the {} rule", target.rule))?,
        ),
    };
    let mut run: BTreeMap<String, RunTask> = BTreeMap::new();
    for judgement in judgements {
        let task = run.entry(judgement.task.clone()).or_insert(RunTask {
            interval: intervals
                .as_ref()
                .and_then(|i| i.tasks.get(&judgement.task))
                .copied(),
            counted: 0,
            selected: 0,
        });
        task.selected += 1;
    }
    for judgement in kept {
        if let Some(task) = run.get_mut(&judgement.task) {
            task.counted += 1;
        }
    }
    Ok(compare_with_paper(
        name,
        &run,
        intervals.map(|i| i.overall_macro),
        target.rule,
        &target.model,
        options.tolerance_pp,
    )?)
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

/// The report's charts, by the section they belong to.
#[derive(Debug, Clone, Copy)]
struct Figures<'a> {
    accuracy: &'a [Figure],
    confidence: &'a [Figure],
}

fn chart_blocks(figures: &[Figure]) -> impl Iterator<Item = Block> + '_ {
    figures.iter().map(|f| Block::Chart {
        caption: f.caption.clone(),
        svg: f.chart.svg.clone(),
    })
}

#[allow(clippy::too_many_arguments)]
fn page(
    title: &str,
    runs: &[LoadedRun],
    warnings: &[String],
    comparison: &Comparison,
    papers: &[PaperComparison],
    figures: Figures<'_>,
    suspects: Option<&[SuspectLabel]>,
    texts: Option<&HashMap<String, Example>>,
    options: &ReportOptions<'_>,
) -> Page {
    let mut overview = vec![
        Block::Paragraph(format!(
            "Accuracy (%) with {:.0}% stratified bootstrap intervals ({} resamples, seed {}). \
             Overall is the unweighted mean of the tasks, as in the paper.",
            comparison.bootstrap.level * 100.0,
            comparison.bootstrap.resamples,
            comparison.bootstrap.seed
        )),
        Block::Table(comparison.accuracy_table()),
        Block::Paragraph(comparison.rule_statement()),
        Block::Paragraph("All rows pooled; the hallucination (FAIL) class is positive.".into()),
        Block::Table(verdict_metrics_table(comparison)),
    ];
    overview.extend(chart_blocks(figures.accuracy));
    let mut sections = vec![Section {
        heading: "Accuracy".to_string(),
        blocks: overview,
    }];
    if let Some(auroc) = comparison.auroc_table() {
        let mut blocks = vec![
            Block::Paragraph(format!(
                "Threshold-free scores of the judges' confidence p_fail, on the rows that have \
                 one; AUROC with {:.0}% stratified bootstrap intervals.",
                comparison.bootstrap.level * 100.0
            )),
            Block::Table(auroc),
            Block::Table(confidence_table(comparison)),
        ];
        blocks.extend(chart_blocks(figures.confidence));
        sections.push(Section {
            heading: "Confidence".to_string(),
            blocks,
        });
    }
    for pair in &comparison.pairs {
        let mut blocks = vec![
            Block::Paragraph(pair.explanation()),
            Block::Table(pair.table()),
        ];
        if let Some(auroc) = pair.auroc_table() {
            blocks.push(Block::Paragraph(
                "AUROC difference with a paired bootstrap interval, on the examples both \
                 judges gave a p_fail."
                    .to_string(),
            ));
            blocks.push(Block::Table(auroc));
        }
        sections.push(Section {
            heading: format!("{} against {}", pair.second, pair.first),
            blocks,
        });
    }
    for paper in papers {
        sections.push(Section {
            heading: format!("{} beside the paper's {}", paper.judge, paper.paper),
            blocks: vec![
                Block::Table(paper.table()),
                Block::Paragraph(paper.explanation()),
            ],
        });
    }
    let cards = Cards::new(runs, texts);
    if let Some(suspects) = suspects {
        let chosen: Vec<&Judgement> = suspects
            .iter()
            .filter_map(|s| cards.by_id[0].get(s.id.as_str()).copied())
            .collect();
        let mut blocks = vec![
            Block::Paragraph(suspect_explanation(suspects, runs.len())),
            Block::Table(suspect_counts(runs, suspects)),
        ];
        blocks.extend(cards.blocks(&chosen, "suspect labels", options.max_examples));
        sections.push(Section {
            heading: "Suspect labels".to_string(),
            blocks,
        });
    }
    sections.push(disagreements_section(&cards, options.max_examples));
    Page {
        title: title.to_string(),
        notes: warnings.to_vec(),
        sections,
    }
}

/// All rows pooled, per judge: the metrics of the verdicts.
fn verdict_metrics_table(comparison: &Comparison) -> Table {
    let pct = halubench_score::compare::pct;
    let opt = |v: Option<f64>| v.map_or("-".to_string(), pct);
    let mut table = Table::new([
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
    ]);
    for judge in &comparison.judges {
        let m = &judge.metrics.all_rows;
        table.push([
            judge.name.clone(),
            opt(m.pass_accuracy),
            opt(m.fail_accuracy),
            opt(m.balanced_accuracy),
            pct(m.precision),
            pct(m.recall),
            pct(m.f1),
            format!("{:.3}", m.mcc),
            format!("{} ({}%)", m.invalid, pct(m.invalid_rate)),
            m.n.to_string(),
        ]);
    }
    table
}

/// All rows pooled, per judge: the scores of `p_fail` beside the verdicts' balanced accuracy.
fn confidence_table(comparison: &Comparison) -> Table {
    use halubench_score::ranking::DEFAULT_ECE_BINS;
    let score = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let pct = |v: Option<f64>| v.map_or("-".to_string(), halubench_score::compare::pct);
    let ece = format!("ECE ({DEFAULT_ECE_BINS} bins)");
    let mut table = Table::new([
        "judge",
        "n scored",
        "AUROC",
        "AP (FAIL)",
        "Brier",
        ece.as_str(),
        "balanced acc. at the verdict",
        "best balanced acc. over thresholds",
    ]);
    for judge in &comparison.judges {
        let m = &judge.metrics.all_rows;
        let t = m.threshold_free.as_ref();
        table.push([
            judge.name.clone(),
            t.map_or(0, |t| t.n_scored).to_string(),
            score(t.and_then(|t| t.auroc)),
            score(t.and_then(|t| t.pr_auc)),
            score(t.map(|t| t.brier)),
            score(t.map(|t| t.ece)),
            pct(m.balanced_accuracy),
            pct(t
                .and_then(|t| t.best_balanced_accuracy)
                .map(|b| b.balanced_accuracy)),
        ]);
    }
    table
}

/// Example cards: an example's texts beside every judge's reply.
struct Cards<'a> {
    runs: &'a [LoadedRun],
    texts: Option<&'a HashMap<String, Example>>,
    /// Per run, its judgements by example id.
    by_id: Vec<HashMap<&'a str, &'a Judgement>>,
}

impl<'a> Cards<'a> {
    fn new(runs: &'a [LoadedRun], texts: Option<&'a HashMap<String, Example>>) -> Cards<'a> {
        let by_id = runs
            .iter()
            .map(|r| r.judgements.iter().map(|j| (j.id.as_str(), j)).collect())
            .collect();
        Cards { runs, texts, by_id }
    }

    fn card(&self, judgement: &Judgement) -> ExampleCard {
        let example = self.texts.and_then(|t| t.get(&judgement.id));
        ExampleCard {
            id: judgement.id.clone(),
            task: judgement.task.clone(),
            label: judgement.label.to_string(),
            question: example.map(|e| e.question.clone()),
            answer: example.map(|e| e.answer.clone()),
            passage: example.map(|e| e.passage.clone()),
            replies: self
                .runs
                .iter()
                .zip(&self.by_id)
                .filter_map(|(run, m)| {
                    let judged = m.get(judgement.id.as_str())?;
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
    }

    /// A line saying how many `what` there are and how many are shown, then the first
    /// `max` of `chosen` as cards.
    fn blocks(&self, chosen: &[&Judgement], what: &str, max: usize) -> Vec<Block> {
        let total = chosen.len();
        let cards: Vec<ExampleCard> = chosen.iter().take(max).map(|j| self.card(j)).collect();
        let mut blocks = vec![Block::Paragraph(if cards.len() < total {
            format!(
                "{total} {what}; the first {} are shown (raise --max-examples for more).",
                cards.len()
            )
        } else {
            format!("{total} {what}.")
        })];
        if self.texts.is_none() && total > 0 {
            blocks.push(Block::Paragraph(
                "Passages, questions and answers are not shown: the dataset could not be loaded."
                    .to_string(),
            ));
        }
        blocks.push(Block::Examples(cards));
        blocks
    }
}

/// One run: the examples its judge got wrong. Several: the examples where the judges
/// disagree (some right, some wrong).
fn disagreements_section(cards: &Cards<'_>, max_examples: usize) -> Section {
    let single = cards.runs.len() == 1;
    let mut chosen: Vec<&Judgement> = cards.runs[0]
        .judgements
        .iter()
        .filter(|j| {
            let correct: Vec<bool> = cards
                .by_id
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
    let (heading, what) = if single {
        ("Wrong verdicts", "examples the judge got wrong")
    } else {
        ("Disagreements", "examples where the judges disagree")
    };
    Section {
        heading: heading.to_string(),
        blocks: cards.blocks(&chosen, what, max_examples),
    }
}
