//! Path normalisation, applied before routing, so every decision (auth, refused endpoints) and
//! the path sent upstream see one canonical spelling: percent-decoded, `//` collapsed, `.` and
//! `..` resolved (a trailing slash is kept: `/api/pull/` is not a route, so it is a 404). A path that cannot be decoded, or climbs above the root,
//! is refused.

use percent_encoding::percent_decode_str;

/// Whether `path` is already canonical (the common case), so normalising would change nothing.
pub fn is_canonical(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['%', '\\'])
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
}

/// The canonical form of `path`, or `None` when it is not acceptable.
pub fn normalize(path: &str) -> Option<String> {
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    // `?` and `#` decoded from `%3F`/`%23` would turn part of the path into a query or fragment.
    if decoded.contains(['\0', '\\', '?', '#']) || decoded.contains(|c: char| c.is_control()) {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            other => segments.push(other),
        }
    }
    let trailing = decoded.len() > 1 && decoded.ends_with('/') && !segments.is_empty();
    let mut out = format!("/{}", segments.join("/"));
    if trailing {
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_collapse_to_one_path() {
        assert_eq!(normalize("/api//pull").as_deref(), Some("/api/pull"));
        assert_eq!(normalize("/api/./pull").as_deref(), Some("/api/pull"));
        assert_eq!(normalize("/api/./pull/").as_deref(), Some("/api/pull/"));
        assert_eq!(normalize("/docs/").as_deref(), Some("/docs/"));
        assert_eq!(normalize("/api/tags/../pull").as_deref(), Some("/api/pull"));
        assert_eq!(normalize("/api/%70ull").as_deref(), Some("/api/pull"));
        assert_eq!(normalize("/%2Fapi%2Fpull").as_deref(), Some("/api/pull"));
        assert_eq!(
            normalize("/v1/models/hf.co%2Fuser%2Frepo:Q4").as_deref(),
            Some("/v1/models/hf.co/user/repo:Q4")
        );
        assert_eq!(normalize("/").as_deref(), Some("/"));
    }

    #[test]
    fn canonical_paths_are_recognised_without_normalising() {
        for path in [
            "/",
            "/v1/chat/completions",
            "/v1/models/hf.co/u/r:Q4",
            "/docs/",
        ] {
            assert!(is_canonical(path), "{path}");
            assert_eq!(normalize(path).as_deref(), Some(path));
        }
        for path in [
            "/api//pull",
            "/api/./pull",
            "/api/%70ull",
            "/api/..",
            "/a/.",
            "/api\\x",
        ] {
            assert!(!is_canonical(path), "{path}");
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        assert_eq!(normalize("/../etc/passwd"), None);
        assert_eq!(normalize("/api/%00pull"), None);
        assert_eq!(normalize("/api/%ff"), None);
        assert_eq!(normalize("/api\\pull"), None);
        assert_eq!(normalize("/v1/models/llama3.2%3Fx=1"), None);
        assert_eq!(normalize("/v1/models/llama3.2%23frag"), None);
    }
}
