//! examples/paper-judges.toml end to end on the 143 sample rows: every judge of the file
//! against a scripted endpoint on loopback, then the reproduction table. The file is used as
//! shipped except where a test machine must differ: the dataset is the sample, every
//! endpoint is a fake server, and the local Lynx GGUF judge (8 GB, a download) becomes an
//! endpoint judge of the same row (tests/it/local.rs runs the local judge on a real GGUF).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fake_openai::{self, Fault};
use crate::{halubench_command, read_json, sample_path, stderr, workspace_root};

#[test]
fn the_paper_suite_reproduces_every_row_against_scripted_endpoints() {
    let lynx = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let ragas = crate::ragas::serve();
    let dir = tempfile::tempdir().expect("tempdir");

    let shipped = std::fs::read_to_string(workspace_root().join("examples/paper-judges.toml"))
        .expect("examples/paper-judges.toml");
    let mut suite: toml::Table = toml::from_str(&shipped).expect("the shipped suite parses");
    suite.insert("dataset".into(), sample_path().into());
    let judges = suite
        .get_mut("judge")
        .and_then(toml::Value::as_array_mut)
        .expect("judges");
    let mut rows: BTreeMap<String, (String, String)> = BTreeMap::new();
    for judge in judges.iter_mut() {
        let judge = judge.as_table_mut().expect("a table");
        let kind = judge["judge"].as_str().expect("judge kind").to_string();
        let name = judge["name"].as_str().expect("name").to_string();
        if kind == "local" {
            judge.insert("judge".into(), "openai".into());
            judge.insert("model".into(), "lynx-8b-q4km-stand-in".into());
        }
        let url = if kind == "ragas" {
            &ragas.base_url
        } else {
            &lynx.base_url
        };
        if kind != "baseline" {
            judge.insert("base-url".into(), url.as_str().into());
        }
        if let Some(paper) = judge.get("paper").and_then(toml::Value::as_str) {
            let rule = judge
                .get("rule")
                .and_then(toml::Value::as_str)
                .unwrap_or("paper");
            rows.insert(name, (paper.to_string(), rule.to_string()));
        }
    }
    // All ten rows of Table 3, Lynx (8B) twice (served, and its Q4_K_M file).
    let papers: std::collections::BTreeSet<&str> = rows.values().map(|(p, _)| p.as_str()).collect();
    assert_eq!(papers.len(), 10, "{papers:?}");
    assert_eq!(rows.len(), 11);
    let file = dir.path().join("paper.toml");
    std::fs::write(&file, toml::to_string(&suite).expect("toml")).expect("write");

    let out = halubench_command(dir.path(), &["suite", "run", "paper.toml", "--out", "s"])
        .env("OPENAI_API_KEY", "sk-test-openai-0000")
        .env("ANTHROPIC_API_KEY", "sk-test-anthropic-0000")
        .output()
        .expect("run halubench");
    assert!(out.status.success(), "{}", stderr(&out));

    // reproduction.csv: a row per judge and paper column, each judge beside its own row of
    // Table 3 under its own rule.
    let csv = std::fs::read_to_string(dir.path().join("s/comparison/reproduction.csv"))
        .expect("reproduction.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("judge,paper row,task,paper (%),ours (%),interval,verdict,rule,rows")
    );
    let table: Vec<Vec<String>> = lines.map(csv_cells).collect();
    assert_eq!(table.len(), 11 * 7);
    let compare = read_json(&dir.path().join("s/comparison/compare.json"));
    let reproduction = compare["reproduction"].as_array().expect("reproduction");
    assert_eq!(reproduction.len(), 11);

    for (name, (paper, rule)) in &rows {
        let mine: Vec<&Vec<String>> = table.iter().filter(|r| &r[0] == name).collect();
        assert_eq!(mine.len(), 7, "{name}");
        assert!(
            mine.iter().all(|r| &r[1] == paper && &r[7] == rule),
            "{name}: {mine:?}"
        );
        // Ours is the judge's own accuracy under its rule, counted here from its journal.
        let journal =
            std::fs::read_to_string(dir.path().join("s").join(name).join("judgements.jsonl"))
                .expect("journal");
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for line in journal.lines() {
            let j: serde_json::Value = serde_json::from_str(line).expect("json");
            if rule == "exclude-invalid" && j["verdict"] == "INVALID" {
                continue;
            }
            let entry = counts
                .entry(j["task"].as_str().unwrap_or_default().to_string())
                .or_default();
            entry.0 += 1;
            entry.1 += (j["verdict"] == j["label"]) as usize;
        }
        let entry = reproduction
            .iter()
            .find(|r| r["judge"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} in compare.json"));
        assert_eq!(entry["paper"], paper.as_str());
        for (task, (n, correct)) in &counts {
            let cell = &entry["tasks"][task];
            let ours = 100.0 * *correct as f64 / *n as f64;
            let estimate = cell["estimate"].as_f64().unwrap_or(f64::NAN);
            assert!(
                (estimate - ours).abs() < 1e-9,
                "{name} {task}: {estimate} vs {ours}"
            );
            // The verdict is the interval's, widened by the suite's tolerance (1 pp).
            let (lower, upper) = (
                cell["lower"].as_f64().unwrap_or(f64::NAN),
                cell["upper"].as_f64().unwrap_or(f64::NAN),
            );
            assert!(lower <= estimate && estimate <= upper, "{name} {task}");
            let value = cell["paper"].as_f64().unwrap_or(f64::NAN);
            let consistent = lower - 1.0 - 1e-9 <= value && value <= upper + 1.0 + 1e-9;
            assert_eq!(
                cell["verdict"],
                if consistent { "consistent" } else { "differs" },
                "{name} {task}"
            );
        }
    }
    let md = std::fs::read_to_string(dir.path().join("s/comparison/reproduction.md")).expect("md");
    assert!(
        md.contains("| ragas | RAGAS Faithfulness |") && md.contains("exclude-invalid"),
        "{md}"
    );
}

/// One CSV line's cells (quoted cells may hold commas; the table has no line breaks).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            c => cells.last_mut().expect("a cell").push(c),
        }
    }
    cells
}
