//! The Lynx prompt lengths of the longest sample rows in Llama-3 tokens, as Python counts
//! them: the reference the lynx-script rule is checked against, here and in halubench-cli's
//! tests (which include this file).

/// Every row of `../shared/data/halubench-sample` whose Lynx prompt has 3,900 Llama-3 tokens
/// or more (all CovidQA), shortest first. Made once with Python (`tokenizers` 0.22 and the
/// tokenizer.json of scripts/fetch-test-models.sh): each row's prompt rendered from
/// crates/halubench-judge/prompts/lynx-v1.txt by substituting `{question}`, `{context}` and
/// `{answer}` in one pass, then `len(Tokenizer.from_file(path).encode(prompt).ids)` (special
/// tokens added, as `transformers`' `tokenizer.encode` adds them). The rule drops the 21 at
/// 4,000 or more; 3,974 is the longest kept. One row of the sample appears twice; halubench
/// names the repeat `<id>#2`.
pub const PYTHON_PROMPT_LENGTHS: [(&str, usize); 22] = [
    ("c6af7dc4-6cf7-5f46-ae2b-5f91861df738", 3974),
    ("dd465f8c-4570-532c-95ff-9036e685be7e", 4017),
    ("252e7c37-0985-5392-b3de-bb5cbad5d957", 4054),
    ("252e7c37-0985-5392-b3de-bb5cbad5d957#2", 4054),
    ("a167466b-2131-55ef-808f-146397bb8b0a", 4172),
    ("d096f234-1ab8-5232-b0e3-4c1ad58fe130", 4190),
    ("b2877055-2aef-5ef2-95c6-385eefe60277", 4196),
    ("82c6c8d1-9cf7-5a70-aee6-437c6ab52002", 4201),
    ("a4b5bd85-f348-5209-89ab-126c650cb416", 4232),
    ("d99ac509-458e-5184-83bd-95703d824b1b", 4232),
    ("76b596e0-6ef1-50ec-855e-9d9267ab8e72", 4509),
    ("70e75371-46e6-5731-af56-1de7b19e43de", 4817),
    ("e3c54300-62b6-5420-9bab-413f40461a1a", 4850),
    ("19fa11cd-f075-5591-b03a-8b6417d3c63b", 4899),
    ("b3470c0a-7665-5f36-bfbc-9e12734d0ec4", 4919),
    ("1977474e-2079-583d-9448-88cac3f33f0d", 5370),
    ("7b687a37-0600-583b-b153-2cb3071b636e", 5447),
    ("db64115f-d060-5067-ae3d-a891a22390d8", 5510),
    ("1d5b94a0-476e-53c7-8d58-a61ed5576f4d", 5969),
    ("d49a33eb-4252-5a65-a691-09be3ceb094f", 6017),
    ("7b40ba3f-4093-5ec0-b8ad-5039063f6386", 6178),
    ("96d27eaa-92ea-5a09-bb2e-cf7b02112bcf", 6512),
];
