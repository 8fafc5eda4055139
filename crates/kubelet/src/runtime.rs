//! The container runtime as the kubelet uses it: the CRI v1 calls it makes, behind one
//! trait, so the pod worker, the probes and the node status can run against containerd in
//! production and against a recording fake (`runtime::fake`) in unit tests.
//!
//! The trait speaks the CRI's own types and errors (`tonic::Status`): the status codes are
//! part of the CRI contract (a `NotFound` container was removed in between, a
//! `DeadlineExceeded` exec outlived its timeout), so callers keep deciding on them. It
//! holds no policy: what to start or stop is `pods::plan`'s business.

#[cfg(test)]
pub mod fake;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::cri::{api, Cri};

/// The outcome of one CRI call.
pub type CallResult<T> = std::result::Result<T, tonic::Status>;
/// What every call of [`RuntimeService`] returns: boxed so the trait can be used as
/// `dyn RuntimeService` (the worker holds `Arc<dyn RuntimeService>`).
pub type Call<'a, T> = BoxFuture<'a, CallResult<T>>;

/// The runtime and image services of the CRI, reduced to the calls the kubelet makes and
/// to the arguments it sets (upstream's `RuntimeService` and `ImageManagerService`).
pub trait RuntimeService: Send + Sync {
    /// The runtime's conditions (`RuntimeReady`, `NetworkReady`).
    fn status(&self) -> Call<'_, Option<api::RuntimeStatus>>;

    fn list_pod_sandboxes(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Call<'_, Vec<api::PodSandbox>>;
    /// Start a sandbox; its id.
    fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> Call<'_, String>;
    fn pod_sandbox_status(&self, sandbox_id: &str) -> Call<'_, Option<api::PodSandboxStatus>>;
    /// Stop every process of the sandbox and release its network.
    fn stop_pod_sandbox(&self, sandbox_id: &str) -> Call<'_, ()>;
    fn remove_pod_sandbox(&self, sandbox_id: &str) -> Call<'_, ()>;

    fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Call<'_, Vec<api::Container>>;
    fn container_status(&self, container_id: &str) -> Call<'_, Option<api::ContainerStatus>>;
    /// Create a container in a sandbox; its id.
    fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Call<'_, String>;
    fn start_container(&self, container_id: &str) -> Call<'_, ()>;
    /// SIGTERM, then SIGKILL after `timeout_seconds` (0: at once).
    fn stop_container(&self, container_id: &str, timeout_seconds: i64) -> Call<'_, ()>;
    fn remove_container(&self, container_id: &str) -> Call<'_, ()>;
    /// Run a command in the container and wait for it; the runtime kills it after
    /// `timeout_seconds` (0: no limit).
    fn exec_sync(
        &self,
        container_id: &str,
        command: Vec<String>,
        timeout_seconds: i64,
    ) -> Call<'_, api::ExecSyncResponse>;

    /// Streaming sessions: the URL of the runtime's streaming server that serves the
    /// session (the kubelet API proxies the client to it).
    fn exec(&self, request: api::ExecRequest) -> Call<'_, String>;
    fn attach(&self, request: api::AttachRequest) -> Call<'_, String>;
    fn port_forward(&self, sandbox_id: &str, ports: Vec<i32>) -> Call<'_, String>;

    /// Usage of every container, for the kubelet's stats summary.
    fn list_container_stats(&self) -> Call<'_, Vec<api::ContainerStats>>;
    /// Pod-level usage (network above all); runtimes without it answer `Unimplemented`.
    fn list_pod_sandbox_stats(&self) -> Call<'_, Vec<api::PodSandboxStats>>;

    /// The image if the runtime holds it.
    fn image_status(&self, image: &str) -> Call<'_, Option<api::Image>>;
    /// Pull the image; the reference the runtime resolved it to.
    fn pull_image(&self, image: &str) -> Call<'_, String>;
    fn list_images(&self) -> Call<'_, Vec<api::Image>>;
    /// What the images take on the filesystems that hold them.
    fn image_fs_info(&self) -> Call<'_, Vec<api::FilesystemUsage>>;
}

/// containerd (or any CRI runtime) over gRPC. Every call clones the tonic client, which
/// only clones a handle to the shared channel.
impl RuntimeService for Cri {
    fn status(&self) -> Call<'_, Option<api::RuntimeStatus>> {
        let mut runtime = self.runtime.clone();
        async move {
            let request = api::StatusRequest { verbose: false };
            Ok(runtime.status(request).await?.into_inner().status)
        }
        .boxed()
    }

    fn list_pod_sandboxes(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Call<'_, Vec<api::PodSandbox>> {
        let mut runtime = self.runtime.clone();
        async move {
            let request = api::ListPodSandboxRequest { filter };
            Ok(runtime.list_pod_sandbox(request).await?.into_inner().items)
        }
        .boxed()
    }

    fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> Call<'_, String> {
        let mut runtime = self.runtime.clone();
        async move {
            let request = api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            };
            Ok(runtime
                .run_pod_sandbox(request)
                .await?
                .into_inner()
                .pod_sandbox_id)
        }
        .boxed()
    }

    fn pod_sandbox_status(&self, sandbox_id: &str) -> Call<'_, Option<api::PodSandboxStatus>> {
        let mut runtime = self.runtime.clone();
        let request = api::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            verbose: false,
        };
        async move {
            Ok(runtime
                .pod_sandbox_status(request)
                .await?
                .into_inner()
                .status)
        }
        .boxed()
    }

    fn stop_pod_sandbox(&self, sandbox_id: &str) -> Call<'_, ()> {
        let mut runtime = self.runtime.clone();
        let request = api::StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.to_string(),
        };
        async move { runtime.stop_pod_sandbox(request).await.map(drop) }.boxed()
    }

    fn remove_pod_sandbox(&self, sandbox_id: &str) -> Call<'_, ()> {
        let mut runtime = self.runtime.clone();
        let request = api::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox_id.to_string(),
        };
        async move { runtime.remove_pod_sandbox(request).await.map(drop) }.boxed()
    }

    fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Call<'_, Vec<api::Container>> {
        let mut runtime = self.runtime.clone();
        async move {
            let request = api::ListContainersRequest { filter };
            Ok(runtime
                .list_containers(request)
                .await?
                .into_inner()
                .containers)
        }
        .boxed()
    }

    fn container_status(&self, container_id: &str) -> Call<'_, Option<api::ContainerStatus>> {
        let mut runtime = self.runtime.clone();
        let request = api::ContainerStatusRequest {
            container_id: container_id.to_string(),
            verbose: false,
        };
        async move { Ok(runtime.container_status(request).await?.into_inner().status) }.boxed()
    }

    fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Call<'_, String> {
        let mut runtime = self.runtime.clone();
        let request = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        async move {
            Ok(runtime
                .create_container(request)
                .await?
                .into_inner()
                .container_id)
        }
        .boxed()
    }

    fn start_container(&self, container_id: &str) -> Call<'_, ()> {
        let mut runtime = self.runtime.clone();
        let request = api::StartContainerRequest {
            container_id: container_id.to_string(),
        };
        async move { runtime.start_container(request).await.map(drop) }.boxed()
    }

    fn stop_container(&self, container_id: &str, timeout_seconds: i64) -> Call<'_, ()> {
        let mut runtime = self.runtime.clone();
        let request = api::StopContainerRequest {
            container_id: container_id.to_string(),
            timeout: timeout_seconds,
        };
        async move { runtime.stop_container(request).await.map(drop) }.boxed()
    }

    fn remove_container(&self, container_id: &str) -> Call<'_, ()> {
        let mut runtime = self.runtime.clone();
        let request = api::RemoveContainerRequest {
            container_id: container_id.to_string(),
        };
        async move { runtime.remove_container(request).await.map(drop) }.boxed()
    }

    fn exec_sync(
        &self,
        container_id: &str,
        command: Vec<String>,
        timeout_seconds: i64,
    ) -> Call<'_, api::ExecSyncResponse> {
        let mut runtime = self.runtime.clone();
        let request = api::ExecSyncRequest {
            container_id: container_id.to_string(),
            cmd: command,
            timeout: timeout_seconds,
        };
        async move { Ok(runtime.exec_sync(request).await?.into_inner()) }.boxed()
    }

    fn exec(&self, request: api::ExecRequest) -> Call<'_, String> {
        let mut runtime = self.runtime.clone();
        async move { Ok(runtime.exec(request).await?.into_inner().url) }.boxed()
    }

    fn attach(&self, request: api::AttachRequest) -> Call<'_, String> {
        let mut runtime = self.runtime.clone();
        async move { Ok(runtime.attach(request).await?.into_inner().url) }.boxed()
    }

    fn port_forward(&self, sandbox_id: &str, ports: Vec<i32>) -> Call<'_, String> {
        let mut runtime = self.runtime.clone();
        let request = api::PortForwardRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            port: ports,
        };
        async move { Ok(runtime.port_forward(request).await?.into_inner().url) }.boxed()
    }

    fn list_container_stats(&self) -> Call<'_, Vec<api::ContainerStats>> {
        let mut runtime = self.runtime.clone();
        async move {
            let request = api::ListContainerStatsRequest::default();
            Ok(runtime
                .list_container_stats(request)
                .await?
                .into_inner()
                .stats)
        }
        .boxed()
    }

    fn list_pod_sandbox_stats(&self) -> Call<'_, Vec<api::PodSandboxStats>> {
        let mut runtime = self.runtime.clone();
        async move {
            let request = api::ListPodSandboxStatsRequest::default();
            Ok(runtime
                .list_pod_sandbox_stats(request)
                .await?
                .into_inner()
                .stats)
        }
        .boxed()
    }

    fn image_status(&self, image: &str) -> Call<'_, Option<api::Image>> {
        let mut images = self.images.clone();
        let request = api::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        async move { Ok(images.image_status(request).await?.into_inner().image) }.boxed()
    }

    fn pull_image(&self, image: &str) -> Call<'_, String> {
        let mut images = self.images.clone();
        let request = api::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: None,
        };
        async move { Ok(images.pull_image(request).await?.into_inner().image_ref) }.boxed()
    }

    fn list_images(&self) -> Call<'_, Vec<api::Image>> {
        let mut images = self.images.clone();
        async move {
            let request = api::ListImagesRequest { filter: None };
            Ok(images.list_images(request).await?.into_inner().images)
        }
        .boxed()
    }

    fn image_fs_info(&self) -> Call<'_, Vec<api::FilesystemUsage>> {
        let mut images = self.images.clone();
        async move {
            let request = api::ImageFsInfoRequest {};
            Ok(images
                .image_fs_info(request)
                .await?
                .into_inner()
                .image_filesystems)
        }
        .boxed()
    }
}

fn image_spec(image: &str) -> api::ImageSpec {
    api::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}
