//! Raw flags turned into checked settings before anything runs, in one place.
//!
//! Numbers and durations are checked by clap as it parses, through the parsers below, so the
//! error names the flag and nothing later can panic on `NaN` or `1e20`. URLs and headers
//! cannot be checked that way: clap's error would echo the raw value, credentials and all.
//! They are kept as [`Sensitive`] until [`base_urls`] and [`headers`] turn them into types
//! that print no secret.

use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

use anyhow::bail;
use halubench_core::SafeUrl;
use halubench_openai::Header;

/// A flag value that may hold a secret (a URL with credentials, a header value). `Debug`
/// prints `***`.
#[derive(Clone)]
pub struct Sensitive(String);

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// clap's parser for a [`Sensitive`] flag: it never fails, so clap never prints the value.
pub fn sensitive(value: &str) -> Result<Sensitive, Infallible> {
    Ok(Sensitive(value.to_string()))
}

/// A clap parser for a finite number within `[min, max]`.
pub fn number_in(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text| {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        if !value.is_finite() {
            return Err(format!("`{text}` is not a finite number"));
        }
        if value < min || value > max {
            return Err(format!(
                "{value} is out of range: it must lie within [{min}, {max}]"
            ));
        }
        Ok(value)
    }
}

/// A clap parser for a probability strictly between 0 and 1 (a significance level).
pub fn open_unit_interval(text: &str) -> Result<f64, String> {
    let value = number_in(0.0, 1.0)(text)?;
    if value == 0.0 || value == 1.0 {
        return Err(format!("{value} must lie strictly between 0 and 1"));
    }
    Ok(value)
}

/// A clap parser for a duration given in seconds, within `[min, max]` seconds.
pub fn seconds_in(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    let number = number_in(min, max);
    move |text| Ok(Duration::from_secs_f64(number(text)?))
}

/// `--base-url` values as URLs that print no credentials; an error names the flag and shows
/// the URL with its secrets masked.
pub fn base_urls(values: &[Sensitive]) -> anyhow::Result<Vec<SafeUrl>> {
    if values.is_empty() {
        bail!("--base-url: give at least one URL");
    }
    values
        .iter()
        .map(|Sensitive(text)| SafeUrl::parse(text).map_err(|e| anyhow::anyhow!("--base-url: {e}")))
        .collect()
}

/// `--header "Name: value"` values; an error names the flag and the header, never its value.
pub fn headers(values: &[Sensitive]) -> anyhow::Result<Vec<Header>> {
    values
        .iter()
        .enumerate()
        .map(|(i, Sensitive(text))| {
            let Some((name, value)) = text.split_once(':') else {
                bail!(
                    "--header #{}: expected \"Name: value\" (the value is not shown)",
                    i + 1
                );
            };
            let name = name.trim();
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                bail!("--header #{}: {name:?} is not a valid header name", i + 1);
            }
            let value = value.trim();
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                bail!("--header {name}: the value holds control characters (it is not shown)");
            }
            Ok(Header::new(name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_be_finite_and_in_range() {
        let parse = number_in(0.0, 10.0);
        assert_eq!(parse("2.5"), Ok(2.5));
        for bad in ["NaN", "inf", "-inf", "-1", "11", "1e20", "", "two"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(open_unit_interval("0").is_err());
        assert!(open_unit_interval("1").is_err());
        assert_eq!(open_unit_interval("0.05"), Ok(0.05));
        let seconds = seconds_in(0.001, 86_400.0);
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(
            seconds("1e20").is_err(),
            "would panic in Duration::from_secs_f64"
        );
        assert!(seconds("0").is_err());
    }

    #[test]
    fn secrets_never_reach_debug_or_errors() {
        let url = sensitive("https://me:hunter22@proxy.example/v1?api-key=sk-secret")
            .expect("infallible");
        assert_eq!(format!("{url:?}"), "***");
        let bad =
            sensitive("ftp://me:hunter22@proxy.example/v1?api-key=sk-secret").expect("infallible");
        let error = base_urls(&[bad]).expect_err("must fail").to_string();
        assert!(error.contains("--base-url"), "{error}");
        assert!(
            !error.contains("hunter22") && !error.contains("sk-secret"),
            "{error}"
        );

        let header = sensitive("X-Token value-sk-secret").expect("infallible");
        let error = headers(&[header]).expect_err("must fail").to_string();
        assert!(
            error.contains("--header #1") && !error.contains("sk-secret"),
            "{error}"
        );
        let header = sensitive("X-Token: sk-secret\u{7}").expect("infallible");
        let error = headers(&[header]).expect_err("must fail").to_string();
        assert!(
            error.contains("X-Token") && !error.contains("sk-secret"),
            "{error}"
        );
        let ok =
            headers(&[sensitive("X-Token: sk-secret").expect("infallible")]).expect("infallible");
        assert!(!format!("{ok:?}").contains("sk-secret"));
    }
}
