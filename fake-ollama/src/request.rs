//! Reading request bodies once: the recording middleware parses the body, logs the request
//! and hands the parsed body to the handler, which checks it the way Go's JSON binding would
//! (so error messages look like Ollama's).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::reply::{self, Rejection};
use crate::state::{FakeState, RecordedRequest};

/// Largest body the fake accepts (images and blobs can be big).
const MAX_BODY: usize = 512 * 1024 * 1024;

/// Prefix of the control endpoints, which are neither recorded nor parsed.
pub(crate) const CONTROL_PREFIX: &str = "/_fake/";

/// The request body, read and parsed by [`record`].
#[derive(Clone, Debug)]
pub(crate) struct RequestBody(Arc<BodyInner>);

#[derive(Debug)]
struct BodyInner {
    bytes: Bytes,
    parsed: Parsed,
}

#[derive(Debug)]
enum Parsed {
    Empty,
    Json(Value),
    /// Not JSON; holds a Go-style decoder message.
    Invalid(String),
}

impl RequestBody {
    /// The raw bytes (blob uploads).
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// The body as a JSON object, or the `400` Ollama answers. `go_type` names the Go
    /// request struct in messages (`ChatRequest`).
    pub(crate) fn object(&self, go_type: &'static str) -> Result<Fields<'_>, Rejection> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        match &self.0.parsed {
            Parsed::Empty => Err(Rejection::bad_request("missing request body")),
            Parsed::Invalid(message) => Err(Rejection::bad_request(message.clone())),
            Parsed::Json(Value::Object(map)) => Ok(Fields { map, go_type }),
            Parsed::Json(Value::Null) => Ok(Fields {
                map: &EMPTY,
                go_type,
            }),
            Parsed::Json(other) => Err(Rejection::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type api.{go_type}",
                go_json_type(other)
            ))),
        }
    }
}

/// A JSON object body with typed accessors that fail like Go's decoder.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) map: &'a Map<String, Value>,
    go_type: &'static str,
}

impl<'a> Fields<'a> {
    /// Accessors over a map built in code (the OpenAI-style route).
    pub(crate) fn new(map: &'a Map<String, Value>, go_type: &'static str) -> Self {
        Self { map, go_type }
    }

    /// The value at `key`, treating `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn type_error(&self, key: &str, found: &Value, want: &str) -> Rejection {
        Rejection::bad_request(format!(
            "json: cannot unmarshal {} into Go struct field {}.{key} of type {want}",
            go_json_type(found),
            self.go_type
        ))
    }

    /// A string field; absent and `null` give `""`.
    pub(crate) fn str(&self, key: &str) -> Result<&'a str, Rejection> {
        match self.get(key) {
            None => Ok(""),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.type_error(key, other, "string")),
        }
    }

    /// A bool field.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.type_error(key, other, "bool")),
        }
    }

    /// An array field; absent gives an empty slice.
    pub(crate) fn array(&self, key: &str, go_elem: &str) -> Result<&'a [Value], Rejection> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.type_error(key, other, &format!("[]{go_elem}"))),
        }
    }

    /// An object field.
    pub(crate) fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.type_error(key, other, "map[string]interface {}")),
        }
    }

    /// An integer field. Go names a number that does not fit an int by its text
    /// (`number 1.5`); serde_json's rendering of it stands in for the literal.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, Rejection> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                Rejection::bad_request(format!(
                    "json: cannot unmarshal number {n} into Go struct field {}.{key} of type int",
                    self.go_type
                ))
            }),
            Some(other) => Err(self.type_error(key, other, "int")),
        }
    }

    /// `keep_alive`, which Ollama decodes into its own `Duration`: a string or a number; any
    /// other JSON value is refused in the words of its decoder (Go's `%T` of the value).
    pub(crate) fn keep_alive(&self) -> Result<Option<&'a Value>, Rejection> {
        let go_type = match self.get("keep_alive") {
            None => return Ok(None),
            Some(value @ (Value::String(_) | Value::Number(_))) => return Ok(Some(value)),
            Some(Value::Object(_)) => "map[string]interface {}",
            Some(Value::Array(_)) => "[]interface {}",
            Some(_) => "bool",
        };
        Err(Rejection::bad_request(format!(
            "Unsupported type: '{go_type}'"
        )))
    }

    /// `model`, falling back to the legacy `name`.
    pub(crate) fn model_or_name(&self) -> Result<&'a str, Rejection> {
        let model = self.str("model")?;
        if model.is_empty() {
            self.str("name")
        } else {
            Ok(model)
        }
    }

    /// `stream`, which Ollama defaults to true.
    pub(crate) fn stream(&self) -> Result<bool, Rejection> {
        Ok(self.bool("stream")?.unwrap_or(true))
    }
}

/// Go's name for a JSON value's type, as its decoder errors say it.
fn go_json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A Go `encoding/json`-like message for a body serde_json could not parse.
fn go_syntax_message(bytes: &[u8], err: &serde_json::Error) -> String {
    if err.is_eof() {
        return "unexpected EOF".to_owned();
    }
    // serde_json reports 1-based line and column; find the offending byte.
    let offset = bytes
        .split(|b| *b == b'\n')
        .take(err.line().saturating_sub(1))
        .map(|line| line.len() + 1)
        .sum::<usize>()
        + err.column().saturating_sub(1);
    // Right after `{` Go's decoder expects a key, elsewhere a value.
    let expected = match bytes[..offset.min(bytes.len())]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
    {
        Some(b'{') => "object key string",
        _ => "value",
    };
    match bytes.get(offset) {
        Some(&b) if b.is_ascii_graphic() => {
            format!(
                "invalid character '{}' looking for beginning of {expected}",
                b as char
            )
        }
        Some(&b) => format!(
            "invalid character {:?} looking for beginning of {expected}",
            b as char
        ),
        None => "unexpected EOF".to_owned(),
    }
}

fn parse(bytes: &Bytes) -> Parsed {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Empty;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => Parsed::Json(value),
        Err(err) => Parsed::Invalid(go_syntax_message(bytes, &err)),
    }
}

/// Middleware: read the body, record the request, pass the parsed body on as an extension.
/// Control endpoints pass through untouched.
pub(crate) async fn record(
    State(state): State<FakeState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with(CONTROL_PREFIX) {
        return next.run(request).await;
    }
    state.while_hung().await;
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => return reply::error(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let parsed = parse(&bytes);
    let recorded_body = match &parsed {
        Parsed::Empty => Value::Null,
        Parsed::Json(value) => value.clone(),
        Parsed::Invalid(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    };
    state.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: recorded_body,
    });
    parts.extensions.insert(RequestBody(Arc::new(BodyInner {
        bytes: bytes.clone(),
        parsed,
    })));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> String {
        match parse(&Bytes::copy_from_slice(text.as_bytes())) {
            Parsed::Invalid(m) => m,
            other => format!("parsed: {other:?}"),
        }
    }

    #[test]
    fn go_like_messages() {
        assert_eq!(
            message("xyz"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(message("{\"model\":"), "unexpected EOF");
        assert_eq!(
            message("{bad json"),
            "invalid character 'b' looking for beginning of object key string"
        );
        assert_eq!(
            message("{\n \"a\": ]"),
            "invalid character ']' looking for beginning of value"
        );
    }
}
