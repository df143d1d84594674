//! The model's own chat template (Jinja, as Hugging Face and llama.cpp use it) rendered with
//! minijinja: one user message, the generation prompt added.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, context};

use crate::error::{LocalError, Result};

/// The Llama 3 Instruct chat format, used only when a model ships no template of its own.
pub const LLAMA3_FALLBACK: &str = "{{ bos_token }}{% for message in messages %}\
<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n\
{{ message['content'] | trim }}<|eot_id|>{% endfor %}\
{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where the template came from, for run.toml and errors.
    origin: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// `source` is the template text; `origin` says where it was found.
    pub fn new(source: &str, origin: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        // Hugging Face renders chat templates with both switched on; templates are written
        // for that.
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error(origin, &e))?;
        env.set_syntax(syntax);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<(), Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| template_error(origin, &e))?;
        Ok(ChatTemplate {
            env,
            origin: origin.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The prompt text for one user message, ending where the assistant's reply begins.
    pub fn render_user(&self, content: &str) -> Result<String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| template_error(&self.origin, &e))?;
        template
            .render(context! {
                messages => [context! { role => "user", content => content }],
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| template_error(&self.origin, &e))
    }
}

fn template_error(origin: &str, e: &Error) -> LocalError {
    // minijinja keeps the useful part (line, what failed) in the display of the chain.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    LocalError::Template {
        origin: origin.to_string(),
        message,
    }
}
