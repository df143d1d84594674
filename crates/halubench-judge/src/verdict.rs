//! Reading a verdict out of a judge's reply.
//!
//! The rule is lenient about form and strict about meaning. Judges asked for
//! `{"REASONING": [...], "SCORE": "PASS"}` also answer with Python-style single quotes, an
//! unquoted `SCORE: PASS`, prose or code fences around the JSON, markdown emphasis, or a
//! stray end-of-turn token: all of those are read. But the verdict must come from a SCORE
//! key (or be the whole reply): "PASS" or "FAIL" somewhere in the prose is never guessed
//! at, and a reply whose SCORE values disagree, are cut off or are neither PASS nor FAIL is
//! `Invalid`, with the reason kept so that a report can say why.

use std::fmt;

use halubench_core::Verdict;
use serde_json::Value;

/// The verdict read from a reply, and why it is `Invalid` when it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedVerdict {
    pub verdict: Verdict,
    /// `Some` exactly when `verdict` is `Invalid`.
    pub invalid: Option<InvalidReason>,
}

impl ParsedVerdict {
    fn valid(verdict: Verdict) -> Self {
        ParsedVerdict {
            verdict,
            invalid: None,
        }
    }

    fn invalid(reason: InvalidReason) -> Self {
        ParsedVerdict {
            verdict: Verdict::Invalid,
            invalid: Some(reason),
        }
    }
}

/// Why a reply carries no usable verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// Nothing but whitespace (and end-of-turn tokens).
    Empty,
    /// No SCORE key, and the reply is not a bare PASS or FAIL.
    NoScore,
    /// Cut off before the SCORE value was complete.
    Truncated,
    /// SCORE keys, or one SCORE value, that say different things.
    Ambiguous,
    /// A SCORE value that is neither PASS nor FAIL, as the judge wrote it.
    UnknownScore(String),
    /// The prompt and the reply it may need do not fit the model's context, so the model
    /// was never asked.
    TooLong,
}

impl InvalidReason {
    /// A short stable name, for journals and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            InvalidReason::Empty => "empty",
            InvalidReason::NoScore => "no_score",
            InvalidReason::Truncated => "truncated",
            InvalidReason::Ambiguous => "ambiguous",
            InvalidReason::UnknownScore(_) => "unknown_score",
            InvalidReason::TooLong => "too_long",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads the judge's verdict from `reply`. Never fails: an unusable reply is
/// `Verdict::Invalid` with its reason.
pub fn parse_verdict(reply: &str) -> ParsedVerdict {
    let cleaned = strip_special_tokens(reply);
    let text = cleaned.trim();
    if text.is_empty() {
        return ParsedVerdict::invalid(InvalidReason::Empty);
    }
    let readings = strict_scores(text).unwrap_or_else(|| tolerant_scores(text));
    if !readings.is_empty() {
        return combine(readings);
    }
    if let Some(verdict) = verdict_word(text) {
        return ParsedVerdict::valid(verdict);
    }
    if opens_unclosed_object(text) {
        ParsedVerdict::invalid(InvalidReason::Truncated)
    } else {
        ParsedVerdict::invalid(InvalidReason::NoScore)
    }
}

/// What one SCORE value says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reading {
    Pass,
    Fail,
    Ambiguous,
    Truncated,
    Unknown(String),
}

impl From<Verdict> for Reading {
    /// `verdict_word` only ever yields `Pass` or `Fail`; `Invalid` would mean no verdict.
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Pass => Reading::Pass,
            Verdict::Fail => Reading::Fail,
            Verdict::Invalid => Reading::Ambiguous,
        }
    }
}

/// All SCORE values must agree; a verdict next to anything else is ambiguous.
fn combine(readings: Vec<Reading>) -> ParsedVerdict {
    let (mut pass, mut fail, mut ambiguous, mut truncated) = (false, false, false, false);
    let mut unknown = None;
    for reading in readings {
        match reading {
            Reading::Pass => pass = true,
            Reading::Fail => fail = true,
            Reading::Ambiguous => ambiguous = true,
            Reading::Truncated => truncated = true,
            Reading::Unknown(value) => {
                unknown.get_or_insert(value);
            }
        }
    }
    if ambiguous || (pass && fail) || ((pass || fail) && unknown.is_some()) {
        ParsedVerdict::invalid(InvalidReason::Ambiguous)
    } else if truncated {
        ParsedVerdict::invalid(InvalidReason::Truncated)
    } else if let Some(value) = unknown {
        ParsedVerdict::invalid(InvalidReason::UnknownScore(value))
    } else if pass {
        ParsedVerdict::valid(Verdict::Pass)
    } else {
        ParsedVerdict::valid(Verdict::Fail)
    }
}

/// Removes chat-template tokens a server may leave in the text (`<|eot_id|>`,
/// `<|im_end|>`, `</s>`), so that they neither hide a bare verdict nor look like a value.
fn strip_special_tokens(reply: &str) -> String {
    let mut out = String::with_capacity(reply.len());
    let mut rest = reply;
    while let Some(open) = rest.find("<|") {
        out.push_str(&rest[..open]);
        let inner = &rest[open + 2..];
        match inner.find("|>") {
            // A token is one short word; anything longer is the judge's own text.
            Some(close) if close <= 32 && !inner[..close].contains(char::is_whitespace) => {
                rest = &inner[close + 2..];
            }
            _ => {
                out.push_str("<|");
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out.replace("</s>", "")
}

/// The SCORE values of the outermost `{...}` when it is a JSON object, or `None` when it
/// is not (or has no SCORE key, in case the verdict is written outside it).
fn strict_scores(text: &str) -> Option<Vec<Reading>> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let entries = object_entries(text.get(start..=end)?)?;
    let readings: Vec<Reading> = entries
        .into_iter()
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("score"))
        .map(|(_, value)| match value {
            Value::String(value) => read_value(&value),
            other => Reading::Unknown(other.to_string()),
        })
        .collect();
    (!readings.is_empty()).then_some(readings)
}

/// The entries of a JSON object in order, duplicates kept: serde_json's `Map` keeps only
/// the last of a repeated key, and a repeated SCORE with another value must be seen. Keys
/// and values are parsed by serde_json; only the object's punctuation is walked here.
fn object_entries(json: &str) -> Option<Vec<(String, Value)>> {
    let mut rest = json.trim_start().strip_prefix('{')?;
    let mut entries = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return after.trim().is_empty().then_some(entries);
        }
        let (key, after) = next_json_value(rest)?;
        let Value::String(key) = key else {
            return None;
        };
        let (value, after) = next_json_value(after.trim_start().strip_prefix(':')?)?;
        entries.push((key, value));
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None if rest.starts_with('}') => {}
            None => return None,
        }
    }
}

/// One JSON value from the start of `text`, and the text after it.
fn next_json_value(text: &str) -> Option<(Value, &str)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let value = stream.next()?.ok()?;
    Some((value, text.get(stream.byte_offset()..)?))
}

/// SCORE values found by scanning text that is not JSON: `'SCORE': 'PASS'`,
/// `SCORE: PASS`, `**Score:** FAIL`. A key that looks like one (quoted, or first on its
/// line or after `{` or `,`) wins over the word "score" followed by a colon in a sentence,
/// so that reasoning which mentions the score does not count as a second verdict.
fn tolerant_scores(text: &str) -> Vec<Reading> {
    let (mut keys, mut mentions) = (Vec::new(), Vec::new());
    for colon in score_colons(text) {
        let reading = read_after_colon(&text[colon.value_at..]);
        if colon.is_key {
            keys.push(reading);
        } else {
            mentions.push(reading);
        }
    }
    if keys.is_empty() { mentions } else { keys }
}

/// The byte offset in `reply` just after the colon of the SCORE key whose value is the
/// verdict: the last SCORE written as a key (quoted, or first on its line, or after `{` or
/// `,`), or when there is none the last "score:" in a sentence, the same keys and
/// mentions the parser reads (keys win over mentions); 0 when there is neither, as for a
/// bare `PASS` reply, whose verdict starts the reply.
///
/// For finding the verdict's token in a tokenised reply: the first token after this
/// offset whose text is not only what [`strip_verdict_lead`] removes is where the judge
/// writes its verdict (see [`verdict_word_prefix`]).
pub fn verdict_search_start(reply: &str) -> usize {
    let (mut last_key, mut last_mention) = (None, None);
    for colon in score_colons(reply) {
        if colon.is_key {
            last_key = Some(colon.value_at);
        } else {
            last_mention = Some(colon.value_at);
        }
    }
    last_key.or(last_mention).unwrap_or(0)
}

/// Which verdict a token's text begins, for reading a verdict's probability token by token:
/// with [`strip_verdict_lead`]'s leading characters removed, the text must be a non-empty
/// prefix of `PASS` or of `FAIL`, in any case (`F`, ` fa`, `"Pas`, `**FAIL`), or the whole
/// word followed by a character that is not a letter or digit (`FAIL"`, `PASS.`,
/// ` "FAIL"}`). `"` alone, `PASSED`, `FAILS`, `F1`, `Fa"` and `FAL` begin neither. The two
/// words share no first letter, so a text begins one of them at most.
pub fn verdict_word_prefix(token_text: &str) -> Option<Verdict> {
    let text = strip_verdict_lead(token_text);
    for (word, verdict) in [("FAIL", Verdict::Fail), ("PASS", Verdict::Pass)] {
        if text.len() <= word.len() {
            if !text.is_empty()
                && word.as_bytes()[..text.len()].eq_ignore_ascii_case(text.as_bytes())
            {
                return Some(verdict);
            }
        } else if let Some(head) = text.get(..word.len())
            && head.eq_ignore_ascii_case(word)
            && !text[word.len()..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
        {
            return Some(verdict);
        }
    }
    None
}

/// `text` without what may come between a SCORE key's colon and its value's first letter:
/// leading whitespace, quotes (`"`, `'`, `` ` ``), colons and emphasis (`*`, `_`).
pub fn strip_verdict_lead(text: &str) -> &str {
    text.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | ':' | '*' | '_' | '`')
    })
}

/// One "score" (any case, not part of a longer word) followed by a colon.
struct ScoreColon {
    /// The byte offset just after the colon.
    value_at: usize,
    /// Written as a key rather than inside a sentence (see `looks_like_key`).
    is_key: bool,
}

/// Every "score" in `text` followed by a colon, in order.
fn score_colons(text: &str) -> Vec<ScoreColon> {
    let mut found_all = Vec::new();
    // ASCII lower-casing keeps every byte offset, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("score") {
        let (start, end) = (from + found, from + found + "score".len());
        from = end;
        let word_before = text[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric);
        let word_after = text[end..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric);
        if word_before || word_after {
            continue; // "scored", "underscore"
        }
        let Some(value) = after_colon(&text[end..]) else {
            continue;
        };
        found_all.push(ScoreColon {
            value_at: text.len() - value.len(),
            is_key: looks_like_key(&text[..start]),
        });
    }
    found_all
}

/// The text after the colon that follows a key, skipping the key's closing quote or
/// emphasis (`"SCORE":`, `**SCORE**:`); `None` when no colon follows.
fn after_colon(rest: &str) -> Option<&str> {
    let rest = rest.trim_start_matches(['"', '\'', '*', '_', '`', ' ', '\t']);
    rest.strip_prefix(':')
}

/// Whether "score", preceded by `before`, is written as a key rather than inside a sentence.
fn looks_like_key(before: &str) -> bool {
    if before.ends_with(['"', '\'']) {
        return true;
    }
    let before = before.trim_end_matches([' ', '\t', '*', '_', '#', '-', '`']);
    before.is_empty() || before.ends_with(['\n', '{', ','])
}

/// Reads the value after a SCORE key's colon: a quoted string, or unquoted text up to the
/// end of its line or the next `,`, `}` or `]`.
fn read_after_colon(rest: &str) -> Reading {
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_' | '`'));
    let Some(quote) = rest.chars().next() else {
        return Reading::Truncated; // the reply ends right after "SCORE":
    };
    if quote == '"' || quote == '\'' {
        let body = &rest[1..];
        return match closing_quote(body, quote) {
            Some(close) => read_value(&body[..close]),
            // Never closed: cut off inside the value, unless a whole verdict word is there.
            None => verdict_word(body).map_or(Reading::Truncated, Reading::from),
        };
    }
    let end = rest.find(['\n', ',', '}', ']']).unwrap_or(rest.len());
    let value = &rest[..end];
    if end == rest.len() && is_cut_verdict(value) {
        Reading::Truncated
    } else {
        read_value(value)
    }
}

/// The byte offset of the quote that closes a string opened with `quote`.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if c == quote => return Some(at),
            _ => {}
        }
    }
    None
}

/// A value the reply ends in the middle of: nothing yet, or the start of PASS or FAIL.
fn is_cut_verdict(value: &str) -> bool {
    let word = trim_symbols(value).to_ascii_uppercase();
    word.len() < 4 && ("PASS".starts_with(&word) || "FAIL".starts_with(&word))
}

/// Reads a complete SCORE value. Its first word decides ("PASS.", "**FAIL**",
/// "FAIL (contradicts the document)"); a value that also names the other verdict
/// ("PASS or FAIL", "PASS/FAIL") is ambiguous, and anything else is kept as written.
fn read_value(value: &str) -> Reading {
    let mut words = value
        .split(|c: char| c.is_whitespace() || c == '/')
        .filter(|word| !word.is_empty());
    let first = words.next().and_then(verdict_word);
    let Some(first) = first else {
        let shown = value
            .trim_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_' | '`' | '"' | '\''));
        return Reading::Unknown(shown.to_string());
    };
    if words.any(|word| verdict_word(word).is_some_and(|other| other != first)) {
        return Reading::Ambiguous;
    }
    Reading::from(first)
}

/// PASS or FAIL in any case, once quotes, punctuation and emphasis around it are removed.
fn verdict_word(text: &str) -> Option<Verdict> {
    let word = trim_symbols(text);
    if word.eq_ignore_ascii_case("pass") {
        Some(Verdict::Pass)
    } else if word.eq_ignore_ascii_case("fail") {
        Some(Verdict::Fail)
    } else {
        None
    }
}

fn trim_symbols(text: &str) -> &str {
    text.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Whether a `{` is left open at the end: the reply began a JSON object and was cut off.
/// Braces inside strings are counted too; reasoning rarely leaves one unbalanced.
fn opens_unclosed_object(text: &str) -> bool {
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(reply: &str) -> Option<InvalidReason> {
        parse_verdict(reply).invalid
    }

    #[test]
    fn strict_json() {
        let parsed = parse_verdict(r#"{"REASONING": ["a"], "SCORE": "PASS"}"#);
        assert_eq!(parsed, ParsedVerdict::valid(Verdict::Pass));
        let parsed = parse_verdict(r#"{"score": "fail"}"#);
        assert_eq!(parsed, ParsedVerdict::valid(Verdict::Fail));
    }

    #[test]
    fn duplicate_json_keys_are_all_seen() {
        assert_eq!(
            reason(r#"{"SCORE": "PASS", "SCORE": "FAIL"}"#),
            Some(InvalidReason::Ambiguous)
        );
        assert_eq!(
            parse_verdict(r#"{"SCORE": "FAIL", "SCORE": "FAIL"}"#).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn object_entries_keeps_order_and_rejects_non_objects() {
        let entries = object_entries(r#" { "a" : 1 , "a": [ "}" ], "b": {"c": null} } "#);
        let keys: Vec<_> = entries.iter().flatten().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "a", "b"]);
        assert_eq!(object_entries("{}"), Some(Vec::new()));
        assert_eq!(object_entries("{'a': 1}"), None);
        assert_eq!(object_entries(r#"{"a": 1} trailing"#), None);
        assert_eq!(object_entries(r#"{"a" 1}"#), None);
    }

    #[test]
    fn non_string_json_scores_are_unknown() {
        assert_eq!(
            reason(r#"{"SCORE": 1}"#),
            Some(InvalidReason::UnknownScore("1".to_string()))
        );
        assert_eq!(
            reason(r#"{"SCORE": null}"#),
            Some(InvalidReason::UnknownScore("null".to_string()))
        );
    }

    #[test]
    fn special_tokens_are_removed_but_text_in_angle_bars_is_kept() {
        assert_eq!(strip_special_tokens("PASS<|eot_id|>"), "PASS");
        assert_eq!(strip_special_tokens("a <|im_end|></s>"), "a ");
        assert_eq!(
            strip_special_tokens("a <| not a token |> b"),
            "a <| not a token |> b"
        );
        assert_eq!(reason("<|eot_id|>"), Some(InvalidReason::Empty));
    }

    #[test]
    fn cut_values() {
        assert_eq!(reason(r#""SCORE": "PA"#), Some(InvalidReason::Truncated));
        assert_eq!(reason("SCORE: FA"), Some(InvalidReason::Truncated));
        assert_eq!(reason(r#"{"SCORE":"#), Some(InvalidReason::Truncated));
        // The word is whole even though its closing quote is missing.
        assert_eq!(parse_verdict(r#"{"SCORE": "FAIL"#).verdict, Verdict::Fail);
    }

    #[test]
    fn a_value_naming_both_verdicts_is_ambiguous() {
        assert_eq!(
            reason(r#"{"SCORE": "PASS or FAIL"}"#),
            Some(InvalidReason::Ambiguous)
        );
        assert_eq!(
            parse_verdict("SCORE: FAIL (the answer is not faithful)").verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn edge_cases_outside_the_corpus() {
        assert_eq!(
            parse_verdict("SCORE: PASS<|eot_id|>").verdict,
            Verdict::Pass
        );
        assert_eq!(
            reason("```json\n{\"SCORE\": \"PA\n```"),
            Some(InvalidReason::Truncated)
        );
        assert_eq!(
            reason("{'SCORE': 'maybe'}"),
            Some(InvalidReason::UnknownScore("maybe".to_string()))
        );
        // A value that is not a verdict, next to one that is, is not a verdict.
        assert_eq!(
            reason("SCORE: PASS\nSCORE: 0.9"),
            Some(InvalidReason::Ambiguous)
        );
    }

    #[test]
    fn score_as_part_of_another_word_is_not_a_key() {
        assert_eq!(reason("It scored: PASS"), Some(InvalidReason::NoScore));
        assert_eq!(reason("underscore: FAIL"), Some(InvalidReason::NoScore));
    }

    #[test]
    fn verdict_search_start_is_after_the_colon_of_the_key_the_parser_reads() {
        let text = r#"{"REASONING": ["the score is high", "SCORE: x"], "SCORE": "PASS"}"#;
        assert_eq!(&text[verdict_search_start(text)..], r#" "PASS"}"#);
        // A key wins over a later mention in a sentence.
        let text = "SCORE: FAIL\nA score: PASS would be wrong.";
        assert_eq!(verdict_search_start(text), "SCORE:".len());
        assert_eq!(parse_verdict(text).verdict, Verdict::Fail);
        // With no key, the last mention.
        let text = "I give it a score: FAIL";
        assert_eq!(&text[verdict_search_start(text)..], " FAIL");
        assert_eq!(verdict_search_start("**Score:** FAIL"), 8);
        assert_eq!(verdict_search_start("'score' : 'fail'"), 9);
        // None: a bare verdict starts the reply.
        assert_eq!(verdict_search_start("underscore: FAIL\nscored: PASS"), 0);
        assert_eq!(verdict_search_start("PASS"), 0);
        assert_eq!(verdict_search_start(""), 0);
    }

    #[test]
    fn verdict_word_prefixes() {
        for text in [
            "FAIL",
            " FAIL",
            "\"FAIL",
            "F",
            "FA",
            " fa",
            ":\"Fai",
            "'f",
            "FAIL\"",
            " \"FAIL\"}",
            "**F",
            "`fail`",
            "_Fail_",
            "FAIL.",
        ] {
            assert_eq!(verdict_word_prefix(text), Some(Verdict::Fail), "{text:?}");
        }
        for text in [
            "PASS", " PASS", "\"P", " p", "pas", "\n Pa", "PASS,", "pass\n",
        ] {
            assert_eq!(verdict_word_prefix(text), Some(Verdict::Pass), "{text:?}");
        }
        for text in [
            "\"", " ", "", ":", "**", "PASSED", "FAILS", "FAILÉ", "F1", "Fa\"", "F.", "FAL", "X",
            " Paris", "É", "Yes", "N",
        ] {
            assert_eq!(verdict_word_prefix(text), None, "{text:?}");
        }
        assert_eq!(strip_verdict_lead(" \"**:_`FAIL\""), "FAIL\"");
    }

    #[test]
    fn reasons_have_stable_names() {
        let names: Vec<String> = [
            InvalidReason::Empty,
            InvalidReason::NoScore,
            InvalidReason::Truncated,
            InvalidReason::Ambiguous,
            InvalidReason::UnknownScore("YES".to_string()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "empty",
                "no_score",
                "truncated",
                "ambiguous",
                "unknown_score"
            ]
        );
    }
}
