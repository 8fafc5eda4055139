//! Placeholder: being written.

use std::sync::Arc;

use crate::context::Context;
use crate::Result;

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let _ = ctx;
    std::future::pending().await
}
