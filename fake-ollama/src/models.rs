//! Model names and what each known model does.

use crate::fixtures::Fixtures;

/// How a model behaves on chat / generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Plain text model (`llama3.2`, the `hf.co/...` model, any other model in `tags.json`).
    Text {
        /// Answers `tools` requests with tool calls.
        tools: bool,
    },
    /// Thinking model (`qwen3`).
    Thinking,
    /// Vision model (`llava`): text answers, no tools.
    Vision,
    /// Embedding-only model (`all-minilm`): chat and generate are refused.
    Embedding,
    /// Synthetic token stream for benchmarks (`bench`).
    Bench,
    /// A failure scenario (`fail-*`).
    Fail(Failure),
}

/// The failure scenarios, selected by model name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `fail-midstream`: two lines, then an `{"error":...}` line.
    Midstream,
    /// `fail-cut`: two lines, then EOF without `done`.
    Cut,
    /// `fail-corrupt`: one line, then a malformed line.
    Corrupt,
    /// `fail-slow`: nothing at all for [`SLOW_DELAY`], then a normal stream.
    Slow,
    /// `fail-stall`: head and one line, then a [`SLOW_DELAY`] pause.
    Stall,
    /// `fail-500`: 500 runner error before any byte.
    Status500,
    /// `fail-busy`: 503 server busy before any byte.
    Busy,
    /// `fail-leak`: 500 whose `{"error"}` names the fake's own address (a Go dial error).
    LeakAddress,
    /// `fail-html`: 502 HTML page from "a proxy", naming the fake's address.
    HtmlPage,
    /// `fail-redirect`: 302 to another URL on the fake.
    Redirect,
    /// `fail-midleak`: two lines, then an `{"error"}` line naming a runner's URL.
    MidstreamLeak,
}

/// How long `fail-slow` and `fail-stall` keep the client waiting.
pub(crate) const SLOW_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

/// The runner error of `fail-midleak`: Ollama's runners are local HTTP servers.
pub(crate) const RUNNER_LEAK: &str = "an error was encountered while running the model: Post \"http://127.0.0.1:39145/completion\": EOF";

/// The message Ollama sends when the runner fails during generation.
pub(crate) const RUNNER_ERROR: &str = "an error was encountered while running the model";

impl Kind {
    /// Capabilities as `/api/show` reports them.
    pub(crate) fn capabilities(self) -> &'static [&'static str] {
        match self {
            Kind::Text { tools: true } => &["completion", "tools"],
            Kind::Text { tools: false } | Kind::Bench | Kind::Fail(_) => &["completion"],
            Kind::Thinking => &["completion", "tools", "thinking"],
            Kind::Vision => &["completion", "vision"],
            Kind::Embedding => &["embedding"],
        }
    }

    pub(crate) fn supports_tools(self) -> bool {
        self.capabilities().contains(&"tools")
    }

    pub(crate) fn supports_thinking(self) -> bool {
        self.capabilities().contains(&"thinking")
    }
}

/// `name` with `:latest` appended when it has no tag. The tag is looked for only in the
/// last path segment, so `host:5000/ns/model` still gets `:latest`.
pub(crate) fn full_name(name: &str) -> String {
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if last_segment.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// `name` without its tag (`llama3.2:latest` -> `llama3.2`).
pub(crate) fn base_name(name: &str) -> &str {
    let segment_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[segment_start..].rfind(':') {
        Some(i) => &name[..segment_start + i],
        None => name,
    }
}

/// What the model named `name` (as a client wrote it) is, or `None` if the fake does not
/// know it. `x` and `x:latest` are the same model.
pub(crate) fn lookup(fixtures: &Fixtures, name: &str) -> Option<Kind> {
    let full = full_name(name);
    if fixtures
        .only
        .as_ref()
        .is_some_and(|only| !only.contains(&full))
    {
        return None;
    }
    if let Some(failure) = failure_for(&full) {
        return Some(Kind::Fail(failure));
    }
    let kind = match full.as_str() {
        "llama3.2:latest" | "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M" => {
            Kind::Text { tools: true }
        }
        "qwen3:latest" => Kind::Thinking,
        "llava:latest" => Kind::Vision,
        "all-minilm:latest" => Kind::Embedding,
        "bench:latest" => Kind::Bench,
        // Made from a local file: its show's `parent_model` is that file's path.
        "local-blob:latest" => Kind::Text { tools: false },
        _ if fixtures.tag_entry(&full).is_some() => Kind::Text { tools: false },
        _ => return None,
    };
    Some(kind)
}

fn failure_for(full: &str) -> Option<Failure> {
    Some(match full {
        "fail-midstream:latest" => Failure::Midstream,
        "fail-cut:latest" => Failure::Cut,
        "fail-corrupt:latest" => Failure::Corrupt,
        "fail-slow:latest" => Failure::Slow,
        "fail-stall:latest" => Failure::Stall,
        "fail-500:latest" => Failure::Status500,
        "fail-busy:latest" => Failure::Busy,
        "fail-leak:latest" => Failure::LeakAddress,
        "fail-html:latest" => Failure::HtmlPage,
        "fail-redirect:latest" => Failure::Redirect,
        "fail-midleak:latest" => Failure::MidstreamLeak,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(full_name("llama3.2"), "llama3.2:latest");
        assert_eq!(full_name("llama3.2:latest"), "llama3.2:latest");
        assert_eq!(
            full_name("localhost:5000/ns/m"),
            "localhost:5000/ns/m:latest"
        );
        assert_eq!(
            full_name("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"
        );
        assert_eq!(base_name("llama3.2:latest"), "llama3.2");
        assert_eq!(base_name("llama3.2"), "llama3.2");
        assert_eq!(base_name("localhost:5000/ns/m"), "localhost:5000/ns/m");
        assert_eq!(base_name("localhost:5000/ns/m:v1"), "localhost:5000/ns/m");
    }
}
