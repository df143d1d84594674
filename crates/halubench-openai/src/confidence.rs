//! The judge's probability that an answer is a hallucination (`p_fail`), read from the
//! token log-probabilities of its reply (`choices[0].logprobs.content`).
//!
//! The verdict token is the first token after the SCORE key the verdict parser reads
//! (`halubench_judge::verdict_search_start`; for a reply without one, the first token of
//! the reply) whose text is more than leading quotes, spaces, colons and emphasis
//! (`halubench_judge::strip_verdict_lead`). Tokenizers split the value differently
//! (`"FAIL"`, ` FAIL`, `"F` + `AIL"`), so a token counts by the word its text begins
//! (`halubench_judge::verdict_word_prefix`): a prefix of exactly one of the two words, or
//! the whole word followed by a character that is not a letter or digit. At that
//! position the probabilities of the alternatives (the chosen token and its
//! `top_logprobs`, each text once) that begin FAIL are summed, and likewise PASS;
//! `p_fail = fail / (fail + pass)`.
//!
//! There is no `p_fail` when the reply is `Invalid`, when no verdict token is found, when
//! the token found does not say what the verdict parser read, or when neither word has
//! any probability: it is never made up from the verdict.

use halubench_core::Verdict;
use halubench_judge::{strip_verdict_lead, verdict_search_start, verdict_word_prefix};
use serde::Deserialize;
use serde_json::Value;

/// One generated token, its log-probability, and the most likely alternatives at its
/// position. Fields a server leaves out or sets to `null` are `None`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct TokenLogprob {
    pub token: String,
    #[serde(default)]
    pub logprob: Option<f64>,
    #[serde(default)]
    pub top_logprobs: Option<Vec<Alternative>>,
}

/// An alternative token at one position.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Alternative {
    pub token: String,
    #[serde(default)]
    pub logprob: Option<f64>,
}

/// The tokens of a choice's `logprobs` object (`{"content": [...]}`), or `None` when it
/// has none or they are not in that form: a malformed `logprobs` costs the reply its
/// `p_fail`, never the reply itself.
pub(crate) fn tokens(logprobs: &Value) -> Option<Vec<TokenLogprob>> {
    Vec::<TokenLogprob>::deserialize(logprobs.get("content")?).ok()
}

/// `p_fail` for a reply whose verdict parsed as `verdict`, from its tokens.
pub(crate) fn p_fail(tokens: &[TokenLogprob], verdict: Verdict) -> Option<f64> {
    if verdict == Verdict::Invalid {
        return None;
    }
    let text: String = tokens.iter().map(|t| t.token.as_str()).collect();
    let start = verdict_search_start(&text);
    let mut offset = 0;
    for token in tokens {
        let end = offset + token.token.len();
        // Bytes of this token that lie before the value (a token spanning `SCORE":`).
        let skip = start.saturating_sub(offset);
        offset = end;
        if end <= start {
            continue;
        }
        let (before, rest) = token.token.split_at_checked(skip)?;
        if strip_verdict_lead(rest).is_empty() {
            continue;
        }
        // The value begins here: a verdict word, or no verdict token at all.
        if verdict_word_prefix(rest)? != verdict {
            return None;
        }
        return share_of_fail(token, before);
    }
    None
}

/// `fail / (fail + pass)` over the alternatives at a verdict token's position. `before` is
/// the part of the chosen token before the value; an alternative counts only when it
/// begins the same way, and is read after it.
fn share_of_fail(token: &TokenLogprob, before: &str) -> Option<f64> {
    let chosen = std::iter::once((token.token.as_str(), token.logprob));
    let others = token
        .top_logprobs
        .iter()
        .flatten()
        .map(|a| (a.token.as_str(), a.logprob));
    let mut seen: Vec<&str> = Vec::new();
    let (mut pass, mut fail) = (0.0_f64, 0.0_f64);
    for (text, logprob) in chosen.chain(others) {
        let Some(logprob) = logprob.filter(|l| !l.is_nan()) else {
            continue;
        };
        if seen.contains(&text) {
            continue;
        }
        seen.push(text);
        let Some(rest) = text.strip_prefix(before) else {
            continue;
        };
        match verdict_word_prefix(rest) {
            Some(Verdict::Pass) => pass += logprob.exp(),
            Some(Verdict::Fail) => fail += logprob.exp(),
            _ => {}
        }
    }
    let total = pass + fail;
    (total > 0.0 && total.is_finite()).then(|| (fail / total).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use halubench_judge::parse_verdict;
    use serde_json::json;

    use super::*;

    fn token(text: &str, logprob: f64, alternatives: &[(&str, f64)]) -> TokenLogprob {
        TokenLogprob {
            token: text.to_string(),
            logprob: Some(logprob),
            top_logprobs: Some(
                alternatives
                    .iter()
                    .map(|(t, l)| Alternative {
                        token: t.to_string(),
                        logprob: Some(*l),
                    })
                    .collect(),
            ),
        }
    }

    /// A token with no alternatives, for the text around the verdict.
    fn plain(text: &str) -> TokenLogprob {
        token(text, -0.01, &[])
    }

    /// `p_fail` with the verdict the parser reads from the tokens' text.
    fn p(tokens: &[TokenLogprob]) -> Option<f64> {
        let text: String = tokens.iter().map(|t| t.token.as_str()).collect();
        p_fail(tokens, parse_verdict(&text).verdict)
    }

    fn share(fail: f64, pass: f64) -> f64 {
        fail.exp() / (fail.exp() + pass.exp())
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a p_fail");
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn a_quoted_verdict_in_one_token() {
        let tokens = [
            plain("{\"REASONING\": [\"The passage says so.\"], \"SCORE\":"),
            token(
                " \"FAIL\"",
                -0.1,
                &[(" \"FAIL\"", -0.1), (" \"PASS\"", -2.4), (" \"", -5.0)],
            ),
            plain("}"),
        ];
        let expected = (-0.1_f64).exp() / ((-0.1_f64).exp() + (-2.4_f64).exp());
        assert_close(p(&tokens), expected);
    }

    #[test]
    fn a_verdict_split_after_its_first_letter() {
        let tokens = [
            plain("{\"SCORE\": "),
            token("\"F", -0.1, &[("\"F", -0.1), ("\"P", -2.4)]),
            token("AIL\"", -0.001, &[("AIL\"", -0.001), ("ALSE", -7.0)]),
            plain("}"),
        ];
        assert_close(p(&tokens), share(-0.1, -2.4));
    }

    #[test]
    fn a_verdict_after_a_space_and_a_lone_quote() {
        // `"` alone is skipped: the verdict token is the next one.
        let tokens = [
            plain("{\"SCORE\":"),
            plain(" \""),
            token("PASS", -0.3, &[("PASS", -0.3), ("FAIL", -1.5), ("P", -4.0)]),
            plain("\"}"),
        ];
        let pass = (-0.3_f64).exp() + (-4.0_f64).exp();
        let fail = (-1.5_f64).exp();
        assert_close(p(&tokens), fail / (fail + pass));
    }

    #[test]
    fn an_unquoted_verdict_with_a_leading_space() {
        let tokens = [
            plain("REASONING: fine.\nSCORE:"),
            token(" PASS", -0.2, &[(" FAIL", -1.9)]),
        ];
        assert_close(p(&tokens), share(-1.9, -0.2));
    }

    #[test]
    fn lowercase_and_mixed_case_alternatives_all_count() {
        let tokens = [
            plain("score: "),
            token(
                "fail",
                -0.5,
                &[("Fail", -1.0), ("pass", -2.0), ("FAIL", -3.0)],
            ),
        ];
        let fail = (-0.5_f64).exp() + (-1.0_f64).exp() + (-3.0_f64).exp();
        let pass = (-2.0_f64).exp();
        assert_close(p(&tokens), fail / (fail + pass));
    }

    #[test]
    fn alternatives_that_are_neither_word_are_ignored() {
        let tokens = [
            plain("{\"SCORE\": \""),
            token(
                "FAIL",
                -0.1,
                &[
                    ("FAIL", -0.1),
                    ("PASS", -2.4),
                    ("FAILED", -3.0),
                    ("N", -3.1),
                    ("Yes", -3.2),
                    ("\"", -3.3),
                    ("F1", -3.4),
                    ("", -3.5),
                ],
            ),
            plain("\"}"),
        ];
        assert_close(p(&tokens), share(-0.1, -2.4));
    }

    #[test]
    fn the_last_score_key_is_read_and_a_key_split_across_tokens_is_found() {
        let tokens = [
            plain("A score: PASS would be wrong here.\n{\"SC"),
            plain("ORE\":"),
            plain(" \""),
            token("FA", -0.05, &[("PA", -3.0)]),
            plain("IL\"}"),
        ];
        assert_eq!(
            parse_verdict(&tokens.iter().map(|t| t.token.as_str()).collect::<String>()).verdict,
            Verdict::Fail
        );
        assert_close(p(&tokens), share(-0.05, -3.0));
    }

    #[test]
    fn a_token_spanning_the_key_and_the_value() {
        let tokens = [
            plain("REASONING: x\n"),
            token(
                "SCORE: FAIL",
                -0.4,
                &[
                    ("SCORE: PASS", -1.2),
                    ("SCORE", -2.0),
                    ("REASON: PASS", -0.1),
                ],
            ),
        ];
        assert_close(p(&tokens), share(-0.4, -1.2));
    }

    #[test]
    fn a_bare_verdict_reply() {
        let tokens = [token("FAIL", -0.7, &[("PASS", -0.8)])];
        assert_close(p(&tokens), share(-0.7, -0.8));
    }

    #[test]
    fn no_verdict_token_means_none() {
        // Invalid replies.
        assert_eq!(p(&[plain("I cannot tell.")]), None);
        assert_eq!(p(&[plain("{\"SCORE\": \"maybe\"}")]), None);
        assert_eq!(p(&[]), None);
        // The value after SCORE is not a verdict, whatever the verdict is said to be.
        let tokens = [plain("SCORE: "), token("maybe", -0.1, &[("PASS", -1.0)])];
        assert_eq!(p_fail(&tokens, Verdict::Pass), None);
        // Nothing after the key.
        assert_eq!(p_fail(&[plain("SCORE: ")], Verdict::Fail), None);
        // The token found says another word than the parser read.
        let tokens = [plain("SCORE: "), token("PASS", -0.1, &[("FAIL", -1.0)])];
        assert_eq!(p_fail(&tokens, Verdict::Fail), None);
        assert_eq!(p_fail(&tokens, Verdict::Invalid), None);
    }

    #[test]
    fn no_probability_for_either_word_means_none() {
        let mut chosen = token("FAIL", 0.0, &[]);
        chosen.logprob = None;
        chosen.top_logprobs = None;
        assert_eq!(p(&[plain("SCORE: "), chosen]), None);
        // A chosen verdict with only its own probability is certain.
        assert_eq!(p(&[plain("SCORE: "), token("FAIL", -0.2, &[])]), Some(1.0));
        assert_eq!(p(&[plain("SCORE: "), token("PASS", -0.2, &[])]), Some(0.0));
    }

    #[test]
    fn tokens_are_read_leniently() {
        let value = json!({"content": [
            {"id": 1, "token": "SCORE: ", "logprob": -0.01, "bytes": [83], "top_logprobs": []},
            {"token": "FAIL", "logprob": -0.1, "top_logprobs": [
                {"id": 2, "token": "PASS", "logprob": -2.4, "bytes": null},
                {"token": "FAIL", "logprob": null}
            ]},
            {"token": "}", "logprob": null, "top_logprobs": null}
        ]});
        let tokens = tokens(&value).expect("tokens");
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[2].logprob, None);
        assert_close(p_fail(&tokens, Verdict::Fail), share(-0.1, -2.4));
        assert_eq!(super::tokens(&json!({"content": null})), None);
        assert_eq!(super::tokens(&json!({"content": "x"})), None);
        assert_eq!(super::tokens(&json!({"tokens": []})), None);
        assert_eq!(super::tokens(&json!(null)), None);
    }
}
