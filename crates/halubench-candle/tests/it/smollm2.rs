//! The GGUF path on a real model: SmolLM2-135M-Instruct, Q4_1, llama architecture, the same
//! loader, tokenizer-from-metadata and template code that Lynx's Q4_K_M GGUF goes through.

use std::collections::BTreeSet;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use halubench_candle::verdict::{reply_p_fail, verdict_position};
use halubench_candle::{DeviceKind, Gguf, Llama, LocalSettings, TextCodec, VerdictMass};
use halubench_core::Verdict;
use halubench_judge::PromptTemplate;

use crate::{sample_rows, smollm2_gguf};

fn settings(batch_size: usize) -> LocalSettings {
    LocalSettings {
        model: smollm2_gguf(),
        tokenizer: None,
        device: DeviceKind::Cpu,
        dtype: None,
        kv_cache: None,
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
        .map(|e| loaded.prompt(&prompt, e).expect("prompt").1)
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
    // The verdict masses are part of the generation, so the comparisons above cover them;
    // here, that they are there and give the same p_fail bit for bit.
    for (a, b) in one_by_one.iter().zip(&batched) {
        assert_eq!(a.verdict_masses.len(), a.tokens.len());
        let p = |g: &halubench_candle::Generation| -> Vec<Option<u64>> {
            g.verdict_masses
                .iter()
                .map(|m| m.p_fail().map(f64::to_bits))
                .collect()
        };
        assert_eq!(p(a), p(b), "batch size 3 changed p_fail");
    }
}

/// The F16 KV cache (the judge's default) against the F32 one on the first 12 real sample
/// rows, greedy, 32 tokens each: on these, rounding keys and values to half precision changes
/// no token (52 s in a debug build). Not on every row: near ties tip, and in an end-to-end
/// run over 24 other rows 12 replies differed (reports/BENCHMARKS.md); a change that moves
/// these 12 is more than rounding.
#[test]
fn f16_kv_cache_gives_the_f32_caches_greedy_replies_on_real_rows() {
    let prompt = PromptTemplate::lynx();
    let mut exact = settings(4);
    exact.kv_cache = Some(DType::F32);
    let exact = halubench_candle::load(&exact).expect("load f32");
    let half = halubench_candle::load(&settings(4)).expect("load f16");
    assert_eq!(half.engine.model().kv_dtype(), DType::F16);
    let prompts: Vec<Vec<u32>> = sample_rows()
        .iter()
        .take(12)
        .map(|e| exact.prompt(&prompt, e).expect("prompt").1)
        .collect();
    let new_tokens = 32;
    let reference = exact.engine.generate(&prompts, new_tokens).expect("f32");
    let ours = half.engine.generate(&prompts, new_tokens).expect("f16");
    for (row, (a, b)) in reference.iter().zip(&ours).enumerate() {
        assert_eq!(
            a.tokens, b.tokens,
            "row {row}: the F16 cache changed the reply"
        );
    }
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

/// The candidate sets, found here by the rule as the issue states it rather than by the
/// crate's function: a token's text, decoded alone, with leading whitespace, quotes and
/// colons removed, is a non-empty prefix of FAIL (or PASS), ignoring case.
fn candidate_sets(codec: &TextCodec, vocab: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut fail, mut pass) = (Vec::new(), Vec::new());
    for id in 0..vocab as u32 {
        if codec.id_to_token(id).is_none() {
            continue;
        }
        let text = codec.decode(&[id]).expect("decode");
        let word = text
            .trim_start_matches([' ', '\t', '\n', '\r', '"', '\'', ':'])
            .to_ascii_uppercase();
        if word.is_empty() {
            continue;
        }
        if "FAIL".starts_with(&word) {
            fail.push(id);
        } else if "PASS".starts_with(&word) {
            pass.push(id);
        }
    }
    (fail, pass)
}

/// p_fail from the full vocabulary's softmax, in f64.
fn full_softmax_p_fail(logits: &[f32], fail: &[u32], pass: &[u32]) -> f64 {
    let top = logits
        .iter()
        .map(|&l| f64::from(l))
        .fold(f64::MIN, f64::max);
    let z: f64 = logits.iter().map(|&l| (f64::from(l) - top).exp()).sum();
    let p = |id: &u32| (f64::from(logits[*id as usize]) - top).exp() / z;
    let (f, q): (f64, f64) = (fail.iter().map(p).sum(), pass.iter().map(p).sum());
    f / (f + q)
}

#[test]
fn p_fail_matches_a_full_softmax_under_teacher_forcing() {
    let prompt = PromptTemplate::lynx();
    let mut loaded = halubench_candle::load(&settings(1)).expect("load");
    let vocab = loaded.engine.model().dims().vocab;
    let (fail, pass) = candidate_sets(&loaded.codec, vocab);
    let candidates = loaded
        .engine
        .verdict_candidates()
        .expect("candidates")
        .clone();
    assert_eq!(candidates.fail_ids(), fail.as_slice());
    assert_eq!(candidates.pass_ids(), pass.as_slice());
    let texts = |ids: &[u32]| -> Vec<String> {
        ids.iter()
            .map(|&id| loaded.codec.decode(&[id]).expect("decode"))
            .collect()
    };
    let (fail_texts, pass_texts) = (texts(&fail), texts(&pass));
    for (texts, expected) in [
        (&fail_texts, ["F", " F", "f"]),
        (&pass_texts, ["P", " P", "PA"]),
    ] {
        for text in expected {
            assert!(texts.iter().any(|t| t == text), "{text:?} not in {texts:?}");
        }
        assert!(!texts.iter().any(|t| t == "\"" || t == " "), "{texts:?}");
    }
    assert!(
        fail.len() + pass.len() < 200,
        "{fail_texts:?} {pass_texts:?}"
    );

    // The shortest rows, each with the reply forced up to the SCORE value.
    let forced = loaded
        .codec
        .encode(r#"{"REASONING": ["x"], "SCORE": ""#)
        .expect("encode forced reply");
    let mut prompts: Vec<Vec<u32>> = sample_rows()
        .iter()
        .map(|e| {
            let (_, mut ids) = loaded.prompt(&prompt, e).expect("prompt");
            ids.extend(&forced);
            ids
        })
        .collect();
    prompts.sort_by_key(Vec::len);
    prompts.truncate(3);
    // One prefill chunk each, so that the forward below has the engine's shapes.
    assert!(prompts[2].len() <= halubench_candle::model::PREFILL_CHUNK);

    let first = loaded.engine.generate(&prompts, 3).expect("generate");
    let again = loaded.engine.generate(&prompts, 3).expect("generate again");
    loaded.engine.set_max_batch(3);
    let batched = loaded
        .engine
        .generate(&prompts, 3)
        .expect("generate batched");
    let p_fail = |gens: &[halubench_candle::Generation]| -> Vec<f64> {
        gens.iter()
            .map(|g| g.verdict_masses[0].p_fail().expect("a p_fail"))
            .collect()
    };
    let ours = p_fail(&first);
    assert_eq!(ours, p_fail(&again), "p_fail is not deterministic");
    assert_eq!(ours, p_fail(&batched), "batch size 3 changed p_fail");

    let model = loaded.engine.model();
    for ((ids, generation), ours) in prompts.iter().zip(&first).zip(&ours) {
        let mut state = model.new_sequence(ids.len()).expect("state");
        let logits: Vec<f32> = model
            .forward(&mut [(&ids[..], &mut state)])
            .and_then(|t| Ok(t.squeeze(0)?.to_vec1()?))
            .expect("forward");
        let expected = full_softmax_p_fail(&logits, &fail, &pass);
        assert!(
            (ours - expected).abs() < 1e-6,
            "p_fail {ours} but the full softmax gives {expected}"
        );
        assert!((0.0..=1.0).contains(ours));

        // Read as a whole reply, the verdict starts where the forcing ended.
        let mut reply = forced.clone();
        reply.extend(&generation.tokens);
        let raw = loaded.codec.decode(&reply).expect("decode");
        let verdict = halubench_judge::parse_verdict(&raw).verdict;
        eprintln!("p_fail {ours:.6} reply {raw:?} verdict {verdict:?}");
        if verdict != Verdict::Invalid {
            assert_eq!(
                verdict_position(&loaded.codec, &reply, verdict).expect("position"),
                Some(forced.len()),
                "{raw:?}"
            );
        }
        // SmolLM2 rarely answers PASS or FAIL; a reply that does, with this position's mass
        // where its verdict starts (and masses that would give 1 elsewhere), gets its p_fail.
        let mut tokens = forced.clone();
        tokens.extend(loaded.codec.encode("PASS\"}").expect("encode"));
        let elsewhere = VerdictMass {
            fail: 0.0,
            pass: f64::NEG_INFINITY,
        };
        let mut masses = vec![elsewhere; tokens.len()];
        masses[forced.len()] = generation.verdict_masses[0];
        let text = loaded.codec.decode(&tokens).expect("decode");
        let verdict = halubench_judge::parse_verdict(&text).verdict;
        assert_eq!(verdict, Verdict::Pass, "{text:?}");
        assert_eq!(
            reply_p_fail(&loaded.codec, &tokens, &masses, verdict).expect("p_fail"),
            Some(*ours)
        );
        assert_eq!(
            reply_p_fail(&loaded.codec, &tokens, &masses, Verdict::Invalid).expect("p_fail"),
            None
        );
    }
}

#[test]
fn verdict_position_is_the_token_after_the_last_score_key() {
    let gguf = Gguf::open(&smollm2_gguf()).expect("open");
    let codec = TextCodec::from_gguf(&gguf).expect("tokenizer");
    let cases = [
        (
            r#"{"REASONING": ["a score: PASS is wrong"], "SCORE": "FAIL"}"#,
            Verdict::Fail,
        ),
        ("SCORE: **PASS**", Verdict::Pass),
        ("'score':'fail'", Verdict::Fail),
    ];
    for (text, verdict) in cases {
        assert_eq!(halubench_judge::parse_verdict(text).verdict, verdict);
        let ids = codec.encode(text).expect("encode");
        let at = verdict_position(&codec, &ids, verdict)
            .expect("position")
            .unwrap_or_else(|| panic!("no position in {text:?}"));
        let before = codec.decode(&ids[..at]).expect("decode");
        assert!(before.to_ascii_lowercase().rfind("score").is_some());
        let rest = codec.decode(&ids[at..]).expect("decode");
        let word = rest.trim_start_matches([' ', '"', '\'', ':']);
        let expected = if verdict == Verdict::Fail {
            "fail"
        } else {
            "pass"
        };
        assert!(
            word.to_ascii_lowercase().starts_with(expected),
            "{text:?}: {rest:?}"
        );
        // The other verdict, or none, has no position.
        let other = if verdict == Verdict::Fail {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        assert_eq!(verdict_position(&codec, &ids, other).expect("p"), None);
        assert_eq!(
            verdict_position(&codec, &ids, Verdict::Invalid).expect("p"),
            None
        );
    }
    // A bare verdict: the parser reads the whole reply, whose first token starts it.
    let bare = codec.encode(" FAIL.").expect("encode");
    assert_eq!(
        halubench_judge::parse_verdict(" FAIL.").verdict,
        Verdict::Fail
    );
    assert_eq!(
        verdict_position(&codec, &bare, Verdict::Fail).expect("p"),
        Some(0)
    );
    assert_eq!(
        verdict_position(&codec, &bare, Verdict::Pass).expect("p"),
        None
    );
}
