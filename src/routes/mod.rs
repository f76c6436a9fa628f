//! Every route of the gateway, registered together with its OpenAPI description so the router
//! and the document cannot drift apart.
//!
//! - [`v1`]: the OpenAI-compatible surface.
//! - [`responses`]: OpenAI's Responses API, `POST /v1/responses`, `GET`/`DELETE
//!   /v1/responses/{id}`.
//! - [`messages`]: Anthropic's Messages API, `POST /v1/messages`.
//! - [`simple`]: `GET /models` and `POST /chat`, Ollama-shaped.
//! - [`native`]: `/api/*` passthrough.
//! - [`health`]: `/health`, `/ready`, `/metrics`.
//! - [`docs`]: the OpenAPI document's fixed parts; Swagger UI is mounted in [`router`].
//! - the admin API (`/admin/api/...`), whose handlers live in [`crate::admin::api`].

pub mod docs;
pub mod health;
pub mod messages;
pub mod native;
pub mod responses;
pub mod simple;
pub mod v1;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::admin::api;
use crate::state::AppState;

/// The axum spelling of `GET /v1/models/{model}`: the id may contain `/`.
const RETRIEVE_MODEL: &str = "/v1/models/{*model}";

/// Routes and the document that describes them.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(v1::chat_completions))
        .routes(routes!(v1::completions))
        .routes(routes!(v1::embeddings))
        .routes(routes!(v1::list_models))
        .routes(routes!(responses::create_response))
        .routes(routes!(responses::get_response, responses::delete_response))
        .routes(routes!(messages::create_message))
        .routes(routes!(messages::count_tokens))
        .routes(routes!(simple::models))
        .routes(routes!(simple::chat))
        .routes(routes!(native::chat))
        .routes(routes!(native::generate))
        .routes(routes!(native::embed))
        .routes(routes!(native::embeddings))
        .routes(routes!(native::show))
        .routes(routes!(native::tags))
        .routes(routes!(native::ps))
        .routes(routes!(native::version))
        .routes(routes!(native::pull))
        .routes(routes!(native::push))
        .routes(routes!(native::create))
        .routes(routes!(native::copy))
        .routes(routes!(native::delete))
        .routes(routes!(native::blob_upload, native::blob_exists))
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(api::list_keys, api::create_key))
        .routes(routes!(api::get_key, api::update_key, api::revoke_key))
        .routes(routes!(api::list_users, api::create_user))
        .routes(routes!(api::update_user, api::delete_user))
        .routes(routes!(api::usage))
        .split_for_parts();
    // A wildcard segment has different spellings in axum (`{*model}`) and OpenAPI (`{model}`),
    // so this one route is added by hand, next to its description.
    #[derive(OpenApi)]
    #[openapi(paths(v1::retrieve_model))]
    struct RetrieveModel;
    api.merge(RetrieveModel::openapi());
    (router.route(RETRIEVE_MODEL, get(v1::retrieve_model)), api)
}

/// The OpenAPI document (what `/openapi.json` serves and `openapi/openapi.json` holds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// All routes, Swagger UI at `/docs`, the document at `/openapi.json`, and the admin console's
/// HTML pages at `/admin/` (outside the document: they are pages, not an API).
pub fn router() -> Router<AppState> {
    let (routes, api) = parts();
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(crate::console::router())
}

/// A non-streamed `/api/chat` call for the translating surfaces (`/v1/chat/completions`,
/// `/v1/responses`, `/v1/messages`): the whole answer, or the error to render. An `error` inside
/// a 200 answer becomes that error; an answer without `done: true` (Ollama ended the run
/// early) is a 502 `upstream_interrupted`, since it has no honest finish reason or usage. The
/// audit record gets the upstream time, the tokens and the load time.
pub(crate) async fn whole_chat(
    state: &AppState,
    native: &crate::ollama::types::ChatRequest,
    headers: &crate::upstream::Forwarded,
    audit: &crate::http::audit::Audit,
) -> Result<crate::ollama::types::ChatResponse, crate::error::GatewayError> {
    let answer = uncounted_chat(state, native, headers, audit).await?;
    audit.set_tokens(answer.prompt_eval_count, answer.eval_count);
    Ok(answer)
}

/// [`whole_chat`] without putting its tokens in the audit record, so they are neither usage
/// nor spent quota: for `/v1/messages/count_tokens`, which only asks how long a prompt is and
/// generates nothing.
pub(crate) async fn uncounted_chat(
    state: &AppState,
    native: &crate::ollama::types::ChatRequest,
    headers: &crate::upstream::Forwarded,
    audit: &crate::http::audit::Audit,
) -> Result<crate::ollama::types::ChatResponse, crate::error::GatewayError> {
    let started = std::time::Instant::now();
    let (answer, lease): (crate::ollama::types::ChatResponse, _) = state
        .backends
        .call_json(
            crate::backends::Target::Model(&native.model),
            audit,
            "/api/chat",
            native,
            headers,
        )
        .await?;
    if let Some(message) = answer.error.as_deref() {
        return Err(lease.failure(message));
    }
    audit.set_upstream_time(started.elapsed());
    if !answer.done {
        return Err(simple::incomplete_answer());
    }
    audit.set_load_duration(answer.load_duration);
    Ok(answer)
}
