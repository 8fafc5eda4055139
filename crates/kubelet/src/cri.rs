//! The CRI v1 client: gRPC over the container runtime's unix socket. `Cri` is cheap to
//! clone (tonic channels multiplex); every part of the agent holds its own copy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint};

pub use k8s_cri::v1 as api;

use crate::{Error, Result};

/// Labels the kubelet puts on sandboxes and containers, as upstream's kubelet does, so a
/// restarted agent (or `crictl`) can tell which pod and container each one belongs to.
pub mod labels {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    /// Annotation (not label) on containers: how many times the container restarted.
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    /// Annotation on containers: the pod's termination grace period, for adoption.
    pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
    /// Annotation on containers: a hash of the part of the container's spec that may
    /// change on a live pod, so a change (a new image) restarts the container.
    pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
}

/// The connection. Its calls are made through [`crate::runtime::RuntimeService`], the
/// seam tests fake; the raw clients are visible only to that implementation.
#[derive(Clone)]
pub struct Cri {
    pub(crate) runtime: RuntimeServiceClient<Channel>,
    pub(crate) images: ImageServiceClient<Channel>,
    pub socket: PathBuf,
}

impl Cri {
    /// Connect lazily to the CRI socket: the channel reconnects by itself when containerd
    /// restarts, so callers only see errors while it is down.
    pub fn connect(socket: &Path) -> Result<Cri> {
        let path = socket.to_path_buf();
        // The URI is required by tonic but unused: the connector below dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        let limit = 16 * 1024 * 1024;
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(limit),
            images: ImageServiceClient::new(channel).max_decoding_message_size(limit),
            socket: socket.to_path_buf(),
        })
    }

    /// Wait until the runtime answers `Version`, or give up after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut runtime = self.runtime.clone();
            match runtime.version(api::VersionRequest::default()).await {
                Ok(v) => {
                    let v = v.into_inner();
                    return Ok(format!("{}://{}", v.runtime_name, v.runtime_version));
                }
                Err(status) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Runtime(format!(
                        "container runtime at {} did not answer: {}",
                        self.socket.display(),
                        status.message()
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
