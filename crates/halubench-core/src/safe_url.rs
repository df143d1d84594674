//! [`SafeUrl`]: an `http(s)://` URL that cannot print the credentials it carries.
//!
//! Endpoints are often given with a secret inside the URL (`https://user:key@proxy/v1`,
//! `https://proxy/v1?api-key=key`), and URLs end up in error messages, `run.toml`, reports
//! and logs. `SafeUrl`'s `Display`, `Debug` and `Serialize` all print the redacted form:
//! the userinfo becomes `***` and every query value becomes `***` (keys stay). The full
//! URL is only reachable through [`SafeUrl::expose_secret`], meant for the HTTP client.
//!
//! The parser is hand-written and deliberately narrow: `scheme://[userinfo@]host[:port]
//! [/path][?query][#fragment]` with the scheme `http` or `https`. Anything it is not sure
//! about is refused rather than guessed, so that what it calls the host is the host an
//! HTTP client (the WHATWG URL parser) connects to.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// An `http://` or `https://` URL whose `Display`, `Debug` and `Serialize` never show
/// its userinfo or query values.
///
/// The fragment (`#...`) is dropped when parsing: it is never sent to a server.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafeUrl {
    /// The whole URL as handed to the HTTP client.
    full: String,
    /// `http` or `https`, lower case.
    scheme: String,
    /// Everything before the last `@` of the authority; never empty when present.
    userinfo: Option<String>,
    /// As written; an IPv6 address keeps its brackets.
    host: String,
    port: Option<u16>,
    /// Empty, or starting with `/` and never ending with one.
    path: String,
    /// Without the `?`; never empty when present.
    query: Option<String>,
}

/// Why a text is not a usable URL. It shows the text redacted as well as can be done for
/// text that did not parse: never the userinfo or the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    shown: String,
    reason: &'static str,
}

impl UrlError {
    /// The rejected text, redacted.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// What is wrong with it, in a phrase that never quotes the input.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid URL {:?}: {}", self.shown, self.reason)
    }
}

impl std::error::Error for UrlError {}

impl SafeUrl {
    /// Secrets shorter than this many characters are not returned by [`SafeUrl::secrets`]:
    /// replacing every `abc` in a text would mangle it without protecting much.
    pub const MIN_SECRET_CHARS: usize = 4;

    /// Parses `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
    ///
    /// Surrounding whitespace and trailing `/`s of the path are trimmed; the scheme must be
    /// `http` or `https` (any case) and the host non-empty. Refused: whitespace or control
    /// characters inside, a backslash anywhere, and an `@` after the host outside a query
    /// value (it nearly always means a `/`, `?` or `#` in a password that should have been
    /// percent-encoded, and the part after it would otherwise be printed).
    pub fn parse(text: &str) -> Result<SafeUrl, UrlError> {
        let fail = |reason: &'static str| UrlError {
            shown: redact_unparsed(text),
            reason,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("it contains whitespace or a control character"));
        }
        if text.contains('\\') {
            return Err(fail("it contains a backslash"));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| fail("it must start with http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(fail("it must start with http:// or https://"));
        }
        let rest = match rest.split_once('#') {
            Some((before, fragment)) => {
                if fragment.contains('@') {
                    return Err(fail(AT_AFTER_HOST));
                }
                before
            }
            None => rest,
        };
        let (rest, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if path.contains('@') {
            return Err(fail(AT_AFTER_HOST));
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = split_host_port(host_port).map_err(fail)?;
        let port = match port {
            None => None,
            Some(digits) => Some(parse_port(digits).ok_or_else(|| fail("invalid port"))?),
        };
        let query = query.filter(|q| !q.is_empty());
        if let Some(query) = query {
            let at_in_a_key = query
                .split('&')
                .any(|item| item.split('=').next().is_some_and(|key| key.contains('@')));
            if at_in_a_key {
                return Err(fail(AT_AFTER_HOST));
            }
        }
        Ok(SafeUrl::assemble(
            scheme,
            userinfo.filter(|u| !u.is_empty()).map(str::to_string),
            host.to_string(),
            port,
            path.trim_end_matches('/').to_string(),
            query.map(str::to_string),
        ))
    }

    fn assemble(
        scheme: String,
        userinfo: Option<String>,
        host: String,
        port: Option<u16>,
        path: String,
        query: Option<String>,
    ) -> SafeUrl {
        let mut full = format!("{scheme}://");
        if let Some(userinfo) = &userinfo {
            full.push_str(userinfo);
            full.push('@');
        }
        full.push_str(&host);
        if let Some(port) = port {
            full.push_str(&format!(":{port}"));
        }
        full.push_str(&path);
        if let Some(query) = &query {
            full.push('?');
            full.push_str(query);
        }
        SafeUrl {
            full,
            scheme,
            userinfo,
            host,
            port,
            path,
            query,
        }
    }

    /// The whole URL, credentials included: only for handing to the HTTP client.
    pub fn expose_secret(&self) -> &str {
        &self.full
    }

    /// This URL with `/path` appended to its path, the query kept after it:
    /// `https://proxy/v1?k=v` joined with `chat/completions` is
    /// `https://proxy/v1/chat/completions?k=v`. Leading and trailing `/`s of `path` are
    /// ignored; characters that would end the path (`?`, `#`) or break the URL's rules
    /// (whitespace, controls, `\`, `@`, `%`) are percent-encoded.
    pub fn join(&self, path: &str) -> SafeUrl {
        let segment = path.trim_matches('/');
        let mut joined = self.path.clone();
        if !segment.is_empty() {
            joined.push('/');
            for c in segment.chars() {
                if c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\' | '@' | '%')
                {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        joined.push_str(&format!("%{byte:02X}"));
                    }
                } else {
                    joined.push(c);
                }
            }
        }
        SafeUrl::assemble(
            self.scheme.clone(),
            self.userinfo.clone(),
            self.host.clone(),
            self.port,
            joined.trim_end_matches('/').to_string(),
            self.query.clone(),
        )
    }

    /// The strings to scrub from any text a server echoes back (an error body that quotes
    /// the request, say): the userinfo's user and password and every query value, each
    /// as written, percent-decoded, form-decoded (`+` as a space) and percent-encoded the
    /// way an HTTP client sends it; and the `Authorization: Basic` token an HTTP client
    /// builds from the userinfo, since that is how a server sees it.
    ///
    /// Only strings of at least [`SafeUrl::MIN_SECRET_CHARS`] characters are returned:
    /// shorter ones cannot be scrubbed without mangling ordinary text, so a two-letter
    /// password can still show up in an echoed body. No duplicates; in no special order.
    pub fn secrets(&self) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        let mut add = |value: String| {
            if value.chars().count() >= SafeUrl::MIN_SECRET_CHARS && !found.contains(&value) {
                found.push(value);
            }
        };
        if let Some(userinfo) = &self.userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo.as_str(), None),
            };
            for value in std::iter::once(user).chain(password) {
                add(value.to_string());
                if let Some(decoded) = percent_decode(value) {
                    add(decoded);
                }
            }
            // What reqwest (and curl) send for `user:password@`: `Basic base64(user:pw)`,
            // with both parts percent-decoded; no header at all if the user is not UTF-8.
            if let Some(user) = percent_decode(user) {
                let mut plain = format!("{user}:");
                if let Some(password) = password.and_then(percent_decode) {
                    plain.push_str(&password);
                }
                add(base64(plain.as_bytes()));
            }
        }
        for value in self.query_values() {
            add(value.to_string());
            if let Some(decoded) = percent_decode(value) {
                add(decoded);
            }
            if let Some(decoded) = percent_decode(&value.replace('+', " ")) {
                add(decoded);
            }
            add(wire_encode(value));
        }
        found
    }

    fn query_values(&self) -> impl Iterator<Item = &str> {
        self.query
            .iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|item| item.split_once('=').map(|(_, value)| value))
    }

    /// Whether the host is `localhost`, an address in 127.0.0.0/8 or `::1` (also as an
    /// IPv4-mapped IPv6 address). Any other spelling of a loopback address counts as not
    /// loopback, which errs on the side of warning.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        if host == "localhost" || host == "localhost." {
            return true;
        }
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().is_ok_and(|ip| {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            });
        }
        host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether requests go unencrypted (`http://`).
    pub fn is_plain_http(&self) -> bool {
        self.scheme == "http"
    }

    /// Whether the URL itself carries something secret: a userinfo, or a query with a
    /// non-empty value (every query value is treated as a secret).
    pub fn has_credentials(&self) -> bool {
        self.userinfo.is_some() || self.query_values().any(|v| !v.is_empty())
    }

    /// The host as written (an IPv6 address with its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when one is written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

const AT_AFTER_HOST: &str = "it has an '@' after the host: percent-encode '/', '?' and '#' in \
     credentials (%2F, %3F, %23)";

/// Splits `host[:port]` or `[v6]:port`, checking the host.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let end = inner
            .find(']')
            .ok_or("it has an IPv6 host without its closing ']'")?;
        if inner[..end].parse::<Ipv6Addr>().is_err() {
            return Err("its IPv6 host is not a valid address");
        }
        let after = &inner[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err("it has characters after its IPv6 host"),
        };
        (&text[..end + 2], port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if !host.chars().all(valid) {
            return Err("its host has a character other than letters, digits, '-', '.', '_'");
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    Ok((host, port))
}

fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as is. `None` when the
/// decoded bytes are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Both digits are below 16.
            out.push(((hi << 4) | lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A query value as the WHATWG URL parser sends it: its special-query percent-encode set
/// (`"`, `<`, `>`, `'`, and bytes outside printable ASCII) encoded, everything else as is.
fn wire_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if matches!(byte, b'"' | b'<' | b'>' | b'\'') || !(0x21..0x7f).contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Best-effort redaction of a text that did not parse as a URL, for error messages:
/// everything up to the last `@` becomes `***@`, a port that is not a number becomes
/// `***` (a `user:password` without its `@host`), the query becomes `***`, the fragment
/// is dropped.
fn redact_unparsed(text: &str) -> String {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            (format!("{scheme}://"), rest)
        }
        _ => (String::new(), text),
    };
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((_, after)) => ("***@", after),
        None => ("", rest),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (rest, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?***"),
        None => (rest, ""),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rfind(':') {
        Some(colon)
            if !authority[colon + 1..].bytes().all(|b| b.is_ascii_digit())
                && !authority[colon + 1..].ends_with(']') =>
        {
            format!("{}:***", &authority[..colon])
        }
        _ => authority.to_string(),
    };
    format!("{scheme}{userinfo}{authority}{path}{query}")
}

impl FromStr for SafeUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<SafeUrl, UrlError> {
        SafeUrl::parse(text)
    }
}

/// The redacted form: `https://***@proxy/v1?api-key=***`.
impl fmt::Display for SafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.userinfo.is_some() {
            f.write_str("***@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)?;
        if let Some(query) = &self.query {
            f.write_str("?")?;
            for (i, item) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match item.split_once('=') {
                    Some((key, "")) => write!(f, "{key}=")?,
                    Some((key, _)) => write!(f, "{key}=***")?,
                    // A bare item (`?stream`) is a key without a value.
                    None => f.write_str(item)?,
                }
            }
        }
        Ok(())
    }
}

/// The redacted form, quoted.
impl fmt::Debug for SafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// The redacted form: a recorded URL never carries its secrets. There is deliberately no
/// `Deserialize`.
impl Serialize for SafeUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> SafeUrl {
        match SafeUrl::parse(text) {
            Ok(url) => url,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn error(text: &str) -> UrlError {
        match SafeUrl::parse(text) {
            Ok(url) => panic!("{text:?} should not parse, got {url}"),
            Err(e) => e,
        }
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn plain_urls_print_as_given_minus_trailing_slashes() {
        let u = url("  http://gpu1:8000/v1/  ");
        assert_eq!(u.to_string(), "http://gpu1:8000/v1");
        assert_eq!(u.expose_secret(), "http://gpu1:8000/v1");
        assert_eq!(format!("{u:?}"), "\"http://gpu1:8000/v1\"");
        assert_eq!(u.host(), "gpu1");
        assert_eq!(u.port(), Some(8000));
        assert!(!u.has_credentials());
        assert!(u.is_plain_http());
        assert!(u.secrets().is_empty());
        assert_eq!(
            url("https://api.openai.com").expose_secret(),
            "https://api.openai.com"
        );
        assert_eq!(
            url("https://api.openai.com/").expose_secret(),
            "https://api.openai.com"
        );
        assert_eq!(url("https://h/v1//").expose_secret(), "https://h/v1");
        assert_eq!(url("HTTPS://Host/V1").expose_secret(), "https://Host/V1");
        assert!(!url("HTTPS://Host/V1").is_plain_http());
        assert_eq!(url("http://h/v1/?k=v").expose_secret(), "http://h/v1?k=v");
        assert_eq!(url("http://h/v1?").expose_secret(), "http://h/v1");
        assert_eq!(url("http://h/v1#part").expose_secret(), "http://h/v1");
        assert_eq!(url("http://h/v1#part").to_string(), "http://h/v1");
        assert_eq!(url("http://h.example_x-y/v1").host(), "h.example_x-y");
        assert_eq!("http://h/v1".parse::<SafeUrl>(), Ok(url("http://h/v1")));
    }

    #[test]
    fn userinfo_is_redacted_everywhere_but_expose_secret() {
        let u = url("https://me:sk-123456@proxy.example/v1");
        assert_eq!(u.to_string(), "https://***@proxy.example/v1");
        assert_eq!(format!("{u:?}"), "\"https://***@proxy.example/v1\"");
        assert_eq!(u.expose_secret(), "https://me:sk-123456@proxy.example/v1");
        assert!(u.has_credentials());
        assert_eq!(u.host(), "proxy.example");
        // "me" is too short to scrub; the Basic token is what a server sees.
        assert_eq!(
            sorted(u.secrets()),
            ["bWU6c2stMTIzNDU2", "sk-123456"].map(String::from)
        );
        // A user without a password.
        let u = url("https://token1234@proxy/v1");
        assert_eq!(u.to_string(), "https://***@proxy/v1");
        assert_eq!(
            sorted(u.secrets()),
            ["dG9rZW4xMjM0Og==", "token1234"].map(String::from)
        );
        // An empty userinfo is no userinfo.
        let u = url("https://@proxy/v1");
        assert_eq!(u.expose_secret(), "https://proxy/v1");
        assert!(!u.has_credentials());
    }

    #[test]
    fn an_at_sign_inside_the_password_belongs_to_the_password() {
        let u = url("https://user:p@ss@host:8443/v1");
        assert_eq!(u.host(), "host");
        assert_eq!(u.port(), Some(8443));
        assert_eq!(u.to_string(), "https://***@host:8443/v1");
        assert_eq!(u.expose_secret(), "https://user:p@ss@host:8443/v1");
        assert_eq!(
            sorted(u.secrets()),
            ["dXNlcjpwQHNz", "p@ss", "user"].map(String::from)
        );
        // Percent-encoded: both forms, and the token of the decoded pair.
        let u = url("https://user:p%40ss%2Fw0rd@host/v1");
        let secrets = u.secrets();
        assert!(secrets.contains(&"p%40ss%2Fw0rd".to_string()));
        assert!(secrets.contains(&"p@ss/w0rd".to_string()));
        assert!(secrets.contains(&base64(b"user:p@ss/w0rd")));
    }

    #[test]
    fn query_values_are_redacted_and_keys_kept() {
        let u = url("https://proxy/v1?api-key=sk-abcdef&x=1");
        assert_eq!(u.to_string(), "https://proxy/v1?api-key=***&x=***");
        assert_eq!(u.expose_secret(), "https://proxy/v1?api-key=sk-abcdef&x=1");
        assert!(u.has_credentials());
        // "1" is too short to scrub.
        assert_eq!(u.secrets(), ["sk-abcdef"]);
        // A key with no value, an empty value, an empty item.
        let u = url("https://proxy/v1?stream&key=&&api-key=secret99");
        assert_eq!(u.to_string(), "https://proxy/v1?stream&key=&&api-key=***");
        assert_eq!(u.secrets(), ["secret99"]);
        let u = url("https://proxy/v1?stream&key=");
        assert_eq!(u.to_string(), "https://proxy/v1?stream&key=");
        assert!(!u.has_credentials());
        assert!(u.secrets().is_empty());
        // '@' and '=' inside a value are the value's.
        let u = url("https://proxy/v1?user=me@example.org&sig=a=b=c");
        assert_eq!(u.to_string(), "https://proxy/v1?user=***&sig=***");
        assert!(u.secrets().contains(&"a=b=c".to_string()));
        // A fragment never shows.
        assert_eq!(
            url("https://p/v1?k=abcd#frag").to_string(),
            "https://p/v1?k=***"
        );
    }

    #[test]
    fn percent_encoded_query_values_give_every_form_a_server_may_echo() {
        let u = url("https://proxy/v1?api-key=sk%2Fab+cd%2B");
        assert_eq!(u.to_string(), "https://proxy/v1?api-key=***");
        assert_eq!(
            sorted(u.secrets()),
            ["sk%2Fab+cd%2B", "sk/ab cd+", "sk/ab+cd+"].map(String::from)
        );
        // Characters an HTTP client encodes on the wire.
        let u = url("https://proxy/v1?k=cl\u{e9}\"1234");
        let secrets = u.secrets();
        assert!(secrets.contains(&"cl\u{e9}\"1234".to_string()));
        assert!(secrets.contains(&"cl%C3%A9%221234".to_string()));
        // A broken escape is kept as written; bytes that are not UTF-8 give no decoded form.
        assert_eq!(url("https://p/?k=ab%zz").secrets(), ["ab%zz"]);
        assert_eq!(url("https://p/?k=ab%ff").secrets(), ["ab%ff"]);
    }

    #[test]
    fn ipv6_hosts_and_ports() {
        let u = url("http://[::1]:8080/v1");
        assert_eq!(u.host(), "[::1]");
        assert_eq!(u.port(), Some(8080));
        assert_eq!(u.to_string(), "http://[::1]:8080/v1");
        assert!(u.is_loopback());
        let u = url("https://user:pw12@[2001:db8::1]/v1");
        assert_eq!(u.to_string(), "https://***@[2001:db8::1]/v1");
        assert_eq!(u.port(), None);
        assert!(!u.is_loopback());
        assert!(url("http://[::ffff:127.0.0.1]/").is_loopback());
        assert!(url("http://[0:0:0:0:0:0:0:1]:1/").is_loopback());
        assert_eq!(url("http://h:0").port(), Some(0));
        assert_eq!(url("http://h:65535").port(), Some(65535));
        assert_eq!(url("http://h:00080/v1").expose_secret(), "http://h:80/v1");
        for bad in [
            "http://[::1/v1",
            "http://[zz::1]/v1",
            "http://[::1]x/v1",
            "http://h:65536/",
            "http://h:/v1",
            "http://h:8a/v1",
            "http://h:-1/v1",
            "http://h:1:2/v1",
            "http://::1/v1",
        ] {
            error(bad);
        }
    }

    #[test]
    fn loopback_plain_http_and_credentials() {
        for host in [
            "http://127.0.0.1:8000/v1",
            "http://127.5.6.7/",
            "http://localhost:8000",
            "http://LocalHost/v1",
            "https://[::1]/",
        ] {
            assert!(url(host).is_loopback(), "{host}");
        }
        for host in [
            "http://128.0.0.1/",
            "http://10.0.0.1/",
            "http://127.0.0.1.example.com/",
            "http://localhost.example.com/",
            "http://[::2]/",
            "http://gpu1/",
        ] {
            assert!(!url(host).is_loopback(), "{host}");
        }
        assert!(url("http://h").is_plain_http());
        assert!(!url("https://h").is_plain_http());
        assert!(url("http://a:b@h").has_credentials());
        assert!(url("http://h/?k=v").has_credentials());
        assert!(!url("http://h/?k").has_credentials());
    }

    #[test]
    fn join_puts_the_path_before_the_query() {
        let base = url("https://proxy/v1?api-key=k1234567");
        let joined = base.join("chat/completions");
        assert_eq!(
            joined.expose_secret(),
            "https://proxy/v1/chat/completions?api-key=k1234567"
        );
        assert_eq!(
            joined.to_string(),
            "https://proxy/v1/chat/completions?api-key=***"
        );
        assert_eq!(joined.secrets(), base.secrets());
        let base = url("http://u:pw12@h:1");
        assert_eq!(
            base.join("/models/").expose_secret(),
            "http://u:pw12@h:1/models"
        );
        assert_eq!(base.join("models").to_string(), "http://***@h:1/models");
        assert_eq!(base.join("").expose_secret(), "http://u:pw12@h:1");
        assert_eq!(
            url("http://h/v1").join("a?b#c d@e%").expose_secret(),
            "http://h/v1/a%3Fb%23c%20d%40e%25"
        );
        assert_eq!(
            url("http://h/v1").join("a/b").join("c").expose_secret(),
            "http://h/v1/a/b/c"
        );
    }

    #[test]
    fn errors_never_show_userinfo_or_query() {
        let e = error("ftp://user:pw1234@host/x?k=secretval#frag");
        assert_eq!(e.shown(), "ftp://***@host/x?***");
        assert_eq!(e.reason(), "it must start with http:// or https://");
        assert_eq!(
            e.to_string(),
            "invalid URL \"ftp://***@host/x?***\": it must start with http:// or https://"
        );
        // An unencoded '/' in a password: the rest would be taken for a path.
        let e = error("https://u:pass/word@host/v1");
        assert!(e.reason().contains("percent-encode"), "{e}");
        assert_eq!(e.shown(), "https://***@host/v1");
        // An unencoded '?' or '#' in a password: the rest would be a query or fragment.
        assert_eq!(
            error("https://u:pa?ssword@host/v1").shown(),
            "https://***@host/v1"
        );
        assert_eq!(
            error("https://u@pa#ssword@host/v1").shown(),
            "https://***@host/v1"
        );
        assert_eq!(
            error("https://u@pa?ssword@host/v1").shown(),
            "https://***@host/v1"
        );
        assert_eq!(error("https://h/v1?key@x=1").shown(), "https://***@x=1");
        // A forgotten `@host`: the password would be read as a port.
        assert_eq!(error("https://user:secretpw").shown(), "https://user:***");
        assert_eq!(
            error("https://user:secretpw/v1").shown(),
            "https://user:***/v1"
        );
        // No scheme, wrong scheme, nothing at all.
        assert_eq!(error("gpu1:8000/v1?k=secret").shown(), "gpu1:8000/v1?***");
        assert_eq!(error("").reason(), "it is empty");
        assert_eq!(error("http://").reason(), "it has no host");
        assert_eq!(error("http:///v1").reason(), "it has no host");
        assert_eq!(error("http://u:p@/v1").shown(), "http://***@/v1");
        // Whitespace and control characters inside; the message escapes them.
        let e = error("http://h/a b?k=secret1");
        assert_eq!(e.shown(), "http://h/a b?***");
        let e = error("http://h/a\u{7}b");
        assert!(e.to_string().contains("\\u{7}"), "{e}");
        // A backslash: a URL parser would take it for '/', so the host would differ.
        error("http://evil.example\\@127.0.0.1/");
        error("http://h\u{e9}/v1");
        for secret in [
            "pw1234",
            "secretval",
            "pass",
            "word",
            "ssword",
            "secretpw",
            "secret1",
        ] {
            for text in [
                "ftp://user:pw1234@host/x?k=secretval#frag",
                "https://u:pass/word@host/v1",
                "https://u:pa?ssword@host/v1",
                "https://user:secretpw",
                "http://h/a b?k=secret1",
            ] {
                let e = error(text);
                assert!(!e.to_string().contains(secret), "{e}");
                assert!(!format!("{e:?}").contains(secret), "{e:?}");
            }
        }
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }
}
