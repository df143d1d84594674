//! The price table: what a model's tokens cost, for cost reports, `--dry-run` and
//! `--max-cost`. Prices change, so none are built in; users keep their own file:
//!
//! ```toml
//! [gpt-4o]
//! input_per_mtok = 2.5    # USD per million prompt tokens
//! output_per_mtok = 10.0  # USD per million completion tokens
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use halubench_core::Usage;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    input_per_mtok: f64,
    output_per_mtok: f64,
}

impl Price {
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input_per_mtok
            + usage.completion_tokens as f64 * self.output_per_mtok)
            / 1e6
    }
}

/// Reads the table and returns the price of `model`, or an error naming the file when the
/// table is unreadable or lacks the model.
pub fn price_of(path: &Path, model: &str) -> anyhow::Result<Price> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read price table {}", path.display()))?;
    let table: BTreeMap<String, Price> =
        toml::from_str(&text).with_context(|| format!("invalid price table {}", path.display()))?;
    let price = table.get(model).copied().with_context(|| {
        format!(
            "price table {} has no entry for model `{model}` (it has: {})",
            path.display(),
            table.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let valid = |usd: f64| usd.is_finite() && usd >= 0.0;
    anyhow::ensure!(
        valid(price.input_per_mtok) && valid(price.output_per_mtok),
        "price table {}: prices for `{model}` must be finite and not negative",
        path.display()
    );
    Ok(price)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_per_million_tokens() {
        let price = Price {
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
        };
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 100_000,
        };
        assert!((price.cost(usage) - 3.5).abs() < 1e-12);
    }

    #[test]
    fn missing_model_names_the_file_and_the_models() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("prices.toml");
        std::fs::write(
            &path,
            "[gpt-4o]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\n",
        )
        .expect("write");
        assert!(price_of(&path, "gpt-4o").is_ok());
        let err = format!("{:#}", price_of(&path, "lynx").expect_err("missing"));
        assert!(
            err.contains("prices.toml") && err.contains("gpt-4o"),
            "{err}"
        );
    }
}
