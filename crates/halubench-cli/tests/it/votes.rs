//! Judges read as votes, through the real binary: `compare` over three or more runs lists
//! suspect labels, and `panel` builds a run from the members' strict majority. Both are
//! checked against a count made here from the members' journals.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::fake_openai::{self, Fault};
use crate::{halubench, read_json, sample_path, stderr};

/// id → (task, label, verdict, p_fail) from a run's journal.
type Votes = BTreeMap<String, (String, String, String, Option<f64>)>;

fn votes(run: &Path) -> Votes {
    std::fs::read_to_string(run.join("judgements.jsonl"))
        .expect("journal")
        .lines()
        .map(|line| {
            let j: serde_json::Value = serde_json::from_str(line).expect("json");
            let text = |key: &str| j[key].as_str().expect("text").to_string();
            (
                text("id"),
                (
                    text("task"),
                    text("label"),
                    text("verdict"),
                    j["p_fail"].as_f64(),
                ),
            )
        })
        .collect()
}

/// Four judges on the 143 real sample rows: the baseline at three thresholds, and an
/// endpoint judge that gives a few unparsable (INVALID) replies, which carry no p_fail.
fn four_runs(dir: &Path) -> Vec<Votes> {
    let sample = sample_path();
    for (out, threshold) in [("b50", "0.5"), ("b80", "0.8"), ("b95", "0.95")] {
        let args = [
            "run",
            "--dataset",
            &sample,
            "--threshold",
            threshold,
            "--out",
            out,
        ];
        let run = halubench(dir, &args);
        assert!(run.status.success(), "{}", stderr(&run));
    }
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let run = crate::openai::openai_run(
        dir,
        &server.base_url,
        &["--dataset", &sample, "--out", "llm"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    ["b50", "b80", "b95", "llm"]
        .iter()
        .map(|run| votes(&dir.join(run)))
        .collect()
}

fn opposite(label: &str) -> &'static str {
    if label == "PASS" { "FAIL" } else { "PASS" }
}

#[test]
fn suspect_labels_and_panels_match_an_independent_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let members = four_runs(dir.path());
    let first = &members[0];
    assert!(
        members[3].values().any(|v| v.2 == "INVALID"),
        "the endpoint judge gives some INVALID votes"
    );

    let compared = halubench(
        dir.path(),
        &["compare", "b50", "b80", "b95", "llm", "--out", "cmp"],
    );
    assert!(compared.status.success(), "{}", stderr(&compared));
    let csv = std::fs::read_to_string(dir.path().join("cmp/suspect-labels.csv")).expect("csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,task,label,against,judges"));
    let listed: Vec<String> = lines.map(str::to_string).collect();
    let expected: Vec<String> = first
        .iter()
        .filter_map(|(id, (task, label, _, _))| {
            let against = members
                .iter()
                .filter(|run| run[id].2 == opposite(label))
                .count();
            (2 * against > members.len()).then(|| format!("{id},{task},{label},{against},4"))
        })
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted, expected,
        "the CSV lists exactly the independent count"
    );
    assert!(!expected.is_empty(), "the sample has suspects to find");
    let markdown = std::fs::read_to_string(dir.path().join("cmp/compare.md")).expect("md");
    assert!(
        markdown.contains(&format!("{} examples whose gold label", expected.len())),
        "{markdown}"
    );

    // The report shows every suspect with its texts, between its own heading and the next.
    let html = std::fs::read_to_string(dir.path().join("cmp/report.html")).expect("html");
    let section = html
        .split("<h2>Suspect labels</h2>")
        .nth(1)
        .and_then(|rest| rest.split("<h2>").next())
        .expect("a Suspect labels section");
    assert_eq!(section.matches("<details").count(), expected.len());
    assert_eq!(section.matches("<h4>Passage</h4>").count(), expected.len());
    for line in &expected {
        let id = line.split(',').next().unwrap_or_default();
        assert!(section.contains(&format!("<code>{id}</code>")), "{id}");
    }

    // The panel of all four: the strict majority of four votes, INVALID ones counted.
    let out = halubench(
        dir.path(),
        &["panel", "b50", "b80", "b95", "llm", "--out", "panel"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let panel = votes(&dir.path().join("panel"));
    assert_eq!(panel.len(), first.len());
    let mut no_majority = 0;
    for (id, (_, _, verdict, p_fail)) in &panel {
        let count = |side: &str| members.iter().filter(|run| run[id].2 == side).count();
        let expected = if 2 * count("PASS") > 4 {
            "PASS"
        } else if 2 * count("FAIL") > 4 {
            "FAIL"
        } else {
            no_majority += 1;
            "INVALID"
        };
        assert_eq!(verdict, expected, "{id}");
        // The mean where every member gave one; the endpoint judge gives none with its
        // INVALID replies.
        let all: Option<Vec<f64>> = members.iter().map(|run| run[id].3).collect();
        let mean = all.map(|p| p.iter().sum::<f64>() / p.len() as f64);
        match (p_fail, mean) {
            (Some(got), Some(mean)) => assert!((got - mean).abs() < 1e-12, "{id}"),
            (got, mean) => assert_eq!(*got, mean, "{id}"),
        }
    }
    assert!(
        panel.values().any(|v| v.3.is_none()) && panel.values().any(|v| v.3.is_some()),
        "both cases occur"
    );
    assert!(no_majority > 0, "two-two splits happen on the sample");
    let summary = read_json(&dir.path().join("panel/summary.json"));
    assert_eq!(summary["invalid_reasons"]["no_majority"], no_majority);
    let manifest = std::fs::read_to_string(dir.path().join("panel/run.toml")).expect("toml");
    assert!(
        manifest.contains("name = \"panel\"") && manifest.contains("b95"),
        "{manifest}"
    );

    // The three baselines all give p_fail: the panel's is their mean.
    let out = halubench(dir.path(), &["panel", "b50", "b80", "b95", "--out", "p3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (id, (_, _, _, p_fail)) in votes(&dir.path().join("p3")) {
        let mean = members[..3]
            .iter()
            .map(|run| run[&id].3.expect("baseline p_fail"))
            .sum::<f64>()
            / 3.0;
        assert!((p_fail.expect("a mean") - mean).abs() < 1e-12, "{id}");
    }

    // A panel is a run like any other.
    for args in [
        &["score", "panel"][..],
        &["compare", "b80", "panel", "--out", "cmp2"],
        &["export", "panel"],
    ] {
        let out = halubench(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let gate = halubench(
        dir.path(),
        &["gate", "--baseline", "b80", "--candidate", "panel"],
    );
    assert!(
        matches!(gate.status.code(), Some(0 | 1)),
        "{}",
        stderr(&gate)
    );
    let again = halubench(dir.path(), &["panel", "b50", "b80", "--out", "panel"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing panel is not overwritten"
    );

    // Members of other examples are refused, as compare refuses them.
    let demo = halubench(dir.path(), &["run", "--out", "demo"]);
    assert!(demo.status.success(), "{}", stderr(&demo));
    let refused = halubench(dir.path(), &["panel", "b80", "demo", "--out", "bad"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not comparable"),
        "{}",
        stderr(&refused)
    );
}
