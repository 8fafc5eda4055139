//! The shutdown signal shared by every long-running part of the process.
//!
//! `main` owns the trigger; each `run(cfg, shutdown)` selects its loop against
//! [`Shutdown::cancelled`] and returns when it fires.

use tokio_util::sync::CancellationToken;

/// A cloneable handle that fires once, when the process is asked to stop.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every holder of this handle to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once [`Shutdown::trigger`] has been called.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// The underlying token, for APIs (such as the store) that take one directly.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}
