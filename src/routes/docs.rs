//! The OpenAPI document and Swagger UI.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; paths are added by the router (see `routes::router`), so the
/// document and the routes cannot drift apart.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ollama-gateway",
        description = "An authenticating, validating, OpenAI-compatible gateway in front of a local Ollama server.\n\nAuthorize with `Bearer <your key>` to try the protected endpoints.",
        license(name = "MIT"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "OpenAI", description = "OpenAI-compatible API, translated to Ollama's native API"),
        (name = "OpenAI Responses", description = "OpenAI's Responses API, translated to Ollama's native chat; responses are stored per key for previous_response_id, GET and DELETE"),
        (name = "Anthropic", description = "Anthropic's Messages API, translated to Ollama's native chat; errors in Anthropic's shape; the key also as `x-api-key`"),
        (name = "Simple", description = "Ollama-shaped endpoints: model list and chat"),
        (name = "Ollama native", description = "Ollama's own API, passed through with the gate in front"),
        (name = "Ollama administrative", description = "Refused unless enabled, and then only for admin keys"),
        (name = "Operations", description = "Health, readiness and metrics"),
        (name = "Admin", description = "Managed keys, users and usage; admin keys only"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme that protected operations reference.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key configured on the gateway"))
                    .build(),
            ),
        );
    }
}
