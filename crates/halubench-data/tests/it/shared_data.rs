//! The real data in ../shared/data.

use halubench_core::Label;
use halubench_data::{DatasetSpec, Registry, SelectOptions};
use std::collections::BTreeMap;
use std::path::Path;

use crate::{hub_settings, load_file, shared};

#[test]
fn halubench_sample_has_the_documented_counts() {
    let dataset =
        load_file(&shared("halubench-sample/test-00000-of-00001.parquet")).expect("sample");
    assert_eq!(dataset.examples.len(), 143);
    assert_eq!(
        dataset.info.sha256,
        "cbc9c8b43979d7a06844a5b036ba5f2887411bda1a418163166d9ddc4ebbd2d1"
    );
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for e in &dataset.examples {
        let c = counts.entry(e.task.as_str()).or_default();
        match e.label {
            Label::Pass => c.0 += 1,
            Label::Fail => c.1 += 1,
        }
    }
    let expected = BTreeMap::from([
        ("DROP", (1, 12)),
        ("FinanceBench", (11, 9)),
        ("RAGTruth", (25, 0)),
        ("covidQA", (14, 16)),
        ("halueval", (14, 12)),
        ("pubmedQA", (16, 13)),
    ]);
    assert_eq!(counts, expected);
    // The sample repeats one covidQA row exactly; both are kept and reported.
    assert_eq!(dataset.warnings.len(), 1, "{:?}", dataset.warnings);
}

#[test]
fn registry_entries_verify_sha_and_rows() {
    let registry =
        Registry::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets.toml"))
            .expect("registry");
    let offline = hub_settings(Path::new("/nonexistent"), None, true);
    let qa = halubench_data::load(&registry.resolve("halueval-qa").expect("entry"), &offline)
        .expect("halueval-qa");
    assert_eq!(qa.examples.len(), 20_000);
    assert!(qa.warnings.is_empty(), "{:?}", qa.warnings);

    // The same file with a wrong pinned digest must be refused.
    let mut wrong = registry.resolve("halubench-sample").expect("entry");
    wrong.sha256 = Some("0".repeat(64));
    let err = halubench_data::load(&wrong, &offline).expect_err("wrong digest");
    assert!(err.to_string().contains("sha256 is cbc9c8b4"), "{err}");

    let mut wrong_rows = registry.resolve("halubench-sample").expect("entry");
    wrong_rows.rows = Some(144);
    let err = halubench_data::load(&wrong_rows, &offline).expect_err("wrong rows");
    assert!(
        err.to_string().contains("has 143 rows, expected 144"),
        "{err}"
    );
}

#[test]
fn limit_samples_per_task_on_real_data() {
    let dataset =
        load_file(&shared("halubench-sample/test-00000-of-00001.parquet")).expect("sample");
    let picked = halubench_data::select(
        dataset.examples,
        &SelectOptions {
            tasks: vec!["DROP".into(), "covidQA".into()],
            limit: Some(5),
            seed: 3,
        },
    )
    .expect("select");
    assert_eq!(picked.len(), 10);
    assert_eq!(picked.iter().filter(|e| e.task == "DROP").count(), 5);
}

#[test]
fn the_embedded_demo_loads_with_six_balanced_tasks() {
    let offline = hub_settings(Path::new("/nonexistent"), None, true);
    let demo = halubench_data::load(
        &Registry::embedded().resolve("demo").expect("demo"),
        &offline,
    )
    .expect("demo loads");
    assert_eq!(demo.examples.len(), 60);
    let stats = halubench_data::inspect(&demo.examples);
    assert_eq!(stats.len(), 6);
    for (task, s) in stats {
        assert_eq!((s.pass, s.fail), (5, 5), "{task}");
    }
}

#[test]
fn column_mapping_loads_a_differently_named_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header = ["uid", "context", "question", "answer", "label", "task"];
    crate::files::write_csv(dir.path(), "renamed.csv", &header, &crate::files::GOOD);
    let registry = Registry::parse(
        "[mine]\npath = \"renamed.csv\"\ncolumns = { id = \"uid\", passage = \"context\", source_ds = \"task\" }\n",
        "test registry",
        dir.path(),
    )
    .expect("registry");
    let offline = hub_settings(Path::new("/nonexistent"), None, true);
    let dataset = halubench_data::load(&registry.resolve("mine").expect("entry"), &offline)
        .expect("mapped csv");
    assert_eq!(dataset.examples.len(), 4);
    assert_eq!(
        dataset.examples[0].passage,
        "Paris is the capital of France."
    );

    // Without the mapping the same file names what is missing and what it has.
    let err = halubench_data::load(&DatasetSpec::file(dir.path().join("renamed.csv")), &offline)
        .expect_err("unmapped");
    let msg = err.to_string();
    assert!(
        msg.contains("missing column `id`") && msg.contains("uid, context"),
        "{msg}"
    );
}
