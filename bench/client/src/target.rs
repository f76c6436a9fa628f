//! Targets (`NAME=URL@KEY`), the HTTP client and the request bodies every probe sends.

use std::time::Duration;

use serde_json::{Value, json};

use crate::args::Args;

/// One system under test.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    /// The full chat completions URL.
    pub url: String,
    pub key: Option<String>,
}

impl Target {
    fn parse(spec: &str) -> Result<Self, String> {
        let (name, rest) = spec
            .split_once('=')
            .ok_or_else(|| format!("target '{spec}' is not NAME=URL[@KEY]"))?;
        let (url, key) = match rest.rsplit_once('@') {
            Some((url, key)) if !key.contains('/') => (url, Some(key.to_owned())),
            _ => (rest, None),
        };
        if !url.starts_with("http://127.0.0.1:") && !url.starts_with("http://localhost:") {
            return Err(format!(
                "target '{name}': only loopback URLs are allowed, got {url}"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            key,
        })
    }

    /// Every `--target` option.
    pub fn all(args: &Args) -> Result<Vec<Self>, String> {
        let targets = args
            .all("target")
            .iter()
            .map(|s| Self::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err("give at least one --target NAME=URL[@KEY]".to_owned());
        }
        Ok(targets)
    }

    /// A POST of `body` to this target, with its key.
    pub fn post(&self, client: &reqwest::Client, body: &Value) -> reqwest::RequestBuilder {
        let request = client.post(&self.url).json(body);
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }
}

/// A keep-alive client with `TCP_NODELAY`, no proxy, and a bound on every request.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("client: {e}"))
}

/// The chat request of every probe: model `bench`, `tokens` tokens, streamed or not.
pub fn chat_body(model: &str, tokens: usize, stream: bool) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": tokens,
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}
