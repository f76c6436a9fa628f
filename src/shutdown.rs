//! Shutdown: one signal that long-running streams watch, so they can end with an error event
//! when the grace period after SIGTERM/SIGINT is over instead of being cut mid-frame.

use tokio::sync::watch;

/// A shared "grace period over" flag.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A flag that is not yet raised.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// Raise the flag: every open stream ends now.
    pub fn expire(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once the flag is raised (at once if it already is). The future owns its watch,
    /// so a stream can keep it.
    pub fn expired(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means every sender is gone: the flag can no longer be raised.
            if rx.wait_for(|raised| *raised).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
