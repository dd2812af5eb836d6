//! The process's shutdown signal.

/// Completes on Ctrl-C (SIGINT), SIGTERM or SIGHUP.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    // SIGHUP too (the terminal the relay runs in was closed): by default it killed the
    // process outright, every bridge cut without its Close.
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        let signals = [
            ("SIGTERM", SignalKind::terminate()),
            ("SIGHUP", SignalKind::hangup()),
        ];
        let mut waiting = Vec::new();
        for (name, kind) in signals {
            match signal(kind) {
                Ok(s) => waiting.push(s),
                Err(e) => tracing::error!(error = %e, "cannot listen for {name}"),
            }
        }
        if waiting.is_empty() {
            std::future::pending::<()>().await;
        }
        let received = waiting.iter_mut().map(|s| Box::pin(s.recv()));
        futures_util::future::select_all(received).await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
