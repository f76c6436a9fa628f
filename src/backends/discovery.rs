//! What each backend has: its installed models (`/api/tags`) and what it has loaded
//! (`/api/ps`), asked by the backend's watcher every few seconds and at once after a pull,
//! create, copy or delete through the gateway. Requests read the last answer and never wait
//! for a new one.

use std::collections::HashSet;
use std::time::Duration;

use http::Method;

use crate::ollama::types::TagsResponse;
use crate::upstream::Upstream;

use super::select::full_name;

/// How long one listing may take before it counts as not answered (the watcher's listings
/// and each backend's part of a client's listing).
pub const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// The models of one backend, as last listed.
#[derive(Clone, Debug, Default)]
pub struct Models {
    /// Whether a listing has answered yet (until then the backend may have any model).
    pub known: bool,
    /// Installed models, by full name (`llama3.2:latest`).
    pub installed: HashSet<String>,
    /// Loaded models, by full name.
    pub loaded: HashSet<String>,
}

impl Models {
    /// Whether `model` (a full name) is installed.
    pub fn has(&self, model: &str) -> bool {
        self.installed.contains(model)
    }
}

/// Ask `upstream` for its models; `None` when either listing fails (the last answer is kept).
pub async fn list(upstream: &Upstream) -> Option<Models> {
    let (installed, loaded) =
        tokio::join!(names(upstream, "/api/tags"), names(upstream, "/api/ps"));
    Some(Models {
        known: true,
        installed: installed?,
        loaded: loaded?,
    })
}

/// The full names of a listing's models.
async fn names(upstream: &Upstream, path: &str) -> Option<HashSet<String>> {
    // A plain request rather than `Upstream::get_json`, which warns on every failure: the
    // watcher says once that a backend is down.
    let call = async {
        upstream
            .request(Method::GET, path)
            .send()
            .await?
            .error_for_status()?
            .json::<TagsResponse>()
            .await
    };
    match tokio::time::timeout(LIST_TIMEOUT, call).await {
        Ok(Ok(listing)) => Some(
            listing
                .models
                .iter()
                .flat_map(|m| [full_name(&m.name), full_name(m.id())])
                .filter(|name| name != ":latest")
                .collect(),
        ),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, path, "backend listing failed");
            None
        }
        Err(_) => None,
    }
}
