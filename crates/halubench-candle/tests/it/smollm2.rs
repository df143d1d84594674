//! The GGUF path on a real model: SmolLM2-135M-Instruct, Q4_1, llama architecture, the same
//! loader, tokenizer-from-metadata and template code that Lynx's Q4_K_M GGUF goes through.

use std::collections::BTreeSet;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use halubench_candle::{DeviceKind, Gguf, Llama, LocalSettings, TextCodec};
use halubench_judge::PromptTemplate;

use crate::{sample_rows, smollm2_gguf};

fn settings(batch_size: usize) -> LocalSettings {
    LocalSettings {
        model: smollm2_gguf(),
        tokenizer: None,
        device: DeviceKind::Cpu,
        dtype: None,
        max_new_tokens: 12,
        batch_size,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn logits_match_candle_transformers_quantized_llama() {
    let path = smollm2_gguf();
    let gguf = Gguf::open(&path).expect("open gguf");
    let codec = TextCodec::from_gguf(&gguf).expect("tokenizer");
    let ids = codec
        .encode("<|im_start|>user\nIs the sky green? Answer PASS or FAIL.<|im_end|>\n")
        .expect("encode");
    assert!(ids.len() > 10, "{ids:?}");

    let mut file = std::fs::File::open(&path).expect("open");
    let content = gguf_file::Content::read(&mut file).expect("read gguf");
    let mut reference = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).expect("ref");
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .expect("input");
    let expected: Vec<f32> = reference
        .forward(&input, 0)
        .and_then(|t| t.squeeze(0))
        .and_then(|t| t.to_vec1())
        .expect("reference forward");

    let model = Llama::from_gguf(&gguf, &Device::Cpu).expect("load");
    let mut whole = model.new_sequence(ids.len()).expect("state");
    let ours: Vec<f32> = model
        .forward(&mut [(&ids[..], &mut whole)])
        .and_then(|t| Ok(t.squeeze(0)?.to_vec1()?))
        .expect("forward");
    let spread = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(spread > 1.0, "logits look degenerate: max |logit| {spread}");
    let diff = max_abs_diff(&ours, &expected);
    assert!(diff < 1e-3, "max |ours - candle-transformers| = {diff}");

    // Not compared here: the same prompt fed in pieces. Activations are rounded to 8 bits
    // before each quantized product, so a last-bit difference between matrix shapes can flip a
    // code and move the logits by a few tenths (candle-transformers' own model moves 0.83 on
    // this prompt). The KV cache is checked on unquantized GGUF weights in tiny.rs.
}

#[test]
fn greedy_output_is_deterministic_and_independent_of_batch_size() {
    let prompt = PromptTemplate::lynx();
    let mut loaded = halubench_candle::load(&settings(1)).expect("load");
    let mut prompts: Vec<Vec<u32>> = sample_rows()
        .iter()
        .map(|e| {
            let text = loaded
                .template
                .render_user(&prompt.render(e))
                .expect("render");
            loaded.codec.encode_prompt(&text).expect("encode")
        })
        .collect();
    prompts.sort_by_key(Vec::len);
    // Two short prompts and one long enough to be fed in several prefill chunks.
    let long = prompts
        .iter()
        .find(|p| p.len() > halubench_candle::model::PREFILL_CHUNK)
        .cloned()
        .expect("a long prompt");
    assert!(
        long.len() > halubench_candle::model::PREFILL_CHUNK,
        "{}",
        long.len()
    );
    let chosen = vec![prompts[0].clone(), long, prompts[1].clone()];

    let one_by_one = loaded.engine.generate(&chosen, 12).expect("generate");
    let again = loaded.engine.generate(&chosen, 12).expect("generate again");
    assert_eq!(one_by_one, again, "greedy decoding is not deterministic");
    loaded.engine.set_max_batch(3);
    let batched = loaded
        .engine
        .generate(&chosen, 12)
        .expect("generate batched");
    assert_eq!(batched, one_by_one, "batch size 3 changed the output");
    assert!(one_by_one.iter().all(|g| !g.tokens.is_empty()));
}

#[test]
fn chat_template_renders_like_jinja2() {
    let loaded = halubench_candle::load(&settings(1)).expect("load");
    // Made by rendering the GGUF's tokenizer.chat_template with Python's Jinja2
    // (ImmutableSandboxedEnvironment, trim_blocks and lstrip_blocks, as transformers does).
    let expected = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by \
                    Hugging Face<|im_end|>\n<|im_start|>user\n\nHi there\n<|im_end|>\n\
                    <|im_start|>assistant\n";
    let rendered = loaded.template.render_user("\nHi there\n").expect("render");
    assert_eq!(rendered, expected);
    let ids = loaded.codec.encode_prompt(&rendered).expect("encode");
    assert_eq!(ids[0], 1, "<|im_start|> is one special token: {ids:?}");
    assert_eq!(
        loaded.codec.stop_tokens(),
        &BTreeSet::from([0, 2]),
        "<|im_end|> (eos) and <|endoftext|>"
    );
}

#[test]
fn tokenizer_from_gguf_metadata_matches_llama_cpp() {
    let gguf = Gguf::open(&smollm2_gguf()).expect("open");
    let codec = TextCodec::from_gguf(&gguf).expect("tokenizer");
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("smollm2_tokens.json")).expect("fixture is json");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 15);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).expect("ids");
        assert_eq!(codec.encode(text).expect("encode"), expected, "{text:?}");
    }
}
