//! Recorded Ollama bodies, read once at start so no request touches the disk.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use serde_json::Value;

/// Chat fixtures every start needs (`fixtures/chat/<name>.ndjson`).
const CHAT_FIXTURES: [&str; 5] = ["text", "tool_calls", "json", "length", "thinking"];
/// Generate fixtures every start needs (`fixtures/generate/<name>.ndjson`).
const GENERATE_FIXTURES: [&str; 4] = ["text", "json", "length", "thinking"];

/// All fixtures, parsed.
#[derive(Debug)]
pub struct Fixtures {
    /// `tags.json`, the `/api/tags` body.
    pub(crate) tags: Value,
    /// `show/<base>.json` keyed by model base name (`llama3.2`).
    pub(crate) shows: HashMap<String, Value>,
    /// `chat/<name>.ndjson`, one JSON value per line.
    pub(crate) chat: HashMap<String, Vec<Value>>,
    /// `generate/<name>.ndjson`.
    pub(crate) generate: HashMap<String, Vec<Value>>,
    /// When set, the only models this fake has (full names): one of several Ollama servers.
    pub(crate) only: Option<std::collections::HashSet<String>>,
}

impl Fixtures {
    /// Read and check every fixture under `dir`.
    ///
    /// # Errors
    /// A missing required file, or a file that is not valid JSON / NDJSON.
    pub fn load(dir: &Path) -> io::Result<Self> {
        let tags = read_json(&dir.join("tags.json"))?;
        if !tags.get("models").is_some_and(Value::is_array) {
            return Err(invalid(&dir.join("tags.json"), "has no \"models\" array"));
        }
        let shows = read_dir_with(&dir.join("show"), "json", read_json)?;
        let chat = read_dir_with(&dir.join("chat"), "ndjson", read_ndjson)?;
        let generate = read_dir_with(&dir.join("generate"), "ndjson", read_ndjson)?;
        for (kind, map, names) in [
            ("chat", &chat, &CHAT_FIXTURES[..]),
            ("generate", &generate, &GENERATE_FIXTURES[..]),
        ] {
            for name in names {
                if map.get(*name).is_none_or(|lines| lines.is_empty()) {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "fixture {kind}/{name}.ndjson is missing or empty in {}",
                            dir.display()
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            tags,
            shows,
            chat,
            generate,
            only: None,
        })
    }

    /// Keep only `models` (names as a client writes them): `/api/tags` lists just those, and
    /// every other model is unknown.
    pub(crate) fn restrict(&mut self, models: &[String]) {
        let only: std::collections::HashSet<String> =
            models.iter().map(|m| crate::models::full_name(m)).collect();
        if let Some(entries) = self.tags.get_mut("models").and_then(Value::as_array_mut) {
            entries.retain(|e| {
                e.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| only.contains(n))
            });
        }
        self.only = Some(only);
    }

    /// The entries of `tags.json`.
    pub(crate) fn tag_entries(&self) -> &[Value] {
        self.tags
            .get("models")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The `tags.json` entry whose `name` is `full_name` (`llama3.2:latest`).
    pub(crate) fn tag_entry(&self, full_name: &str) -> Option<&Value> {
        self.tag_entries()
            .iter()
            .find(|m| m.get("name").and_then(Value::as_str) == Some(full_name))
    }

    /// Lines of `chat/<name>.ndjson`; `load` guarantees the required names exist.
    pub(crate) fn chat_lines(&self, name: &str) -> &[Value] {
        self.chat.get(name).map_or(&[], Vec::as_slice)
    }

    /// Lines of `generate/<name>.ndjson`.
    pub(crate) fn generate_lines(&self, name: &str) -> &[Value] {
        self.generate.get(name).map_or(&[], Vec::as_slice)
    }
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fixture {}: {what}", path.display()),
    )
}

fn read_text(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("fixture {}: {e}", path.display())))
}

fn read_json(path: &Path) -> io::Result<Value> {
    serde_json::from_str(&read_text(path)?).map_err(|e| invalid(path, e))
}

fn read_ndjson(path: &Path) -> io::Result<Vec<Value>> {
    read_text(path)?
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| invalid(path, format!("line {}: {e}", n + 1)))
        })
        .collect()
}

/// Every `*.<ext>` file of `dir`, keyed by file stem. A missing directory is empty.
fn read_dir_with<T>(
    dir: &Path,
    ext: &str,
    read: fn(&Path) -> io::Result<T>,
) -> io::Result<HashMap<String, T>> {
    let mut out = HashMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(ext) {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            out.insert(stem.to_owned(), read(&path)?);
        }
    }
    Ok(out)
}
