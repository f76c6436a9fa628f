//! Ollama's native read and inference endpoints: `/`, `/api/version`, `/api/tags`,
//! `/api/show`, `/api/ps`, `/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::embed;
use crate::models::{self, Failure, Kind, SLOW_DELAY};
use crate::reply::{self, Rejection};
use crate::request::RequestBody;
use crate::scenario::{self, Answer, Endpoint};
use crate::state::FakeState;
use crate::stream::{StreamGuard, scheduled_body};

/// The version this fake claims to be.
pub(crate) const OLLAMA_VERSION: &str = "0.12.3";

/// `GET /`: Ollama's health answer.
pub(crate) async fn root() -> Response {
    reply::with_type(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        "Ollama is running".into(),
    )
}

/// `GET /api/version`.
pub(crate) async fn version() -> Response {
    reply::ok(&json!({ "version": OLLAMA_VERSION }))
}

/// `GET /api/tags`: `fixtures/tags.json`, or no models with `empty_tags`.
pub(crate) async fn tags(State(state): State<FakeState>) -> Response {
    if state.config().empty_tags {
        return reply::ok(&json!({ "models": [] }));
    }
    reply::ok(&state.fixtures().tags)
}

/// `GET /api/ps`: `llama3.2` (or the configured `loaded` models) loaded for five more minutes.
pub(crate) async fn ps(State(state): State<FakeState>) -> Response {
    let fixtures = state.fixtures();
    let entries: Vec<&Value> = match &state.config().loaded {
        Some(loaded) => loaded
            .iter()
            .filter_map(|m| fixtures.tag_entry(&models::full_name(m)))
            .collect(),
        None => fixtures
            .tag_entry("llama3.2:latest")
            .or_else(|| fixtures.tag_entries().first())
            .into_iter()
            .collect(),
    };
    let models: Vec<Value> = entries
        .into_iter()
        .filter(|_| !state.config().empty_tags)
        .map(|entry| {
            let expires = chrono::Utc::now() + chrono::Duration::minutes(5);
            let mut running = json!({
                "name": entry["name"],
                "model": entry["model"],
                "size": entry["size"],
                "digest": entry["digest"],
                "details": entry["details"],
                "expires_at": reply::rfc3339_nano(expires),
                "size_vram": entry["size"],
                "context_length": 4096,
            });
            if running["name"].is_null() {
                running["name"] = json!("llama3.2:latest");
            }
            running
        })
        .collect();
    reply::ok(&json!({ "models": models }))
}

/// The answer of a failure that names the fake's address (`fail-leak`, `fail-html`,
/// `fail-redirect`), if the request's `model` is one.
fn address_failure(state: &FakeState, headers: &HeaderMap, model: &str) -> Option<Response> {
    let Some(Kind::Fail(failure)) = models::lookup(state.fixtures(), model) else {
        return None;
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:11434");
    reply::address_failure(failure, host)
}

/// `POST /api/show`: `fixtures/show/<base>.json`, or a description built from `tags.json`.
pub(crate) async fn show(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("ShowRequest")?;
    let name = fields.model_or_name()?;
    fields.bool("verbose")?;
    if name.is_empty() {
        return Err(Rejection::model_required());
    }
    if let Some(response) = address_failure(&state, &headers, name) {
        return Ok(response);
    }
    let full = models::full_name(name);
    let fixtures = state.fixtures();
    let Some(kind) = models::lookup(fixtures, name) else {
        // Ollama names the model as asked (no `:latest` added).
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model '{name}' not found"),
        ));
    };
    if let Some(show) = fixtures.shows.get(models::base_name(&full)) {
        return Ok(reply::ok(show));
    }
    let mut show = generic_show(fixtures.tag_entry(&full), &full, kind);
    if full == "local-blob:latest" {
        show["details"]["parent_model"] = json!(
            "/root/.ollama/models/blobs/sha256-0000000000000000000000000000000000000000000000000000000000000000"
        );
    }
    Ok(reply::ok(&show))
}

/// A plausible `/api/show` answer for a model without a show fixture.
fn generic_show(entry: Option<&Value>, full: &str, kind: Kind) -> Value {
    let details = entry.map_or_else(
        || {
            json!({
                "parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                "parameter_size": "3.2B", "quantization_level": "Q4_K_M",
            })
        },
        |e| e["details"].clone(),
    );
    let family = details["family"].as_str().unwrap_or("llama").to_owned();
    let digest = entry
        .and_then(|e| e["digest"].as_str())
        .unwrap_or("0000000000000000000000000000000000000000000000000000000000000000");
    let modified_at = entry
        .and_then(|e| e["modified_at"].as_str())
        .map_or_else(reply::now_rfc3339, str::to_owned);
    let mut model_info = serde_json::Map::new();
    model_info.insert("general.architecture".to_owned(), json!(family));
    model_info.insert(
        "general.parameter_count".to_owned(),
        json!(3_212_749_888_u64),
    );
    model_info.insert(format!("{family}.context_length"), json!(131_072));
    model_info.insert(format!("{family}.embedding_length"), json!(3072));
    json!({
        "modelfile": format!(
            "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM {full}\n\nFROM /root/.ollama/models/blobs/sha256-{digest}\nTEMPLATE {{{{ .Prompt }}}}\n"
        ),
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": details,
        "model_info": model_info,
        "tensors": [{"name": "token_embd.weight", "type": "Q4_K", "shape": [3072, 128_256]}],
        "capabilities": kind.capabilities(),
        "modified_at": modified_at,
    })
}

/// `POST /api/chat`.
pub(crate) async fn chat(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Extension(body): Extension<RequestBody>,
) -> Response {
    generation(state, &headers, &body, Endpoint::Chat, Instant::now()).await
}

/// `POST /api/generate`.
pub(crate) async fn generate(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Extension(body): Extension<RequestBody>,
) -> Response {
    generation(state, &headers, &body, Endpoint::Generate, Instant::now()).await
}

/// Chat and generate: stream the planned lines on schedule, or wait for the last one and
/// answer with their aggregate.
async fn generation(
    state: FakeState,
    headers: &HeaderMap,
    body: &RequestBody,
    endpoint: Endpoint,
    start: Instant,
) -> Response {
    let model = body
        .object(endpoint.go_type())
        .ok()
        .and_then(|fields| fields.str("model").ok());
    if let Some(response) = model.and_then(|m| address_failure(&state, headers, m)) {
        return response;
    }
    if state.config().failing {
        return reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "llama runner process has terminated: exit status 2",
        );
    }
    let plan = match body
        .object(endpoint.go_type())
        .and_then(|fields| scenario::plan(state.fixtures(), endpoint, fields))
    {
        Ok(plan) => plan,
        Err(rejection) => return rejection.into_response(),
    };
    let script = match plan.answer {
        Answer::Single(value) => return reply::ok(&value),
        Answer::Lines(script) => script,
    };
    let schedule = script.schedule(start, state.config());
    if plan.stream {
        // Created first, so a client leaving during the head delay counts as a cancel.
        let guard = StreamGuard::new(state.clone());
        // Ollama sends the response head together with the first line.
        schedule.wait_for(0).await;
        let body = scheduled_body(script.ndjson(), schedule, guard);
        reply::with_type(StatusCode::OK, reply::NDJSON, body)
    } else {
        schedule.wait_for(script.last_index()).await;
        match scenario::aggregate(endpoint, &script.lines) {
            Ok(answer) => reply::ok(&answer),
            Err(message) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
}

/// The checks embed endpoints share: model present, known, and not a failing one.
async fn embedding_model(state: &FakeState, model: &str) -> Result<(), Rejection> {
    if model.is_empty() {
        return Err(Rejection::model_required());
    }
    match models::lookup(state.fixtures(), model) {
        // The embed handlers word it differently from chat and generate.
        None => Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model {model:?} not found, try pulling it first"),
        )),
        Some(Kind::Fail(Failure::Status500)) => Err(Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "llama runner process has terminated: exit status 2",
        )),
        Some(Kind::Fail(Failure::Busy)) => Err(Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server busy, please try again.  maximum pending requests exceeded",
        )),
        Some(Kind::Fail(Failure::Slow)) => {
            tokio::time::sleep(SLOW_DELAY).await;
            Ok(())
        }
        Some(_) => Ok(()),
    }
}

/// `POST /api/embed`: one deterministic unit vector per input string.
pub(crate) async fn embed(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("EmbedRequest")?;
    let model = fields.str("model")?;
    fields.keep_alive()?;
    if let Some(response) = address_failure(&state, &headers, model) {
        return Ok(response);
    }
    let inputs: Vec<&str> = match fields.get("input") {
        None => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or_else(invalid_input))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid_input()),
    };
    // Real Ollama (0.24) truncates to `dimensions` when it is shorter than the model's vector,
    // and answers the whole vector otherwise: for 0, a negative number, or more than it has.
    let dimensions = fields
        .int("dimensions")?
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| (1..=embed::MAX_DIMENSIONS).contains(d))
        .unwrap_or(embed::DEFAULT_DIMENSIONS);
    embedding_model(&state, model).await?;
    if inputs.is_empty() {
        return Ok(reply::ok(&json!({ "model": model, "embeddings": [] })));
    }
    let embeddings: Vec<Vec<f64>> = inputs
        .iter()
        .map(|text| embed::as_json_floats(&embed::embedding(text, dimensions)))
        .collect();
    let tokens: usize = inputs.iter().map(|text| embed::token_count(text)).sum();
    Ok(reply::ok(&json!({
        "model": model,
        "embeddings": embeddings,
        "total_duration": 14_143_917,
        "load_duration": 1_019_500,
        "prompt_eval_count": tokens,
    })))
}

fn invalid_input() -> Rejection {
    Rejection::bad_request("invalid input type")
}

/// `POST /api/embeddings` (legacy): `prompt` in, `{"embedding":[...]}` out.
pub(crate) async fn embeddings(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Result<Response, Rejection> {
    let fields = body.object("EmbeddingRequest")?;
    let model = fields.str("model")?;
    fields.keep_alive()?;
    let prompt = fields.str("prompt")?;
    embedding_model(&state, model).await?;
    let embedding: Vec<f64> = if prompt.is_empty() {
        Vec::new()
    } else {
        embed::embedding(prompt, embed::DEFAULT_DIMENSIONS)
            .into_iter()
            .map(f64::from)
            .collect()
    };
    Ok(reply::ok(&json!({ "embedding": embedding })))
}
