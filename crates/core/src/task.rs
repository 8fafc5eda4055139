//! Spawning tasks that keep their span. A future handed to `tokio::spawn` loses the span
//! it was created in, so its log lines no longer say which node, pod or request they
//! belong to; [`spawn`] attaches the caller's span. `clippy.toml` disallows bare
//! `tokio::spawn` so that every task goes through here (instrument the future with a
//! span of its own first when it deserves one).

use std::future::Future;

use tracing::Instrument;

/// `tokio::spawn`, inside the current span.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(future.in_current_span())
}
