//! Which backends there are: `OLLAMA_URL` (one URL, or several separated by commas) or the
//! `[[backends]]` tables of the `GATEWAY_CONFIG` file, which also name them and set their weight,
//! `max_concurrent` and a fixed model list.
//!
//! With `[[backends]]` in the file, `OLLAMA_URL` is not used (the start-up log says so when it
//! was set to something else than its default).

use std::path::Path;

use serde::Deserialize;

use crate::config::Config;

/// One backend as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Its name in logs, metrics, the audit line and `x-gateway-backend`.
    pub name: String,
    /// Its base URL (`http://`, no trailing slash).
    pub url: String,
    /// Its share of the traffic among equally good choices (at least 1).
    pub weight: u32,
    /// Requests it is sent at once at most (its `OLLAMA_NUM_PARALLEL`); 0 = no limit.
    pub max_concurrent: u32,
    /// The only models it is sent, instead of what it lists (`/api/tags`).
    pub models: Option<Vec<String>>,
}

/// The `[[backends]]` part of the file; the rest (keys, other sections) is read elsewhere.
#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    backends: Vec<Entry>,
}

/// One `[[backends]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    url: String,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    max_concurrent: u32,
    models: Option<Vec<String>>,
}

/// `OLLAMA_URL`'s default.
const DEFAULT_URL: &str = "http://127.0.0.1:11434";

fn one() -> u32 {
    1
}

/// The backends `config` names, in order; at least one.
pub fn backends(config: &Config) -> Result<Vec<BackendSpec>, String> {
    if let Some(path) = &config.config_file {
        let from_file = from_file(path)?;
        if !from_file.is_empty() {
            // Against the literal default: `Config::defaults()` reads the environment too.
            if config.ollama_url != DEFAULT_URL {
                tracing::warn!("GATEWAY_CONFIG has [[backends]]: OLLAMA_URL is not used");
            }
            return Ok(from_file);
        }
    }
    Ok(from_urls(&config.ollama_url))
}

/// `OLLAMA_URL`'s URLs (already checked by the config parser), named `backend-1`, `backend-2`,
/// ... in the order given.
pub fn from_urls(urls: &str) -> Vec<BackendSpec> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .enumerate()
        .map(|(i, url)| BackendSpec {
            name: format!("backend-{}", i + 1),
            url: url.trim_end_matches('/').to_owned(),
            weight: 1,
            max_concurrent: 0,
            models: None,
        })
        .collect()
}

fn from_file(path: &Path) -> Result<Vec<BackendSpec>, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("GATEWAY_CONFIG: cannot read {name}: {e}"))?;
    parse(&text).map_err(|e| format!("GATEWAY_CONFIG: {name}: {e}"))
}

/// The `[[backends]]` of a TOML text, checked.
pub fn parse(text: &str) -> Result<Vec<BackendSpec>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut specs: Vec<BackendSpec> = Vec::with_capacity(file.backends.len());
    for entry in file.backends {
        let name = entry.name.trim().to_owned();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(format!(
                "backend '{name}': a name is 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        if specs.iter().any(|s| s.name == name) {
            return Err(format!("backend '{name}' is named twice"));
        }
        let url = check_url(&entry.url).map_err(|e| format!("backend '{name}': url {e}"))?;
        if entry.weight == 0 {
            return Err(format!("backend '{name}': weight must be at least 1"));
        }
        let models = entry.models.map(|models| {
            models
                .iter()
                .map(|m| super::select::full_name(m.trim()))
                .collect()
        });
        specs.push(BackendSpec {
            name,
            url,
            weight: entry.weight,
            max_concurrent: entry.max_concurrent,
            models,
        });
    }
    Ok(specs)
}

fn check_url(value: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(value.trim()).map_err(|e| format!("'{value}' is not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("'{value}' must be an http:// URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_numbered_backends() {
        let specs = from_urls("http://a:1,http://b:2");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "backend-1");
        assert_eq!(specs[1].url, "http://b:2");
        assert_eq!(specs[1].max_concurrent, 0);
    }

    #[test]
    fn backend_tables_are_checked() {
        let specs = parse(
            r#"
            [[keys]]
            name = "alice"
            key = "k"

            [[backends]]
            name = "gpu-1"
            url = "http://10.0.0.5:11434/"
            weight = 2
            max_concurrent = 4
            models = ["llama3.2", "qwen3:8b"]

            [[backends]]
            name = "laptop"
            url = "http://laptop:11434"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].url, "http://10.0.0.5:11434");
        assert_eq!(specs[0].weight, 2);
        assert_eq!(
            specs[0].models.as_deref(),
            Some(&["llama3.2:latest".to_owned(), "qwen3:8b".to_owned()][..])
        );
        assert_eq!(specs[1].weight, 1);
        assert_eq!(specs[1].max_concurrent, 0);

        let twice =
            "[[backends]]\nname='a'\nurl='http://a:1'\n[[backends]]\nname='a'\nurl='http://b:1'\n";
        assert!(parse(twice).is_err_and(|e| e.contains("twice")));
        let https = "[[backends]]\nname='a'\nurl='https://a:1'\n";
        assert!(parse(https).is_err_and(|e| e.contains("http://")));
        let unknown = "[[backends]]\nname='a'\nurl='http://a:1'\nwieght=2\n";
        assert!(parse(unknown).is_err());
        let bad_name = "[[backends]]\nname='a b'\nurl='http://a:1'\n";
        assert!(parse(bad_name).is_err());
        let zero = "[[backends]]\nname='a'\nurl='http://a:1'\nweight=0\n";
        assert!(parse(zero).is_err());
    }
}
