//! Which models a caller may use: `*` patterns, with Ollama's implicit `:latest` tag.

/// A list of model patterns. An empty list allows everything.
#[derive(Clone, Debug, Default)]
pub struct ModelAllowlist {
    patterns: Vec<String>,
}

impl ModelAllowlist {
    /// Build from patterns such as `llama3.2`, `qwen3:*`, `hf.co/bartowski/*`.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            patterns: patterns
                .into_iter()
                .map(|p| p.as_ref().trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    /// Whether the list restricts anything.
    pub fn is_open(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `model` is allowed. `llama3.2` and `llama3.2:latest` are the same model.
    pub fn allows(&self, model: &str) -> bool {
        if self.is_open() {
            return true;
        }
        let model = with_tag(model.trim());
        self.patterns.iter().any(|pattern| {
            glob_match(pattern, &model)
                || (!has_tag(pattern) && glob_match(&format!("{pattern}:latest"), &model))
        })
    }
}

/// Whether a name carries a `:tag` (a colon after the last `/`).
fn has_tag(name: &str) -> bool {
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    last_segment.contains(':')
}

/// The name with Ollama's default tag made explicit.
fn with_tag(name: &str) -> String {
    if has_tag(name) {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = parts.split_first().map_or(("", &[][..]), |(f, r)| (*f, r));
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = rest.split_last().map_or(("", &[][..]), |(l, m)| (*l, m));
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_match_their_latest_tag() {
        let list = ModelAllowlist::new(["llama3.2"]);
        assert!(list.allows("llama3.2"));
        assert!(list.allows("llama3.2:latest"));
        assert!(!list.allows("llama3.2:1b"));
        assert!(!list.allows("llama3.21"));
        let tagged = ModelAllowlist::new(["llama3.2:latest"]);
        assert!(tagged.allows("llama3.2"));
    }

    #[test]
    fn wildcards() {
        let list = ModelAllowlist::new(["qwen3*", "hf.co/bartowski/*", "*-embed:*"]);
        assert!(list.allows("qwen3:8b"));
        assert!(list.allows("qwen3"));
        assert!(list.allows("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"));
        assert!(list.allows("nomic-embed:v1"));
        assert!(!list.allows("llama3.2"));
        assert!(!list.allows("hf.co/other/x:Q4"));
    }

    #[test]
    fn empty_list_allows_everything() {
        assert!(ModelAllowlist::new(Vec::<String>::new()).allows("anything"));
        assert!(ModelAllowlist::new([" ", ""]).is_open());
    }
}
