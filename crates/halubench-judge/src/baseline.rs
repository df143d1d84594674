//! The built-in baseline: a lexical support check that needs no model.
//!
//! An answer is judged faithful when enough of its content (numbers and words other than
//! stop words) also appears in the passage, and every number it states appears in the
//! passage or the question. Words are compared by their first six characters, a crude
//! stemmer that lets "launched" match "launch". It is deterministic, fast and knows nothing
//! of meaning: a contradiction built from the passage's own words passes. It exists to be
//! the floor every real judge is compared with.

use std::collections::{BTreeMap, HashSet};

use halubench_core::{Example, JudgeInfo, Verdict};

use crate::{BoxFuture, Judge, JudgeError, Reply};

/// Share of the answer's content terms the passage must contain for a PASS.
pub const DEFAULT_THRESHOLD: f64 = 0.8;
/// Characters of a word that are compared.
const STEM_CHARS: usize = 6;

const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "being", "between", "both", "but", "by", "can", "could", "did", "do", "does",
    "during", "each", "either", "for", "from", "had", "has", "have", "he", "her", "here", "his",
    "how", "if", "in", "into", "is", "it", "its", "just", "may", "me", "might", "more", "most",
    "my", "neither", "no", "not", "of", "on", "one", "only", "or", "other", "our", "over", "same",
    "shall", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "under", "us", "very", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "whom", "whose", "why", "will", "with",
    "would", "yes", "you", "your",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Term {
    Word(String),
    Number(String),
}

/// The evidence behind a baseline verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Content terms in the answer.
    pub terms: usize,
    /// Of those, how many the passage contains.
    pub supported: usize,
    /// Answer terms found in neither the passage nor (for numbers) the question.
    pub unsupported: Vec<String>,
    /// A number in the answer that appears in neither passage nor question.
    pub unsupported_number: bool,
}

impl Assessment {
    /// `supported / terms`; an answer with no content terms is fully supported.
    pub fn support(&self) -> f64 {
        if self.terms == 0 {
            1.0
        } else {
            self.supported as f64 / self.terms as f64
        }
    }
}

/// The baseline judge. See the module documentation for what it does.
#[derive(Debug, Clone)]
pub struct BaselineJudge {
    threshold: f64,
}

impl Default for BaselineJudge {
    fn default() -> Self {
        BaselineJudge {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl BaselineJudge {
    /// `threshold` is the share of content terms that must be supported, in 0..=1.
    pub fn new(threshold: f64) -> Result<Self, JudgeError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(JudgeError::Rejected {
                reason: format!("baseline threshold must be between 0 and 1, got {threshold}"),
            });
        }
        Ok(BaselineJudge { threshold })
    }

    pub fn assess(&self, example: &Example) -> Assessment {
        let passage = terms(&example.passage);
        let passage_words: HashSet<String> = passage
            .iter()
            .filter_map(|t| match t {
                Term::Word(w) => Some(stem(w)),
                Term::Number(_) => None,
            })
            .collect();
        let passage_numbers: HashSet<&Term> = passage
            .iter()
            .filter(|t| matches!(t, Term::Number(_)))
            .collect();
        let question = terms(&example.question);

        let mut assessment = Assessment {
            terms: 0,
            supported: 0,
            unsupported: Vec::new(),
            unsupported_number: false,
        };
        for term in terms(&example.answer) {
            let (text, supported) = match &term {
                Term::Word(w) if is_stop_word(w) => continue,
                Term::Word(w) => (w.clone(), passage_words.contains(&stem(w))),
                Term::Number(n) => {
                    let in_passage = passage_numbers.contains(&term);
                    if !in_passage && !question.contains(&term) {
                        assessment.unsupported_number = true;
                    }
                    (n.clone(), in_passage)
                }
            };
            assessment.terms += 1;
            if supported {
                assessment.supported += 1;
            } else if !assessment.unsupported.contains(&text) {
                assessment.unsupported.push(text);
            }
        }
        assessment
    }

    pub fn verdict(&self, assessment: &Assessment) -> Verdict {
        if assessment.unsupported_number || assessment.support() < self.threshold {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }

    /// The reply in the Lynx output format, so that baseline journals read like any other.
    fn reply(&self, example: &Example) -> Reply {
        let assessment = self.assess(example);
        let verdict = self.verdict(&assessment);
        let mut reasoning = vec![format!(
            "{} of {} content terms of the answer appear in the passage (support {:.2}, threshold {:.2})",
            assessment.supported,
            assessment.terms,
            assessment.support(),
            self.threshold
        )];
        if assessment.unsupported_number {
            reasoning.push(
                "the answer states a number found in neither passage nor question".to_string(),
            );
        }
        if !assessment.unsupported.is_empty() {
            reasoning.push(format!(
                "not in the passage: {}",
                assessment.unsupported.join(", ")
            ));
        }
        let raw =
            serde_json::json!({ "REASONING": reasoning, "SCORE": verdict.as_str() }).to_string();
        Reply {
            verdict,
            raw,
            invalid_reason: None,
            usage: None,
            model: None,
            // The share of the answer's content the passage does not support: the score the
            // verdict thresholds (before the stray-number rule).
            p_fail: Some(1.0 - assessment.support()),
            ragas: None,
        }
    }
}

impl Judge for BaselineJudge {
    fn info(&self) -> JudgeInfo {
        JudgeInfo {
            name: "baseline".to_string(),
            prompt_sha256: None,
            settings: BTreeMap::from([
                ("method".to_string(), "lexical-support".to_string()),
                ("threshold".to_string(), self.threshold.to_string()),
                ("stem_chars".to_string(), STEM_CHARS.to_string()),
            ]),
        }
    }

    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>> {
        let reply = self.reply(example);
        Box::pin(async move { Ok(reply) })
    }
}

fn is_stop_word(word: &str) -> bool {
    word.chars().count() < 2 || STOP_WORDS.binary_search(&word).is_ok()
}

fn stem(word: &str) -> String {
    word.chars().take(STEM_CHARS).collect()
}

/// Lower-cased alphanumeric runs. A run that starts with a digit is a number and may
/// contain `.` or `,` between digits; thousands separators are dropped and trailing
/// decimal zeros trimmed, so "1,000" and "1000" match, as do "87.10" and "87.1".
fn terms(text: &str) -> Vec<Term> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphanumeric() {
            i += 1;
            continue;
        }
        let numeric = chars[i].is_ascii_digit();
        let mut token = String::new();
        // Once a number has a decimal or thousands part, letters end it: "3.0x" is 3 and x.
        let mut after_separator = false;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_digit() || (c.is_alphanumeric() && !after_separator) {
                token.extend(c.to_lowercase());
            } else if numeric
                && (c == '.' || c == ',')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            {
                after_separator = true;
                if c == '.' {
                    token.push('.');
                }
            } else {
                break;
            }
            i += 1;
        }
        out.push(if numeric {
            Term::Number(normalise_number(token))
        } else {
            Term::Word(token)
        });
    }
    out
}

fn normalise_number(mut number: String) -> String {
    if number.contains('.') && number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        while number.ends_with('0') {
            number.pop();
        }
        if number.ends_with('.') {
            number.pop();
        }
    }
    number
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Label;

    fn example(passage: &str, question: &str, answer: &str) -> Example {
        Example {
            id: "t".into(),
            task: "t".into(),
            passage: passage.into(),
            question: question.into(),
            answer: answer.into(),
            label: Label::Pass,
        }
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn numbers_normalise() {
        assert_eq!(
            terms("Revenue was $1,000.50 in 2023; 87.10% and 3.0x"),
            vec![
                Term::Word("revenue".into()),
                Term::Word("was".into()),
                Term::Number("1000.5".into()),
                Term::Word("in".into()),
                Term::Number("2023".into()),
                Term::Number("87.1".into()),
                Term::Word("and".into()),
                Term::Number("3".into()),
                Term::Word("x".into()),
            ]
        );
    }

    #[test]
    fn supported_answer_passes_and_new_entity_fails() {
        let judge = BaselineJudge::default();
        let passage = "The Oberoi Group is a hotel company with its head office in Delhi.";
        let q = "The Oberoi family is part of a hotel company that has a head office in what city?";
        let pass = judge.assess(&example(passage, q, "Delhi"));
        assert_eq!(judge.verdict(&pass), Verdict::Pass);
        let fail = judge.assess(&example(
            passage,
            q,
            "The Oberoi family's hotel company is based in Mumbai.",
        ));
        assert_eq!(judge.verdict(&fail), Verdict::Fail);
        assert!(fail.unsupported.contains(&"mumbai".to_string()), "{fail:?}");
    }

    #[test]
    fn a_number_missing_from_passage_and_question_fails() {
        let judge = BaselineJudge::default();
        let passage = "The team scored 42 points in the first half and 17 in the second.";
        let ok = judge.assess(&example(
            passage,
            "How many points in the first half?",
            "42 points",
        ));
        assert_eq!(judge.verdict(&ok), Verdict::Pass);
        let bad = judge.assess(&example(
            passage,
            "How many points in the first half?",
            "43 points",
        ));
        assert!(bad.unsupported_number);
        assert_eq!(judge.verdict(&bad), Verdict::Fail);
    }

    #[test]
    fn stems_match_inflections() {
        let judge = BaselineJudge::default();
        let a = judge.assess(&example(
            "The company launched its product.",
            "q",
            "launching products",
        ));
        assert_eq!(a.support(), 1.0);
    }

    #[test]
    fn reply_is_lynx_shaped_json() {
        let judge = BaselineJudge::default();
        let reply = judge.reply(&example(
            "Paris is in France.",
            "Where is Paris?",
            "Paris is in Spain.",
        ));
        let value: serde_json::Value = serde_json::from_str(&reply.raw).expect("json");
        assert_eq!(value["SCORE"], "FAIL");
        assert_eq!(reply.verdict, Verdict::Fail);
        assert!(value["REASONING"].as_array().is_some_and(|r| !r.is_empty()));
    }

    #[test]
    fn threshold_is_checked() {
        assert!(BaselineJudge::new(1.5).is_err());
        assert!(BaselineJudge::new(0.5).is_ok());
    }
}
