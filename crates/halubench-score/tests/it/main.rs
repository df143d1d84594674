//! Integration tests of halubench-score's statistics against reference values computed once
//! with scikit-learn 1.9.1 and SciPy 1.17.1 by `tests/reference_values.py` (re-run it to
//! regenerate; these tests never call Python). The core of that script:
//!
//! ```python
//! def row(i):
//!     task = ["DROP", "covidQA", "halueval"][i % 3]
//!     label = "FAIL" if (7 * i + 3) % 5 < 2 else "PASS"
//!     h = (13 * i + 5) % 17
//!     wrong = "PASS" if label == "FAIL" else "FAIL"
//!     verdict = "INVALID" if h < 2 else label if h < 9 + 2 * (i % 3) else wrong
//!     return task, label, verdict
//! # per task and for all 210 rows; b = v with INVALID -> PASS (not flagged)
//! M.confusion_matrix(y, v, labels=["PASS", "FAIL", "INVALID"])[:2]
//! M.accuracy_score(y, v), M.balanced_accuracy_score(y, v)
//! M.precision_score(y, b, pos_label="FAIL"), M.recall_score(y, b, pos_label="FAIL")
//! M.f1_score(y, b, pos_label="FAIL"), M.matthews_corrcoef(y, b)
//! # exact McNemar
//! min(1.0, 2 * binomtest(min(b, c), b + c, 0.5, alternative="less").pvalue)
//! ```

use std::collections::BTreeMap;

use halubench_core::{Judgement, Label, Verdict};
use halubench_score::AccuracyRule;
use halubench_score::Summary;
use halubench_score::bootstrap::{BootstrapConfig, bootstrap_accuracy, paired_bootstrap};
use halubench_score::metrics::{Confusion, Metrics, VerdictCounts, metrics};
use halubench_score::paper::{Reproduction, RunTask, compare_with_paper};
use halubench_score::significance::{holm, mcnemar_exact, mcnemar_judges};

mod ranking;
mod rule;

const TOLERANCE: f64 = 1e-9;

/// The 210 judgements of `reference_values.py`, formula for formula.
fn reference_judgements() -> Vec<Judgement> {
    (0..210usize)
        .map(|i| {
            let task = ["DROP", "covidQA", "halueval"][i % 3];
            let label = if (7 * i + 3) % 5 < 2 {
                Label::Fail
            } else {
                Label::Pass
            };
            let wrong = match label {
                Label::Fail => Verdict::Pass,
                Label::Pass => Verdict::Fail,
            };
            let h = (13 * i + 5) % 17;
            let verdict = if h < 2 {
                Verdict::Invalid
            } else if h < 9 + 2 * (i % 3) {
                Verdict::from(label)
            } else {
                wrong
            };
            Judgement::new(format!("ex-{i:03}"), task, label, verdict)
        })
        .collect()
}

/// What scikit-learn computed for one set of rows.
struct Expected {
    /// Rows PASS, FAIL; columns PASS, FAIL, INVALID.
    confusion: [[usize; 3]; 2],
    accuracy: f64,
    balanced_accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    mcc: f64,
}

const DROP: Expected = Expected {
    confusion: [[18, 20, 4], [13, 11, 4]],
    accuracy: 0.4142857142857143,
    balanced_accuracy: 0.4107142857142857,
    precision: 0.3548387096774194,
    recall: 0.39285714285714285,
    f1: 0.3728813559322034,
    mcc: -0.08218816126224048,
};

const COVIDQA: Expected = Expected {
    confusion: [[22, 15, 5], [9, 15, 4]],
    accuracy: 0.5285714285714286,
    balanced_accuracy: 0.5297619047619048,
    precision: 0.5,
    recall: 0.5357142857142857,
    f1: 0.5172413793103449,
    mcc: 0.17677669529663687,
};

const HALUEVAL: Expected = Expected {
    confusion: [[27, 10, 5], [7, 18, 3]],
    accuracy: 0.6428571428571429,
    balanced_accuracy: 0.6428571428571429,
    precision: 0.6428571428571429,
    recall: 0.6428571428571429,
    f1: 0.6428571428571429,
    mcc: 0.40476190476190477,
};

const ALL_ROWS: Expected = Expected {
    confusion: [[67, 45, 14], [29, 44, 11]],
    accuracy: 0.5285714285714286,
    balanced_accuracy: 0.5277777777777778,
    precision: 0.4943820224719101,
    recall: 0.5238095238095238,
    f1: 0.5086705202312138,
    mcc: 0.16522888673756772,
};

/// (b, c, p) from SciPy's `binomtest`.
const MCNEMAR: [(u64, u64, f64); 7] = [
    (1, 4, 0.375),
    (3, 7, 0.34375),
    (10, 3, 0.09228515625),
    (40, 65, 0.018740915408258018),
    (400, 480, 0.007707305043339153),
    (5, 60, 4.869560700851427e-13),
    (1000, 1100, 0.03072070786424249),
];

fn assert_close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{what}: got {got}, scikit-learn/SciPy {want}"
    );
}

fn check(name: &str, got: &Metrics, want: &Expected) {
    let row = |counts: VerdictCounts| [counts.pass, counts.fail, counts.invalid];
    let Confusion { pass, fail } = got.confusion;
    assert_eq!([row(pass), row(fail)], want.confusion, "{name}: confusion");
    assert_close(&format!("{name} accuracy"), got.accuracy, want.accuracy);
    let balanced = got.balanced_accuracy.unwrap_or(f64::NAN);
    assert_close(
        &format!("{name} balanced accuracy"),
        balanced,
        want.balanced_accuracy,
    );
    assert_close(&format!("{name} precision"), got.precision, want.precision);
    assert_close(&format!("{name} recall"), got.recall, want.recall);
    assert_close(&format!("{name} f1"), got.f1, want.f1);
    assert_close(&format!("{name} mcc"), got.mcc, want.mcc);
}

#[test]
fn metrics_match_scikit_learn() {
    let report = metrics(&reference_judgements());
    assert_eq!(report.tasks.len(), 3);
    check("DROP", &report.tasks["DROP"], &DROP);
    check("covidQA", &report.tasks["covidQA"], &COVIDQA);
    check("halueval", &report.tasks["halueval"], &HALUEVAL);
    check("all rows", &report.all_rows, &ALL_ROWS);
    assert_close(
        "overall macro",
        report.overall_macro,
        (DROP.accuracy + COVIDQA.accuracy + HALUEVAL.accuracy) / 3.0,
    );
    assert_close(
        "invalid rate",
        report.all_rows.invalid_rate,
        (14.0 + 11.0) / 210.0,
    );
}

#[test]
fn metrics_agree_with_the_summary_the_report_files_use() {
    let judgements = reference_judgements();
    let report = metrics(&judgements);
    let summary = Summary::from_judgements(&judgements);
    assert_close("macro", report.overall_macro, summary.overall_macro);
    assert_close("micro", report.all_rows.accuracy, summary.overall_micro);
    for (task, score) in &summary.tasks {
        let accuracy = score
            .accuracy
            .expect("every task of the reference run has rows");
        assert_close(task, report.tasks[task].accuracy, accuracy);
    }
}

#[test]
fn mcnemar_matches_scipy() {
    for (b, c, want) in MCNEMAR {
        let got = mcnemar_exact(b, c);
        // Relative, since one of the p-values is 5e-13.
        assert!(
            (got - want).abs() <= TOLERANCE * want,
            "b={b}, c={c}: got {got}, SciPy {want}"
        );
        assert_eq!(got, mcnemar_exact(c, b), "symmetric in b and c");
    }
}

#[test]
fn comparing_two_judges_end_to_end() {
    let first = reference_judgements();
    // A second judge that fixes every INVALID of the first and nothing else.
    let second: Vec<Judgement> = first
        .iter()
        .map(|j| {
            let mut j = j.clone();
            if j.verdict == Verdict::Invalid {
                j.verdict = Verdict::from(j.label);
            }
            j
        })
        .collect();

    let test = mcnemar_judges(&first, &second).expect("same examples");
    assert_eq!((test.first_only_correct, test.second_only_correct), (0, 25));
    assert_close("p", test.p_value, 2.0 * 0.5f64.powi(25));

    let config = BootstrapConfig::with_seed(2024);
    let diff = paired_bootstrap(&first, &second, &config).expect("same examples");
    let macro_diff = metrics(&first).overall_macro - metrics(&second).overall_macro;
    assert_close("paired estimate", diff.overall_macro.estimate, macro_diff);
    assert!(diff.overall_macro.upper < 0.0, "{:?}", diff.overall_macro);
    assert_eq!(
        diff,
        paired_bootstrap(&first, &second, &config).expect("same examples"),
        "same seed, same intervals"
    );

    // One McNemar test per task, adjusted together.
    let by_task = |judgements: &[Judgement], task: &str| -> Vec<Judgement> {
        judgements
            .iter()
            .filter(|j| j.task == task)
            .cloned()
            .collect()
    };
    let p_values: Vec<f64> = ["DROP", "covidQA", "halueval"]
        .iter()
        .map(|task| {
            mcnemar_judges(&by_task(&first, task), &by_task(&second, task))
                .expect("same examples")
                .p_value
        })
        .collect();
    let adjusted = holm(&p_values).expect("probabilities");
    for (p, a) in p_values.iter().zip(&adjusted) {
        assert!(a >= p && *a <= 1.0);
    }
}

#[test]
fn bootstrap_intervals_bracket_the_reference_accuracies() {
    let judgements = reference_judgements();
    let intervals =
        bootstrap_accuracy(&judgements, &BootstrapConfig::default()).expect("bootstrap");
    let expected = [
        ("DROP", DROP.accuracy),
        ("covidQA", COVIDQA.accuracy),
        ("halueval", HALUEVAL.accuracy),
    ];
    for (task, accuracy) in expected {
        let interval = intervals.tasks[task];
        assert_close(task, interval.estimate, accuracy);
        assert!(interval.contains(accuracy), "{task}: {interval:?}");
        // 70 rows per task: a 95% interval of roughly ±2 standard errors (±0.12 at 50%).
        assert!(
            (0.1..0.35).contains(&interval.width()),
            "{task}: {interval:?}"
        );
    }
    assert!(intervals.overall_macro.width() < intervals.tasks["DROP"].width());
}

#[test]
fn a_run_sets_beside_the_paper_by_its_intervals() {
    let judgements = reference_judgements();
    let report = metrics(&judgements);
    let intervals = bootstrap_accuracy(&judgements, &BootstrapConfig::with_seed(7)).expect("ok");
    let run: BTreeMap<String, RunTask> = intervals
        .tasks
        .iter()
        .map(|(task, interval)| {
            let selected = report.tasks[task].n;
            (
                task.clone(),
                RunTask {
                    interval: Some(*interval),
                    counted: selected,
                    selected,
                },
            )
        })
        .collect();
    let comparison = compare_with_paper(
        "reference",
        &run,
        Some(intervals.overall_macro),
        AccuracyRule::Paper,
        "Lynx (8B)",
        2.0,
    )
    .expect("row exists");
    let drop = &comparison.tasks["DROP"];
    assert_close(
        "DROP diff",
        drop.cell.diff_pp.unwrap_or(f64::NAN),
        DROP.accuracy * 100.0 - 77.8,
    );
    // 41.4% on 70 rows: the paper's 77.8 is far outside even the widened interval.
    assert_eq!(drop.cell.verdict, Some(Reproduction::Differs));
    assert!(drop.partial());
    assert_eq!(comparison.tasks["RAGTruth"].cell.verdict, None);
    assert_eq!(comparison.overall.cell.estimate, None);
}
