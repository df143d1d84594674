//! Prompt templates: the text a model judge is asked, with `{question}`, `{context}` and
//! `{answer}` filled in from an example.
//!
//! The Lynx template is embedded so that every judge asks exactly the published prompt;
//! other templates can be read from a file. A template's SHA-256 goes into `run.toml`, so a
//! run records which prompt it used even when the file later changes.

use std::fmt::Write as _;
use std::path::Path;

use crate::JudgeError;
use halubench_core::Example;
use sha2::{Digest, Sha256};

/// The placeholders a template must contain, each with the field it is filled from.
const QUESTION: &str = "{question}";
const CONTEXT: &str = "{context}";
const ANSWER: &str = "{answer}";
const PLACEHOLDERS: [&str; 3] = [QUESTION, CONTEXT, ANSWER];

/// The Lynx prompt as published on the model cards, in its rendered form (one leading and
/// one trailing newline, single braces in the JSON example line).
const LYNX_V1: &str = include_str!("../prompts/lynx-v1.txt");

/// A prompt template and the digest that identifies it in a run's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    name: String,
    text: String,
    sha256: String,
}

impl PromptTemplate {
    /// The Lynx prompt, used for every judge model in the paper.
    pub fn lynx() -> Self {
        // Not validated: the embedded text is fixed, and a unit test checks it.
        Self::new("lynx-v1".to_string(), LYNX_V1.to_string())
    }

    /// A template read from `path`, named after the file (`prompts/lynx-v1.txt` is
    /// "lynx-v1"). The text is used exactly as read, newlines included.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, JudgeError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| JudgeError::PromptRead {
            path: path.to_path_buf(),
            source,
        })?;
        // Errors name the file, the name a user would look for.
        check_placeholders(&path.display().to_string(), &text)?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Self::new(name, text))
    }

    /// A template from text held in memory.
    pub fn from_text(name: impl Into<String>, text: impl Into<String>) -> Result<Self, JudgeError> {
        let (name, text) = (name.into(), text.into());
        check_placeholders(&name, &text)?;
        Ok(Self::new(name, text))
    }

    fn new(name: String, text: String) -> Self {
        let sha256 = hex_sha256(&text);
        PromptTemplate { name, text, sha256 }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template text, placeholders unfilled.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Lower-case hex SHA-256 of the template text, for `run.toml`.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Fills the placeholders from `example` in a single pass over the template: text taken
    /// from the example is never scanned again, so an answer that contains "{context}" stays
    /// literally "{context}" instead of pulling the passage in a second time.
    pub fn render(&self, example: &Example) -> String {
        let fill = |placeholder: &str| match placeholder {
            QUESTION => Some(example.question.as_str()),
            CONTEXT => Some(example.passage.as_str()),
            ANSWER => Some(example.answer.as_str()),
            _ => None,
        };
        let mut out = String::with_capacity(
            self.text.len() + example.question.len() + example.passage.len() + example.answer.len(),
        );
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            rest = &rest[open..];
            let filled = PLACEHOLDERS
                .iter()
                .find(|placeholder| rest.starts_with(*placeholder))
                .and_then(|placeholder| Some((*placeholder, fill(placeholder)?)));
            match filled {
                Some((placeholder, value)) => {
                    out.push_str(value);
                    rest = &rest[placeholder.len()..];
                }
                // A literal brace, such as the JSON example line of the Lynx prompt.
                None => {
                    out.push('{');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn check_placeholders(template: &str, text: &str) -> Result<(), JudgeError> {
    match PLACEHOLDERS
        .iter()
        .find(|placeholder| !text.contains(*placeholder))
    {
        Some(placeholder) => Err(JudgeError::PromptPlaceholder {
            template: template.to_string(),
            placeholder,
        }),
        None => Ok(()),
    }
}

pub(crate) fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use halubench_core::Label;

    use super::*;

    fn example(question: &str, passage: &str, answer: &str) -> Example {
        Example {
            id: "t1".to_string(),
            task: "halueval".to_string(),
            passage: passage.to_string(),
            question: question.to_string(),
            answer: answer.to_string(),
            label: Label::Pass,
        }
    }

    /// A file under the system temp dir, unique to this process and test.
    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("halubench-judge-{}-{name}.txt", std::process::id()));
        std::fs::write(&path, text).expect("write temp file");
        path
    }

    #[test]
    fn renders_the_lynx_prompt_as_published() {
        let ex = example(
            "Who wrote Hamlet?",
            "Hamlet is a tragedy by William Shakespeare.",
            "Christopher Marlowe",
        );
        // Built by hand from REFERENCE.md, "The judge protocol".
        let expected = "\nGiven the following QUESTION, DOCUMENT and ANSWER you must analyze the \
provided answer and determine whether it is faithful to the contents of the DOCUMENT. The ANSWER \
must not offer new information beyond the context provided in the DOCUMENT. The ANSWER also must \
not contradict information provided in the DOCUMENT. Output your final verdict by strictly \
following this format: \"PASS\" if the answer is faithful to the DOCUMENT and \"FAIL\" if the \
answer is not faithful to the DOCUMENT. Show your reasoning.

--
QUESTION (THIS DOES NOT COUNT AS BACKGROUND INFORMATION):
Who wrote Hamlet?

--
DOCUMENT:
Hamlet is a tragedy by William Shakespeare.

--
ANSWER:
Christopher Marlowe

--

Your output should be in JSON FORMAT with the keys \"REASONING\" and \"SCORE\":
{\"REASONING\": <your reasoning as bullet points>, \"SCORE\": <your final score>}
";
        let lynx = PromptTemplate::lynx();
        assert_eq!(lynx.name(), "lynx-v1");
        assert_eq!(lynx.render(&ex), expected);
    }

    #[test]
    fn embedded_lynx_template_is_valid() {
        let lynx = PromptTemplate::lynx();
        let checked = PromptTemplate::from_text("lynx-v1", lynx.text()).expect("valid template");
        assert_eq!(checked, lynx);
    }

    #[test]
    fn inserted_text_is_never_rescanned() {
        let template = PromptTemplate::from_text("t", "Q={question} C={context} A={answer} {x}")
            .expect("valid template");
        let ex = example("{answer}?", "P {question}", "see {context}");
        assert_eq!(
            template.render(&ex),
            "Q={answer}? C=P {question} A=see {context} {x}"
        );
    }

    #[test]
    fn repeated_and_adjacent_placeholders_are_all_filled() {
        let template = PromptTemplate::from_text("t", "{{question}}{answer}{context}{answer}{")
            .expect("valid template");
        assert_eq!(template.render(&example("q", "p", "a")), "{q}apa{");
    }

    #[test]
    fn from_file_reads_the_shipped_lynx_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/lynx-v1.txt");
        let template = PromptTemplate::from_file(&path).expect("read template");
        assert_eq!(template, PromptTemplate::lynx());
    }

    #[test]
    fn from_file_names_a_missing_file() {
        let path = std::env::temp_dir().join("halubench-judge-no-such-prompt.txt");
        let err = PromptTemplate::from_file(&path).expect_err("missing file");
        assert!(matches!(err, JudgeError::PromptRead { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("halubench-judge-no-such-prompt.txt"),
            "{err}"
        );
    }

    #[test]
    fn from_file_names_the_file_and_the_missing_placeholder() {
        let path = temp_file("no-answer", "Q: {question}\nC: {context}\n");
        let err = PromptTemplate::from_file(&path).expect_err("no {answer}");
        let _ = std::fs::remove_file(&path);
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("{answer}"), "{message}");
    }

    #[test]
    fn from_file_takes_its_name_from_the_file_stem() {
        let path = temp_file("named", "{question}{context}{answer}");
        let template = PromptTemplate::from_file(&path);
        let _ = std::fs::remove_file(&path);
        let template = template.expect("valid template");
        assert_eq!(
            template.name(),
            format!("halubench-judge-{}-named", std::process::id())
        );
    }

    #[test]
    fn from_text_rejects_each_missing_placeholder() {
        for (text, missing) in [
            ("{context}{answer}", "{question}"),
            ("{question}{answer}", "{context}"),
            ("{question}{context}", "{answer}"),
            ("{Question}{context}{answer}", "{question}"),
        ] {
            match PromptTemplate::from_text("t", text) {
                Err(JudgeError::PromptPlaceholder { placeholder, .. }) => {
                    assert_eq!(placeholder, missing, "{text}")
                }
                other => panic!("{text}: expected a missing placeholder, got {other:?}"),
            }
        }
    }

    #[test]
    fn sha256_is_stable_and_follows_the_text() {
        // SHA-256 of "{question}{context}{answer}", computed with `sha256sum`.
        let text = "{question}{context}{answer}";
        let a = PromptTemplate::from_text("a", text).expect("valid");
        let b = PromptTemplate::from_text("b", text).expect("valid");
        assert_eq!(
            a.sha256(),
            "0eded8ce8e3afcb2b484ebe013733e81057bd6e4dbac9d9df4a20aa72976b24c"
        );
        assert_eq!(a.sha256(), b.sha256(), "the name is not part of the digest");
        let changed = PromptTemplate::from_text("a", format!("{text}\n")).expect("valid");
        assert_ne!(a.sha256(), changed.sha256());
        // `sha256sum prompts/lynx-v1.txt`: a change to the shipped prompt must be deliberate.
        assert_eq!(
            PromptTemplate::lynx().sha256(),
            "5126e48afc1c2fd48fbb49f5c4ab9d4b33f6dd04fbc0a0fd108e3b353544fff7"
        );
    }
}
