//! Renders one example of every chart and a page holding them, for looking at by eye:
//! `cargo run -p halubench-report --example preview -- /tmp/halubench-report-preview`
//! (or `-- target/chart-preview`, to keep the images beside the build).

use std::path::PathBuf;

use halubench_report::{
    Block, CurveSeries, Curves, ExampleCard, GroupedBars, Heatmap, Page, Reply, Section, Series,
    Table, Trend, TrendSeries, Whisker, accuracy_bars, confusion_heatmap, html_page, trend_lines,
    unit_curves,
};

fn whisker(value: f64, half: f64) -> Option<Whisker> {
    Some(Whisker {
        value,
        lower: (value - half).max(0.0),
        upper: (value + half).min(100.0),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/halubench-report-preview".into()),
    );
    std::fs::create_dir_all(&dir)?;

    let bars = accuracy_bars(&GroupedBars {
        title: "Accuracy by task (HaluBench test split, 95% Wilson intervals)".into(),
        groups: vec![
            "summarization".into(),
            "question answering".into(),
            "dialogue".into(),
            "a task heading far too long to fit below its bars".into(),
        ],
        series: vec![
            Series {
                name: "baseline (always PASS)".into(),
                values: vec![
                    whisker(50.2, 4.1),
                    whisker(48.0, 3.0),
                    None,
                    whisker(0.0, 2.0),
                ],
            },
            Series {
                name: "llama-3.1-8b-instruct-q4_k_m".into(),
                values: vec![
                    whisker(78.5, 3.2),
                    whisker(81.0, 2.5),
                    whisker(70.0, 5.5),
                    whisker(99.0, 1.0),
                ],
            },
            Series {
                name: "gpt-4o-mini via a very long OpenAI-compatible endpoint name".into(),
                values: vec![
                    whisker(86.1, 2.1),
                    whisker(90.3, 1.8),
                    whisker(83.0, 4.0),
                    whisker(100.0, 0.0),
                ],
            },
        ],
    })?;
    let heatmap = confusion_heatmap(&Heatmap {
        title: "llama-3.1-8b on summarization".into(),
        rows: vec!["label PASS".into(), "label FAIL".into()],
        columns: vec!["PASS".into(), "FAIL".into(), "INVALID".into()],
        counts: vec![vec![412, 61, 7], vec![88, 395, 12]],
    })?;
    let trend = trend_lines(&Trend {
        labels: Vec::new(),
        title: "Accuracy over runs".into(),
        y_label: "accuracy (%)".into(),
        series: vec![
            TrendSeries {
                name: "baseline".into(),
                points: vec![
                    ("2026-01-05".into(), 50.0),
                    ("2026-02-02".into(), 50.0),
                    ("2026-03-01".into(), 50.0),
                ],
            },
            TrendSeries {
                name: "llama-3.1-8b".into(),
                points: vec![
                    ("2026-02-02".into(), 77.0),
                    ("2026-03-01".into(), 80.5),
                    ("2026-04-01".into(), 82.0),
                ],
            },
            TrendSeries {
                name: "gpt-4o-mini".into(),
                points: vec![("2026-04-01".into(), 88.0)],
            },
        ],
    })?;

    // Shaped like `halubench_score::ranking::roc_points`: (0, 0), one point per distinct score
    // (a tie is one diagonal step), (1, 1).
    let roc = unit_curves(&Curves {
        title: "ROC of p_fail (FAIL positive)".into(),
        x_label: "false positive rate".into(),
        y_label: "true positive rate".into(),
        series: vec![
            CurveSeries {
                name: "llama-3.1-8b (AUROC 0.80)".into(),
                points: vec![
                    (0.0, 0.0),
                    (0.0, 0.2),
                    (0.04, 0.35),
                    (0.1, 0.5),
                    (0.18, 0.62),
                    (0.3, 0.75),
                    (0.45, 0.85),
                    (0.62, 0.92),
                    (0.8, 0.97),
                    (1.0, 1.0),
                ],
                markers: false,
            },
            CurveSeries {
                name: "verbalized confidence (coarse, tied)".into(),
                points: vec![(0.0, 0.0), (0.1, 0.45), (0.35, 0.8), (1.0, 1.0)],
                markers: false,
            },
        ],
    })?;
    // Shaped like `reliability_bins`: (mean p_fail, share of FAIL) per non-empty bin.
    let reliability = unit_curves(&Curves {
        title: "Reliability of p_fail (10 bins)".into(),
        x_label: "mean p_fail in bin".into(),
        y_label: "share of FAIL rows in bin".into(),
        series: vec![
            CurveSeries {
                name: "llama-3.1-8b (ECE 0.06)".into(),
                points: vec![
                    (0.03, 0.08),
                    (0.14, 0.15),
                    (0.26, 0.33),
                    (0.45, 0.52),
                    (0.66, 0.61),
                    (0.83, 0.74),
                    (0.97, 0.9),
                ],
                markers: true,
            },
            CurveSeries {
                name: "gpt-4o-mini (ECE 0.11)".into(),
                points: vec![(0.05, 0.2), (0.5, 0.55), (0.95, 0.78)],
                markers: true,
            },
        ],
    })?;

    for (name, chart) in [
        ("bars", &bars),
        ("heatmap", &heatmap),
        ("trend", &trend),
        ("roc", &roc),
        ("reliability", &reliability),
    ] {
        std::fs::write(dir.join(format!("{name}.png")), &chart.png)?;
        std::fs::write(dir.join(format!("{name}.svg")), &chart.svg)?;
    }

    let page = html_page(&Page {
        title: "halubench report <preview>".into(),
        notes: vec!["runs used different prompts: v1 (baseline), v2 (llama)".into()],
        sections: vec![
            Section {
                heading: "Accuracy".into(),
                blocks: vec![
                    Block::Paragraph(
                        "Accuracy counts INVALID verdicts as wrong.\nIntervals are 95% Wilson."
                            .into(),
                    ),
                    Block::Table(Table {
                        header: vec!["judge".into(), "accuracy".into(), "invalid".into()],
                        rows: vec![
                            vec!["baseline".into(), "50.2%".into(), "0.0%".into()],
                            vec!["llama-3.1-8b".into(), "78.5%".into(), "1.9%".into()],
                        ],
                    }),
                    Block::Chart {
                        caption: "Accuracy by task".into(),
                        svg: bars.svg.clone(),
                    },
                    Block::Chart {
                        caption: "Confusion".into(),
                        svg: heatmap.svg.clone(),
                    },
                    Block::Chart {
                        caption: "Trend".into(),
                        svg: trend.svg.clone(),
                    },
                    Block::Chart {
                        caption: "ROC".into(),
                        svg: roc.svg.clone(),
                    },
                    Block::Chart {
                        caption: "Reliability".into(),
                        svg: reliability.svg.clone(),
                    },
                ],
            },
            Section {
                heading: "Examples".into(),
                blocks: vec![Block::Examples(vec![ExampleCard {
                    id: "halueval-qa-0017".into(),
                    task: "qa".into(),
                    label: "FAIL".into(),
                    question: Some("Who wrote <b>Dune</b>?".into()),
                    answer: Some("Isaac Asimov".into()),
                    passage: Some(
                        "Dune is a 1965 novel by Frank Herbert.\n\n<script>alert(1)</script>"
                            .into(),
                    ),
                    replies: vec![
                        Reply {
                            judge: "baseline".into(),
                            verdict: "PASS".into(),
                            correct: false,
                            text: "PASS".into(),
                        },
                        Reply {
                            judge: "llama-3.1-8b".into(),
                            verdict: "FAIL".into(),
                            correct: true,
                            text: "REASONING: the passage names Frank Herbert.\nSCORE: FAIL".into(),
                        },
                    ],
                }])],
            },
        ],
    });
    std::fs::write(dir.join("report.html"), page)?;
    println!("wrote {}", dir.display());
    Ok(())
}
