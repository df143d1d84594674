//! Text to token ids and back, from a GGUF file's own vocabulary (as llama.cpp reads it) or
//! from a Hugging Face `tokenizer.json`.
//!
//! Prompts are rendered by the chat template, which writes the special tokens (`<|eot_id|>`,
//! `<|im_start|>`) as text; encoding therefore matches special tokens in the text and adds
//! none of its own, apart from a BOS the template left out when the model asks for one.

use std::collections::BTreeSet;
use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{LocalError, Result};
use crate::gguf::Gguf;

/// Llama 3's split rule: letters with an optional leading non-letter, digits in groups of up
/// to three, punctuation runs, newlines, spaces.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Token texts that end a turn in the chat formats we know; llama.cpp stops on these too
/// when a GGUF marks them as control tokens.
const END_OF_TURN: &[&str] = &[
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|end|>",
    "</s>",
];

pub struct TextCodec {
    tokenizer: Tokenizer,
    origin: String,
    /// Prepended when the model wants one and the rendered prompt does not start with it.
    bos: Option<u32>,
    stop: BTreeSet<u32>,
}

impl std::fmt::Debug for TextCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextCodec")
            .field("origin", &self.origin)
            .field("bos", &self.bos)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl TextCodec {
    /// Builds the byte-level BPE tokenizer a GGUF file describes in `tokenizer.ggml.*`.
    pub fn from_gguf(gguf: &Gguf) -> Result<TextCodec> {
        let origin = gguf.path().display().to_string();
        let err = |message: String| LocalError::Tokenizer {
            origin: origin.clone(),
            message,
        };
        let model = gguf.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(err(format!(
                "tokenizer.ggml.model = `{model}`: only byte-level BPE (`gpt2`, as Llama 3 uses) is \
                 supported; pass --tokenizer with the model's tokenizer.json"
            )));
        }
        let pre = gguf
            .get("tokenizer.ggml.pre")
            .map(|_| gguf.string("tokenizer.ggml.pre"))
            .transpose()?
            .unwrap_or("default");
        let (pre_tokenizer, ignore_merges) = pre_tokenizer_for(pre).ok_or_else(|| {
            err(format!(
                "tokenizer.ggml.pre = `{pre}` is not a pre-tokenizer halubench knows \
                 (llama-bpe, llama3, smaug-bpe, smollm, gpt2); pass --tokenizer with the \
                 model's tokenizer.json"
            ))
        })?;
        let tokens = gguf.strings("tokenizer.ggml.tokens")?;
        let merges = gguf
            .strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(err(format!("merge `{m}` is not two tokens"))),
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

        // Control (3) and user-defined (4) tokens are matched whole in text, as llama.cpp
        // does when it parses special tokens.
        let types = gguf
            .integers("tokenizer.ggml.token_type")
            .unwrap_or_default();
        let specials: Vec<AddedToken> = types
            .iter()
            .enumerate()
            .filter(|(_, ty)| matches!(**ty, 3 | 4))
            .filter_map(|(i, _)| tokens.get(i))
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        tokenizer
            .add_special_tokens(specials)
            .map_err(|e| err(e.to_string()))?;

        let (bos, stop) = gguf_special_ids(gguf);
        let mut stop: BTreeSet<u32> = stop.into_iter().collect();
        stop.extend(end_of_turn_ids(&tokenizer));
        Ok(TextCodec {
            tokenizer,
            origin,
            bos,
            stop,
        })
    }

    /// Loads a `tokenizer.json`. `bos` (prepended to prompts that lack it) and `stop` come
    /// from the model's other files.
    pub fn from_file(path: &Path, bos: Option<u32>, stop: &[u32]) -> Result<TextCodec> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| LocalError::Tokenizer {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut stop: BTreeSet<u32> = stop.iter().copied().collect();
        stop.extend(end_of_turn_ids(&tokenizer));
        Ok(TextCodec {
            tokenizer,
            origin: path.display().to_string(),
            bos,
            stop,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// Token ids at which generation ends.
    pub fn stop_tokens(&self) -> &BTreeSet<u32> {
        &self.stop
    }

    /// Ids of `text` with special tokens matched and nothing added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| LocalError::Tokenizer {
                origin: self.origin.clone(),
                message: e.to_string(),
            })
    }

    /// How many tokens Hugging Face's `len(tokenizer.encode(text))` counts: the text with
    /// the tokenizer's own special tokens added by its post-processor (Llama 3's
    /// `<|begin_of_text|>`). Scripts that limit prompt length count this way.
    pub fn count_with_special_tokens(&self, text: &str) -> Result<usize> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().len())
            .map_err(|e| LocalError::Tokenizer {
                origin: self.origin.clone(),
                message: e.to_string(),
            })
    }

    /// Ids of a rendered chat prompt: `encode`, with the model's BOS in front if it wants one
    /// and the template did not write it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if let Some(bos) = self.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Text of generated ids, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| LocalError::Tokenizer {
                origin: self.origin.clone(),
                message: e.to_string(),
            })
    }
}

/// The BOS a GGUF file asks to have prepended (none unless `add_bos_token` says so, as in
/// llama.cpp), and its end tokens.
pub fn gguf_special_ids(gguf: &Gguf) -> (Option<u32>, Vec<u32>) {
    let add_bos = gguf.bool("tokenizer.ggml.add_bos_token").unwrap_or(false);
    let bos = gguf
        .token_id("tokenizer.ggml.bos_token_id")
        .filter(|_| add_bos);
    let stop = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|key| gguf.token_id(key))
        .collect();
    (bos, stop)
}

fn end_of_turn_ids(tokenizer: &Tokenizer) -> impl Iterator<Item = u32> + '_ {
    END_OF_TURN
        .iter()
        .filter_map(|text| tokenizer.token_to_id(text))
}

/// The pre-tokenizer llama.cpp applies for a `tokenizer.ggml.pre` name, and whether whole
/// words found in the vocabulary skip the merges (Llama 3 does).
fn pre_tokenizer_for(pre: &str) -> Option<(PreTokenizerWrapper, bool)> {
    let byte_level = |use_regex| ByteLevel::new(false, true, use_regex);
    Some(match pre {
        "llama-bpe" | "llama3" | "smaug-bpe" => {
            let split = Split::new(
                SplitPattern::Regex(LLAMA3_SPLIT.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .ok()?;
            let seq = Sequence::new(vec![split.into(), byte_level(false).into()]);
            (seq.into(), true)
        }
        // Every digit on its own, then GPT-2's split.
        "smollm" => {
            let seq = Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]);
            (seq.into(), false)
        }
        "gpt2" | "gpt-2" => (byte_level(true).into(), false),
        _ => return None,
    })
}
