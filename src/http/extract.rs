//! Request extractors that answer bad input in the gateway's own error shapes.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{GatewayError, Surface};

/// A JSON body. Unlike `axum::Json` it does not insist on a `Content-Type` (curl's `-d` sends
/// a form type, Ollama accepts it too), reports the path of a wrong field (`messages[0].role`),
/// and renders refusals in the shape of the route's surface.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Why a body was refused, with the surface to answer in.
#[derive(Debug)]
pub struct BodyRejection(GatewayError, Surface);

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        self.0.render(self.1)
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let surface = Surface::for_path(req.uri().path());
        let bytes = read_body(req, state)
            .await
            .map_err(|err| BodyRejection(err, surface))?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(|err| BodyRejection(err, surface))
    }
}

/// Read the whole body: over the body limit is a 413, too slow (see
/// [`TimedBody`](crate::gate::limits::TimedBody)) a 408.
pub async fn read_body<S: Send + Sync>(req: Request, _state: &S) -> Result<Bytes, GatewayError> {
    let limit = req
        .extensions()
        .get::<crate::gate::limits::BodyLimit>()
        .map(|l| l.0);
    match http_body_util::BodyExt::collect(req.into_body()).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
            while let Some(cause) = source {
                if cause.is::<http_body_util::LengthLimitError>() {
                    return Err(GatewayError::BodyTooLarge {
                        limit: limit.unwrap_or_default(),
                    });
                }
                if cause.is::<crate::gate::limits::BodyTimedOut>() {
                    return Err(GatewayError::BodyTimeout);
                }
                source = cause.source();
            }
            Err(GatewayError::invalid(
                "body",
                format!("could not read the request body: {err}"),
            ))
        }
    }
}

/// Parse JSON, naming the field at fault when the shape is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::InvalidRequest {
            message: "request body is empty; expected a JSON object".into(),
            param: None,
        });
    }
    // The fast path; only a refused body is parsed again to find the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            GatewayError::InvalidRequest {
                message: format!("request body is not valid JSON: {inner}"),
                param: None,
            }
        } else if let Some(expected) = untagged_expectation(&inner.to_string()) {
            GatewayError::invalid(path.clone(), format!("{path}: must be {expected}"))
        } else if path == "." {
            GatewayError::InvalidRequest {
                message: format!("invalid request body: {inner}"),
                param: None,
            }
        } else {
            GatewayError::invalid(path.clone(), format!("{path}: {inner}"))
        }
    })
}

/// serde's message for a value that fits no variant of an untagged enum names the Rust type;
/// say what the field accepts instead.
fn untagged_expectation(message: &str) -> Option<&'static str> {
    let type_name = message
        .strip_prefix("data did not match any variant of untagged enum ")?
        .split_whitespace()
        .next()?;
    Some(match type_name {
        "MessageContent" => "a string or an array of content parts",
        "StopSequences" => "a string or an array of strings",
        "EmbeddingInput" => {
            "a string or an array of strings (token arrays are not supported by Ollama)"
        }
        "Prompt" => "a string or an array with one string",
        "ImageUrl" => "an object with a url, or the URL itself",
        "ToolChoice" => {
            "\"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}"
        }
        _ => "of another type",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::types::ChatCompletionRequest;

    fn refusal(body: &str) -> (Option<String>, String) {
        match parse_json::<ChatCompletionRequest>(body.as_bytes()) {
            Err(GatewayError::InvalidRequest { message, param }) => (param, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn wrong_types_name_their_path() {
        let (param, message) =
            refusal(r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#);
        assert_eq!(param.as_deref(), Some("messages[0].role"));
        assert!(message.contains("robot"), "{message}");
        let (param, _) = refusal(r#"{"model":"m","messages":[],"max_tokens":"ten"}"#);
        assert_eq!(param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn untagged_fields_say_what_they_accept() {
        let (param, message) = refusal(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#);
        assert_eq!(param.as_deref(), Some("messages[0].content"));
        assert!(
            message.contains("a string or an array of content parts"),
            "{message}"
        );
        assert!(!message.contains("untagged"), "{message}");
    }

    #[test]
    fn missing_fields_and_bad_json_are_explained() {
        let (_, message) = refusal(r#"{"messages":[]}"#);
        assert!(message.contains("missing field `model`"), "{message}");
        let (_, message) = refusal(r#"{"model":"#);
        assert!(message.contains("not valid JSON"), "{message}");
        let (_, message) = refusal("  ");
        assert!(message.contains("empty"), "{message}");
    }
}
