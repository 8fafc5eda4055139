//! Running the pods bound to this node.

pub mod backoff;
pub mod dns;
pub mod env;
pub mod probe;

use k3rs_core::Shutdown;

use crate::cri::Cri;
use crate::{Config, Result};

pub async fn run(config: Config, cri: Cri, shutdown: Shutdown) -> Result<()> {
    let _ = (config, cri);
    shutdown.cancelled().await;
    Ok(())
}
