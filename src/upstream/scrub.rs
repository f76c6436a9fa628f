//! Upstream addresses taken out of the error text that passes through to clients.
//!
//! Ollama's messages (and those of a proxy in front of it) can name where it runs: a Go
//! `dial tcp 127.0.0.1:11434: connect: connection refused`, a runner's
//! `Post "http://127.0.0.1:39145/completion": EOF`, an HTML 502 page naming `ollama:11434`.
//! Every upstream error message the gateway passes on goes through [`Scrubber::scrub`], which
//! replaces with [`REDACTED`]:
//!
//! - `http://` and `https://` URLs, up to the next space, quote, backslash or bracket;
//! - IPv4 addresses and bracketed IPv6 addresses, with their `:port`;
//! - `localhost` and the configured `OLLAMA_URL` host, with their `:port` (a single-label host
//!   such as `ollama` only with a port, or after `lookup `, so that the word itself survives in
//!   ordinary text).
//!
//! The original text is logged by the caller.

use std::borrow::Cow;

/// What an address is replaced with.
pub const REDACTED: &str = "[upstream]";

/// Replaces upstream addresses in text; built once from `OLLAMA_URL`.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    /// The configured host, lower-case, when it is a name (IP addresses are found anyway).
    host: Option<String>,
    /// Whether the bare host (without a port) is scrubbed too: names with a dot are.
    bare_host: bool,
}

impl Scrubber {
    /// A scrubber for the upstream at `base`.
    pub fn new(base: &reqwest::Url) -> Self {
        // IP addresses (`127.0.0.1`, `[::1]`) are found by their shape; names are listed.
        let host = base
            .host_str()
            .filter(|h| !h.starts_with('[') && h.parse::<std::net::IpAddr>().is_err())
            .filter(|h| !h.eq_ignore_ascii_case("localhost"))
            .map(str::to_ascii_lowercase);
        Self {
            bare_host: host.as_ref().is_some_and(|h| h.contains('.')),
            host,
        }
    }

    /// `text` without upstream addresses (borrowed when there were none).
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if !text.is_char_boundary(i) {
                i += 1;
                continue;
            }
            let at_boundary = i == 0 || !is_host_byte(bytes[i - 1]);
            let matched = if at_boundary {
                self.address_at(text, i)
            } else {
                None
            };
            match matched {
                Some(end) => {
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(&text[copied..i]);
                    out.push_str(REDACTED);
                    copied = end;
                    i = end;
                }
                None => i += 1,
            }
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut out) => {
                out.push_str(&text[copied..]);
                Cow::Owned(out)
            }
        }
    }

    /// The scrubbed text of `bytes` (an NDJSON chunk), or `None` when there was nothing to
    /// replace (or the bytes are not UTF-8).
    pub fn scrub_bytes(&self, bytes: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(bytes).ok()?;
        match self.scrub(text) {
            Cow::Borrowed(_) => None,
            Cow::Owned(text) => Some(text),
        }
    }

    /// The end of an address starting at byte `i` of `text`, if one does.
    fn address_at(&self, text: &str, i: usize) -> Option<usize> {
        let rest = &text[i..];
        let bytes = rest.as_bytes();
        if let Some(end) = url_len(bytes) {
            return Some(i + end);
        }
        if let Some(end) = ipv4_len(bytes).or_else(|| ipv6_len(bytes)) {
            return Some(i + end + port_len(&bytes[end..]));
        }
        for name in ["localhost"].into_iter().chain(self.host.as_deref()) {
            if starts_with_ignore_case(bytes, name) && ends_token(&bytes[name.len()..]) {
                let port = port_len(&bytes[name.len()..]);
                let bare_ok = name == "localhost" || self.bare_host || after_lookup(text, i);
                if port > 0 || bare_ok {
                    return Some(i + name.len() + port);
                }
            }
        }
        None
    }
}

/// Bytes that continue a host name or an address.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// Whether a host token ends here (a final `.` ends a sentence, not the name).
fn ends_token(rest: &[u8]) -> bool {
    match rest {
        [] => true,
        [b'.', next, ..] => !is_host_byte(*next),
        [b'.'] => true,
        [b, ..] => !is_host_byte(*b),
    }
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &str) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Go's resolver error: `lookup ollama on 127.0.0.11:53: no such host`.
fn after_lookup(text: &str, i: usize) -> bool {
    text[..i].ends_with("lookup ")
}

/// `http://...` or `https://...` up to a delimiter.
fn url_len(bytes: &[u8]) -> Option<usize> {
    let scheme = if starts_with_ignore_case(bytes, "http://") {
        7
    } else if starts_with_ignore_case(bytes, "https://") {
        8
    } else {
        return None;
    };
    let tail = bytes[scheme..]
        .iter()
        .position(|b| {
            b.is_ascii_whitespace()
                || matches!(b, b'"' | b'\'' | b'\\' | b'<' | b'>' | b'`' | b'(' | b')')
        })
        .unwrap_or(bytes.len() - scheme);
    Some(scheme + tail)
}

/// Four dot-separated groups of 1-3 digits, not followed by more of a name.
fn ipv4_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    for group in 0..4 {
        let digits = bytes[i..]
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=3).contains(&digits) {
            return None;
        }
        i += digits;
        if group < 3 {
            if bytes.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    ends_token(&bytes[i..]).then_some(i)
}

/// `[` hex digits, colons and dots `]`, with at least one colon.
fn ipv6_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'[') {
        return None;
    }
    let inner = bytes[1..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        .count();
    let closed = bytes.get(1 + inner) == Some(&b']');
    let has_colon = bytes[1..1 + inner].contains(&b':');
    (closed && has_colon && inner > 1).then_some(inner + 2)
}

/// `:` and 1-5 digits, if that is what follows.
fn port_len(bytes: &[u8]) -> usize {
    if bytes.first() != Some(&b':') {
        return 0;
    }
    let digits = bytes[1..]
        .iter()
        .take(6)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if (1..=5).contains(&digits) {
        1 + digits
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(base: &str) -> Scrubber {
        Scrubber::new(&reqwest::Url::parse(base).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn go_dial_errors_and_urls_lose_their_addresses() {
        let s = scrubber("http://127.0.0.1:11434");
        assert_eq!(
            s.scrub("dial tcp 127.0.0.1:11434: connect: connection refused"),
            "dial tcp [upstream]: connect: connection refused"
        );
        assert_eq!(
            s.scrub(r#"do load request: Post "http://127.0.0.1:39145/load": EOF"#),
            r#"do load request: Post "[upstream]": EOF"#
        );
        assert_eq!(
            s.scrub("dial tcp [::1]:11434: connect: refused"),
            "dial tcp [upstream]: connect: refused"
        );
        assert_eq!(
            s.scrub("server localhost:11434 is down"),
            "server [upstream] is down"
        );
        assert_eq!(
            s.scrub("<h1>502</h1> from https://gpu-box.lan:8443/api"),
            "<h1>502</h1> from [upstream]"
        );
    }

    #[test]
    fn the_configured_host_is_scrubbed_ordinary_text_is_not() {
        let s = scrubber("http://ollama:11434");
        assert_eq!(
            s.scrub("cannot reach ollama:11434"),
            "cannot reach [upstream]"
        );
        assert_eq!(
            s.scrub("dial tcp: lookup ollama on 127.0.0.11:53: no such host"),
            "dial tcp: lookup [upstream] on [upstream]: no such host"
        );
        assert_eq!(
            s.scrub("the ollama runner stopped"),
            "the ollama runner stopped"
        );
        let s = scrubber("http://gpu-box.example.lan:11434/prefix");
        assert_eq!(
            s.scrub("gpu-box.example.lan is down."),
            "[upstream] is down."
        );
        for kept in [
            "model 'llama3.2:latest' not found",
            "version 0.12.3 of llama3.2",
            "sha256:abc 1.2.3",
            "an error was encountered while running the model",
        ] {
            assert!(matches!(s.scrub(kept), Cow::Borrowed(_)), "{kept}");
        }
    }
}
