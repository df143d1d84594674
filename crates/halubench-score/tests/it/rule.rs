//! The lynx-script rule's verdict reader against the official script's own regex, on the
//! verdict parser's corpus of judge replies (halubench-judge's tests/it/replies.jsonl).

use halubench_score::rule::quoted_score;
use serde_json::Value;

const CORPUS: &str = include_str!("../../../halubench-judge/tests/it/replies.jsonl");

/// Corpus lines where the script's reading differs from the default parser's verdict (the
/// corpus's `verdict`), with the script's reading. Computed once with Python's `re`, the
/// script's own engine, over the corpus:
///
/// ```python
/// m = re.search(r'"SCORE":\s*"(\w+)"', case["reply"])
/// script = m.group(1) if m and m.group(1) in ("PASS", "FAIL") else "INVALID"
/// ```
///
/// Unquoted, single-quoted, markdown and prose verdicts that the default parser reads are
/// INVALID to the script; a reply with two conflicting quoted SCOREs, which the default
/// parser calls ambiguous, is the first one's to the script.
const DIFFERENCES: [(usize, &str); 16] = [
    (7, "INVALID"),
    (8, "INVALID"),
    (10, "INVALID"),
    (14, "INVALID"),
    (15, "INVALID"),
    (16, "INVALID"),
    (17, "INVALID"),
    (19, "INVALID"),
    (20, "INVALID"),
    (21, "INVALID"),
    (22, "INVALID"),
    (24, "INVALID"),
    (25, "INVALID"),
    (26, "INVALID"),
    (28, "INVALID"),
    (42, "PASS"),
];

#[test]
fn lynx_script_reading_differs_from_the_default_exactly_where_the_script_does() {
    let mut cases = 0;
    for (index, line) in CORPUS.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let case: Value = serde_json::from_str(line).expect("corpus line");
        let reply = case["reply"].as_str().expect("reply");
        let default = case["verdict"].as_str().expect("verdict");
        let script = quoted_score(reply)
            .filter(|word| matches!(*word, "PASS" | "FAIL"))
            .unwrap_or("INVALID");
        let expected = DIFFERENCES
            .iter()
            .find(|(n, _)| *n == number)
            .map_or(default, |(_, reading)| *reading);
        assert_eq!(script, expected, "replies.jsonl:{number}: {reply}");
        cases += 1;
    }
    assert_eq!(cases, 50, "the corpus changed: compute DIFFERENCES again");
}
