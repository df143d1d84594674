//! The model's own probability of FAIL against PASS where it writes its verdict.
//!
//! Greedy decoding keeps, for each generated position, the log-mass the model put on the
//! tokens that could start the word FAIL and on those that could start PASS (the
//! *candidates*, a small set fixed once per tokenizer), so the whole vocabulary is never
//! copied off the device. After decoding, the position that starts the verdict the parser
//! read gives `p_fail = Σ softmax(FAIL candidates) / (Σ FAIL + Σ PASS candidates)`: the
//! softmax's normaliser cancels, so the candidates' logits are all it takes.

use halubench_core::Verdict;
use halubench_judge::{verdict_search_start, verdict_word_prefix};

use crate::error::Result;
use crate::tokenizer::TextCodec;

/// The token ids that can start FAIL and those that can start PASS, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictCandidates {
    /// FAIL candidates first, then PASS candidates.
    ids: Vec<u32>,
    fail: usize,
}

impl VerdictCandidates {
    /// Classifies every id below `vocab` by its text decoded alone (special tokens decode to
    /// nothing and start neither word).
    pub fn from_codec(codec: &TextCodec, vocab: usize) -> Result<VerdictCandidates> {
        let (mut fail, mut pass) = (Vec::new(), Vec::new());
        for id in 0..vocab {
            let Ok(id) = u32::try_from(id) else { break };
            if codec.id_to_token(id).is_none() {
                continue;
            }
            match verdict_word_prefix(&codec.decode(&[id])?) {
                Some(Verdict::Fail) => fail.push(id),
                Some(Verdict::Pass) => pass.push(id),
                _ => {}
            }
        }
        Ok(VerdictCandidates::new(fail, pass))
    }

    pub fn new(fail: Vec<u32>, pass: Vec<u32>) -> VerdictCandidates {
        let count = fail.len();
        let mut ids = fail;
        ids.extend(pass);
        VerdictCandidates { ids, fail: count }
    }

    /// Every candidate, FAIL's then PASS's: the order `mass` reads logits in.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn fail_ids(&self) -> &[u32] {
        &self.ids[..self.fail]
    }

    pub fn pass_ids(&self) -> &[u32] {
        &self.ids[self.fail..]
    }

    /// The mass of each word from the logits of `ids()`, in that order.
    pub fn mass(&self, logits: &[f32]) -> VerdictMass {
        let split = self.fail.min(logits.len());
        VerdictMass {
            fail: log_sum_exp(&logits[..split]),
            pass: log_sum_exp(&logits[split..]),
        }
    }
}

/// `ln Σ exp(logit)` over the FAIL candidates and over the PASS candidates at one position,
/// in f64 (minus infinity for an empty set). Differences between the two are log-odds; the
/// softmax normaliser of the whole vocabulary is left out as it cancels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerdictMass {
    pub fail: f64,
    pub pass: f64,
}

impl VerdictMass {
    /// `Σ softmax over FAIL candidates / (Σ FAIL + Σ PASS)`; `None` when neither word has a
    /// candidate with finite logit.
    pub fn p_fail(&self) -> Option<f64> {
        let top = self.fail.max(self.pass);
        if !top.is_finite() {
            return None;
        }
        let (fail, pass) = ((self.fail - top).exp(), (self.pass - top).exp());
        Some(fail / (fail + pass))
    }
}

fn log_sum_exp(logits: &[f32]) -> f64 {
    let top = logits
        .iter()
        .map(|&l| f64::from(l))
        .fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return top;
    }
    let sum: f64 = logits.iter().map(|&l| (f64::from(l) - top).exp()).sum();
    top + sum.ln()
}

/// The index in `tokens` of the token that starts the verdict: the first token reaching
/// past the colon of the SCORE key the parser reads (`halubench_judge::verdict_search_start`)
/// whose text begins a verdict word (`halubench_judge::verdict_word_prefix`), or the first
/// such token when there is no key (a bare `PASS` reply). `None` when there is no
/// such token, or it starts the other word than `verdict` (the parser read something
/// else), or `verdict` is `Invalid`.
///
/// Tokens are decoded one at a time, so offsets are exact; a token that is not valid UTF-8
/// alone reads as replacement characters, which cannot be part of a key or a verdict.
pub fn verdict_position(
    codec: &TextCodec,
    tokens: &[u32],
    verdict: Verdict,
) -> Result<Option<usize>> {
    if verdict == Verdict::Invalid {
        return Ok(None);
    }
    let mut text = String::new();
    let mut starts = Vec::with_capacity(tokens.len());
    let mut pieces = Vec::with_capacity(tokens.len());
    for &token in tokens {
        starts.push(text.len());
        let piece = codec.decode(&[token])?;
        text.push_str(&piece);
        pieces.push(piece);
    }
    // 0 without a key: the parser read a bare verdict, which starts the reply. A token
    // that ends at or before the key's colon cannot hold the value; one that begins with
    // the colon and goes on to the value (`": "F`) can, and is a candidate if its whole
    // text begins a verdict word.
    let value_at = verdict_search_start(&text);
    let found = starts
        .iter()
        .zip(&pieces)
        .enumerate()
        .filter(|(_, (start, piece))| **start + piece.len() > value_at)
        .find_map(|(i, (_, piece))| verdict_word_prefix(piece).map(|word| (i, word)));
    Ok(found.and_then(|(i, word)| (word == verdict).then_some(i)))
}

/// `p_fail` of a reply: the mass at the token that starts `verdict` (see
/// `verdict_position`), `None` when the reply has no verdict, the position is not found, or
/// no masses were kept (`masses` is parallel to `tokens`).
pub fn reply_p_fail(
    codec: &TextCodec,
    tokens: &[u32],
    masses: &[VerdictMass],
    verdict: Verdict,
) -> Result<Option<f64>> {
    if masses.len() != tokens.len() {
        return Ok(None);
    }
    Ok(verdict_position(codec, tokens, verdict)?
        .and_then(|i| masses.get(i))
        .and_then(VerdictMass::p_fail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_one_word_only() {
        for text in [
            "FAIL", " FAIL", "\"FAIL", "F", "FA", " fa", ":\"Fai", "'f", "FAIL\"",
        ] {
            assert_eq!(verdict_word_prefix(text), Some(Verdict::Fail), "{text:?}");
        }
        for text in ["PASS", " PASS", "\"P", " p", "pas", "\n Pa"] {
            assert_eq!(verdict_word_prefix(text), Some(Verdict::Pass), "{text:?}");
        }
        for text in ["\"", " ", "", ":", "PASSED", "FAILS", "X", " Paris", "É"] {
            assert_eq!(verdict_word_prefix(text), None, "{text:?}");
        }
    }

    #[test]
    fn mass_and_p_fail() {
        let candidates = VerdictCandidates::new(vec![3, 7], vec![1]);
        assert_eq!(candidates.ids(), [3, 7, 1]);
        assert_eq!(candidates.fail_ids(), [3, 7]);
        assert_eq!(candidates.pass_ids(), [1]);
        let mass = candidates.mass(&[0.0, 0.0, 0.0]);
        let p = mass.p_fail().unwrap_or(f64::NAN);
        assert!((p - 2.0 / 3.0).abs() < 1e-15, "{p}");
        let far = candidates.mass(&[1000.0, f32::NEG_INFINITY, -1000.0]);
        assert_eq!(far.p_fail(), Some(1.0));
        let none = VerdictCandidates::new(vec![], vec![]).mass(&[]);
        assert_eq!(none.p_fail(), None);
    }

    #[test]
    fn the_last_score_key_counts() {
        let text = r#"{"REASONING": ["the score is high", "SCORE: x"], "SCORE": "PASS"}"#;
        let end = verdict_search_start(text);
        assert_eq!(&text[end..], " \"PASS\"}");
        assert_eq!(verdict_search_start("underscore: FAIL\nscored: PASS"), 0);
        assert_eq!(verdict_search_start("**Score:** FAIL"), 8);
    }
}
