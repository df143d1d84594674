//! The markdown reports pinned whole: `summary.md`, `compare.md` (three judges, so with the
//! suspect labels) and the gate's summary, from baseline runs of the real sample rows. The
//! baseline and the seeded bootstrap are deterministic; only the dataset's path and the run
//! directories' names differ between machines, and they are scrubbed.
//!
//! A change to these files is a change users' scripts and readers see: review the `.snap.new`
//! insta writes (`cargo insta review`, or compare by hand) before accepting it.

use crate::{halubench, read, sample_path, sample_run, stderr, stdout};

/// Settings that replace the sample's absolute path (it depends on the checkout) with
/// `[sample]`.
fn scrubbed() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&sample_path()), "[sample]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// `text` as a regex matching itself.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain(Some(c))
        })
        .collect()
}

#[test]
fn summary_compare_and_gate_markdown_are_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, threshold) in [("low", "0.3"), ("mid", "0.5"), ("high", "0.8")] {
        sample_run(dir.path(), name, threshold);
    }
    let out = halubench(
        dir.path(),
        &["compare", "low", "mid", "high", "--out", "cmp"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let gate = halubench(
        dir.path(),
        &["gate", "--baseline", "mid", "--candidate", "high"],
    );
    // RAGTruth falls 32 points at the higher threshold, significantly: a regression.
    assert_eq!(gate.status.code(), Some(1), "{}", stderr(&gate));

    scrubbed().bind(|| {
        insta::assert_snapshot!("summary_md", read(&dir.path().join("mid/summary.md")));
        insta::assert_snapshot!("compare_md", read(&dir.path().join("cmp/compare.md")));
        insta::assert_snapshot!("gate_summary", stdout(&gate));
    });
}
