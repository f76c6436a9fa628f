//! Model management endpoints, answered like Ollama but without touching any store:
//! `/api/pull`, `/api/push`, `/api/create`, `/api/delete`, `/api/copy`, `/api/blobs/:digest`.
//! Only uploaded blob digests are remembered (until `reset`).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::models;
use crate::reply::{self, Rejection};
use crate::request::RequestBody;
use crate::scenario::ndjson_line;
use crate::state::FakeState;

/// Pulls of models whose name starts with this fail like a missing registry manifest.
const MISSING_PREFIX: &str = "nonexistent";
const MISSING_MANIFEST: &str = "pull model manifest: file does not exist";

/// Status lines streamed, or only the last one when `stream` is false.
fn progress(lines: &[Value], stream: bool) -> Response {
    if stream {
        let chunks: Vec<Result<Bytes, Infallible>> =
            lines.iter().map(|line| Ok(ndjson_line(line))).collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        return reply::with_type(StatusCode::OK, reply::NDJSON, body);
    }
    match lines.last() {
        Some(last) if last.get("error").is_some() => {
            reply::json(StatusCode::INTERNAL_SERVER_ERROR, last)
        }
        Some(last) => reply::ok(last),
        None => reply::ok(&json!({ "status": "success" })),
    }
}

/// The digest of a known model (from `tags.json`), or one derived from its name.
fn model_digest(state: &FakeState, full: &str) -> String {
    state
        .fixtures()
        .tag_entry(full)
        .and_then(|e| e["digest"].as_str())
        .map_or_else(|| hex(&Sha256::digest(full.as_bytes())), str::to_owned)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn layer_line(verb: &str, digest: &str, total: u64, completed: u64) -> Value {
    json!({
        "status": format!("{verb} {}", &digest[..digest.len().min(12)]),
        "digest": format!("sha256:{digest}"),
        "total": total,
        "completed": completed,
    })
}

/// `POST /api/pull`.
pub(crate) async fn pull(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("PullRequest")?;
    let name = fields.model_or_name()?;
    if name.is_empty() {
        return Err(Rejection::model_required());
    }
    let stream = fields.stream()?;
    let mut lines = vec![json!({ "status": "pulling manifest" })];
    if name.starts_with(MISSING_PREFIX) {
        lines.push(json!({ "error": MISSING_MANIFEST }));
        return Ok(progress(&lines, stream));
    }
    let digest = model_digest(&state, &models::full_name(name));
    let total = 2_019_377_376;
    lines.extend([
        layer_line("pulling", &digest, total, 0),
        layer_line("pulling", &digest, total, total / 2),
        layer_line("pulling", &digest, total, total),
        layer_line(
            "pulling",
            "966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396",
            1429,
            1429,
        ),
        json!({ "status": "verifying sha256 digest" }),
        json!({ "status": "writing manifest" }),
        json!({ "status": "success" }),
    ]);
    Ok(progress(&lines, stream))
}

/// `POST /api/push`.
pub(crate) async fn push(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("PushRequest")?;
    let name = fields.model_or_name()?;
    if name.is_empty() {
        return Err(Rejection::model_required());
    }
    let stream = fields.stream()?;
    let full = models::full_name(name);
    if models::lookup(state.fixtures(), name).is_none() {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model '{full}' not found"),
        ));
    }
    let digest = model_digest(&state, &full);
    let total = 2_019_377_376;
    let lines = vec![
        json!({ "status": "retrieving manifest" }),
        layer_line("pushing", &digest, total, 0),
        layer_line("pushing", &digest, total, total),
        json!({ "status": "pushing manifest" }),
        json!({ "status": "success" }),
    ];
    Ok(progress(&lines, stream))
}

/// `POST /api/create`.
pub(crate) async fn create(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("CreateRequest")?;
    let name = fields.model_or_name()?;
    if name.is_empty() {
        return Err(Rejection::model_required());
    }
    let stream = fields.stream()?;
    let from = fields.str("from")?;
    if from.is_empty() && fields.get("files").is_none() {
        return Err(Rejection::bad_request(
            "neither 'from' or 'files' was specified",
        ));
    }
    let mut lines = vec![json!({ "status": "gathering model components" })];
    if !from.is_empty() {
        let digest = model_digest(&state, &models::full_name(from));
        lines.push(json!({ "status": format!("using existing layer sha256:{digest}") }));
    }
    if fields.get("system").is_some() {
        lines.push(json!({ "status": "creating new layer sha256:6e4c38e1172f42fdbff13edf9a7a017679fb82b0fde415a3e8b3c31c6ed4a4e4" }));
    }
    lines.extend([
        json!({ "status": "writing manifest" }),
        json!({ "status": "success" }),
    ]);
    Ok(progress(&lines, stream))
}

/// `DELETE /api/delete`: `200` with no body for a known model.
pub(crate) async fn delete(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("DeleteRequest")?;
    let name = fields.model_or_name()?;
    if name.is_empty() {
        return Err(Rejection::model_required());
    }
    if models::lookup(state.fixtures(), name).is_none() {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model '{name}' not found"),
        ));
    }
    Ok(reply::empty(StatusCode::OK))
}

/// `POST /api/copy`: `200` with no body when the source exists.
pub(crate) async fn copy(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("CopyRequest")?;
    let source = fields.str("source")?;
    let destination = fields.str("destination")?;
    if source.is_empty() || destination.is_empty() {
        return Err(Rejection::bad_request(
            "source and destination are required",
        ));
    }
    if models::lookup(state.fixtures(), source).is_none() {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model {source:?} not found"),
        ));
    }
    Ok(reply::empty(StatusCode::OK))
}

/// `sha256:<64 hex>` (Ollama also accepts `sha256-`), normalised to the colon form.
fn parse_digest(digest: &str) -> Result<String, Rejection> {
    let hex_part = digest
        .strip_prefix("sha256:")
        .or_else(|| digest.strip_prefix("sha256-"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| Rejection::bad_request("invalid digest format"))?;
    Ok(format!("sha256:{}", hex_part.to_ascii_lowercase()))
}

fn blob_exists(state: &FakeState, digest: &str) -> bool {
    state.0.blobs.lock().contains(digest)
        || state
            .fixtures()
            .tag_entries()
            .iter()
            .filter_map(|e| e["digest"].as_str())
            .any(|d| digest.strip_prefix("sha256:") == Some(d))
}

/// `HEAD /api/blobs/:digest`: `200` for a known blob, `404` otherwise.
pub(crate) async fn head_blob(
    State(state): State<FakeState>,
    Path(digest): Path<String>,
) -> Result<Response, Rejection> {
    let digest = parse_digest(&digest)?;
    if blob_exists(&state, &digest) {
        Ok(reply::empty(StatusCode::OK))
    } else {
        Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("blob {digest:?} not found"),
        ))
    }
}

/// `POST /api/blobs/:digest`: `201` after checking the body's SHA-256, `200` if known.
pub(crate) async fn post_blob(
    State(state): State<FakeState>,
    Path(digest): Path<String>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let digest = parse_digest(&digest)?;
    if blob_exists(&state, &digest) {
        return Ok(reply::empty(StatusCode::OK));
    }
    let actual = format!("sha256:{}", hex(&Sha256::digest(body.bytes())));
    if actual != digest {
        return Err(Rejection::bad_request(format!(
            "digest mismatch, expected {digest:?}, got {actual:?}"
        )));
    }
    state.0.blobs.lock().insert(digest);
    Ok(reply::empty(StatusCode::CREATED))
}
