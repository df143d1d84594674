//! The threshold-free scores against reference values computed once by
//! `tests/reference_ranking.py` with scikit-learn 1.9.1 and NumPy 2.4.6 (re-run it to
//! regenerate; these tests never call Python): `roc_auc_score`, `average_precision_score`
//! and `brier_score_loss` on the 300 rows below, the expected calibration error by the
//! script's own NumPy loop over 10 bins, and the best balanced accuracy and its threshold
//! from the first maximum of `(tpr + 1 - fpr) / 2` along `roc_curve(drop_intermediate=False)`.

use halubench_core::{Judgement, Label, Verdict};
use halubench_score::Summary;
use halubench_score::ranking::{DEFAULT_ECE_BINS, ThresholdFree, threshold_free};

const TOLERANCE: f64 = 1e-9;
const TASKS: [&str; 3] = ["DROP", "covidQA", "halueval"];

/// The 300 (task, label, p_fail) rows of `reference_ranking.py`, formula for formula.
/// `p_fail = k / 20` takes 21 values, so there are many ties, and 0.0 and 1.0 both occur.
fn reference_rows() -> Vec<(&'static str, Label, f64)> {
    (0..300usize)
        .map(|i| {
            let fail = (7 * i + 3) % 5 < 2;
            let k = (11 * i + 4) % 17 + if fail { 4 } else { 0 };
            let label = if fail { Label::Fail } else { Label::Pass };
            (TASKS[i % 3], label, k as f64 / 20.0)
        })
        .collect()
}

/// What the script printed for one set of rows.
struct Expected {
    n: usize,
    auroc: f64,
    average_precision: f64,
    brier: f64,
    ece: f64,
    best_balanced_accuracy: f64,
    best_threshold: f64,
}

const DROP: Expected = Expected {
    n: 100,
    auroc: 0.7022916666666666,
    average_precision: 0.6511047367384047,
    brier: 0.22367499999999996,
    ece: 0.15850000000000003,
    best_balanced_accuracy: 0.625,
    best_threshold: 0.85,
};

const COVIDQA: Expected = Expected {
    n: 100,
    auroc: 0.7283333333333333,
    average_precision: 0.6732164185984517,
    brier: 0.21080000000000002,
    ece: 0.13599999999999995,
    best_balanced_accuracy: 0.6416666666666666,
    best_threshold: 0.65,
};

const HALUEVAL: Expected = Expected {
    n: 100,
    auroc: 0.6920833333333333,
    average_precision: 0.637595763200701,
    brier: 0.227675,
    ece: 0.15350000000000003,
    best_balanced_accuracy: 0.6166666666666667,
    best_threshold: 0.8,
};

const ALL_ROWS: Expected = Expected {
    n: 300,
    auroc: 0.7069444444444445,
    average_precision: 0.6530857242895852,
    brier: 0.22071666666666667,
    ece: 0.14600000000000005,
    best_balanced_accuracy: 0.6208333333333333,
    best_threshold: 0.85,
};

fn assert_close(what: &str, got: Option<f64>, want: f64) {
    let got = got.unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{what}: got {got}, reference {want}"
    );
}

fn pairs_of(task: Option<&str>) -> Vec<(Label, f64)> {
    reference_rows()
        .into_iter()
        .filter(|(t, _, _)| task.is_none_or(|task| task == *t))
        .map(|(_, label, p)| (label, p))
        .collect()
}

fn check(name: &str, got: &ThresholdFree, want: &Expected) {
    assert_eq!((got.n_scored, got.n_skipped), (want.n, 0), "{name}");
    assert_close(&format!("{name} AUROC"), got.auroc, want.auroc);
    assert_close(&format!("{name} AP"), got.pr_auc, want.average_precision);
    assert_close(&format!("{name} Brier"), Some(got.brier), want.brier);
    assert_close(&format!("{name} ECE"), Some(got.ece), want.ece);
    let best = got.best_balanced_accuracy.expect("both classes");
    assert_close(
        &format!("{name} best balanced accuracy"),
        Some(best.balanced_accuracy),
        want.best_balanced_accuracy,
    );
    // The data have exact ties for the best (DROP: 0.85, 0.6 and 0.25), so this also checks
    // that the highest threshold wins, as the first maximum along scikit-learn's curve.
    assert_eq!(best.threshold, want.best_threshold, "{name} threshold");
}

#[test]
fn threshold_free_scores_match_scikit_learn() {
    let expected = [
        (Some("DROP"), &DROP),
        (Some("covidQA"), &COVIDQA),
        (Some("halueval"), &HALUEVAL),
        (None, &ALL_ROWS),
    ];
    for (task, want) in expected {
        let got = threshold_free(&pairs_of(task), DEFAULT_ECE_BINS).expect("rows");
        check(task.unwrap_or("all rows"), &got, want);
    }
}

/// The reference rows as judgements, plus rows without `p_fail` that must change nothing
/// but the row counts.
fn reference_judgements() -> Vec<Judgement> {
    let scored = reference_rows()
        .into_iter()
        .enumerate()
        .map(|(i, (task, label, p))| {
            let verdict = if p >= 0.5 {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
            let mut judgement = Judgement::new(format!("ex-{i:03}"), task, label, verdict);
            judgement.p_fail = Some(p);
            judgement
        });
    let unscored = (0..30usize).map(|i| {
        let label = if i % 2 == 0 { Label::Fail } else { Label::Pass };
        Judgement::new(
            format!("plain-{i:02}"),
            TASKS[i % 3],
            label,
            Verdict::from(label),
        )
    });
    scored.chain(unscored).collect()
}

#[test]
fn summary_scores_each_task_and_pools_all_rows() {
    let summary = Summary::from_judgements(&reference_judgements());
    assert_eq!((summary.n, summary.confidence.n_scored), (330, 300));
    for (task, want) in [
        ("DROP", &DROP),
        ("covidQA", &COVIDQA),
        ("halueval", &HALUEVAL),
    ] {
        let score = &summary.tasks[task];
        assert_eq!(
            (score.n, score.confidence.n_scored),
            (110, want.n),
            "{task}"
        );
        assert_close(&format!("{task} AUROC"), score.confidence.auroc, want.auroc);
        assert_close(
            &format!("{task} AP"),
            score.confidence.pr_auc,
            want.average_precision,
        );
        assert_close(&format!("{task} Brier"), score.confidence.brier, want.brier);
        assert_close(&format!("{task} ECE"), score.confidence.ece, want.ece);
    }
    assert_close("all rows AUROC", summary.confidence.auroc, ALL_ROWS.auroc);
    assert_close(
        "all rows AP",
        summary.confidence.pr_auc,
        ALL_ROWS.average_precision,
    );
    assert_close("all rows Brier", summary.confidence.brier, ALL_ROWS.brier);
    assert_close("all rows ECE", summary.confidence.ece, ALL_ROWS.ece);

    let json: serde_json::Value = serde_json::from_str(&summary.to_json()).expect("json");
    for key in ["auroc", "pr_auc", "brier", "ece", "n_scored"] {
        assert!(json["tasks"]["DROP"].get(key).is_some(), "{key} in {json}");
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert_eq!(json["tasks"]["DROP"]["n_scored"], 100);
    let back: Summary = serde_json::from_str(&summary.to_json()).expect("round trip");
    assert_eq!(back, summary);
}

#[test]
fn the_table_gains_the_probability_rows() {
    let summary = Summary::from_judgements(&reference_judgements());
    let csv = summary.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "metric,HaluEval,DROP,CovidQA,Overall", "{csv}");
    // Overall is the mean of the three tasks, like the accuracy row above it.
    let overall = (HALUEVAL.auroc + DROP.auroc + COVIDQA.auroc) / 3.0;
    assert_eq!(
        lines[6],
        format!("AUROC,0.692,0.702,0.728,{overall:.3}"),
        "{csv}"
    );
    assert!(
        lines[7].starts_with("AP (FAIL),0.638,0.651,0.673,"),
        "{csv}"
    );
    assert!(lines[8].starts_with("Brier,0.228,0.224,0.211,"), "{csv}");
    // HaluEval's ECE is 0.1535 give or take rounding error, so its cell may read either way.
    let ece = |task: &str| {
        format!(
            "{:.3}",
            summary.tasks[task].confidence.ece.unwrap_or(f64::NAN)
        )
    };
    assert!(
        lines[9].starts_with(&format!("ECE (10 bins),{},0.159,0.136,", ece("halueval"))),
        "{csv}"
    );
    assert!(
        lines[10].starts_with("balanced acc. at the verdict (%),"),
        "{csv}"
    );
    // scikit-learn's best balanced accuracy along roc_curve (tests/reference_ranking.py):
    // HaluEval 0.61667 at 0.8, DROP 0.625 at 0.85, CovidQA 0.64167 at 0.65.
    assert_eq!(
        lines[11], "best balanced acc. over thresholds (%),61.7,62.5,64.2,62.8",
        "{csv}"
    );
    assert_eq!(summary.tasks["DROP"].best_threshold, Some(0.85));
    assert_eq!(summary.tasks["covidQA"].best_threshold, Some(0.65));
    assert_eq!(lines[12], "n scored,100,100,100,300", "{csv}");
    assert_eq!(lines.len(), 13, "{csv}");
    let md = summary.to_markdown("t");
    assert!(md.contains("| AUROC | 0.692 | 0.702 | 0.728 |"), "{md}");
    assert!(md.contains("| n scored | 100 | 100 | 100 | 300 |"), "{md}");
}

#[test]
fn judges_without_probabilities_keep_the_old_files() {
    let plain: Vec<Judgement> = reference_judgements()
        .into_iter()
        .map(|mut j| {
            j.p_fail = None;
            j
        })
        .collect();
    let summary = Summary::from_judgements(&plain);
    assert_eq!(summary.confidence.n_scored, 0);
    let json = summary.to_json();
    for key in ["auroc", "pr_auc", "brier", "ece", "n_scored"] {
        assert!(!json.contains(key), "{key} in {json}");
    }
    assert_eq!(summary.to_csv().lines().count(), 6);
    assert!(!summary.to_markdown("t").contains("AUROC"));
}
