//! Waiting in end-to-end tests: poll a check until it holds, and fail naming what never
//! happened. Every test waits through these two, the async one for checks that await a
//! `kube::Client`, the blocking one for checks that run kubectl.

use std::time::{Duration, Instant};

/// How often a check is tried again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Poll `check` until it returns `Some`, or panic after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Poll `check` until it returns true, blocking this thread, or panic after `timeout`
/// naming `what`.
pub fn eventually_blocking(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
