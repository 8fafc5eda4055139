//! The volumes made of API data: configMap, secret, downwardAPI and projected (any mix of
//! service-account token, configMap, secret and downwardAPI sources). This module reads
//! what they need from the API (each object at most once per refresh) and turns it into
//! a payload for the atomic writer; the rules for the files are in `projection`.

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, DownwardAPIVolumeSource, Pod, ProjectedVolumeSource, Secret,
    SecretVolumeSource,
};

use super::atomic_writer::{self, FileProjection, Payload};
use super::downward_api::{self, Allocatable};
use super::projection::{self, DEFAULT_MODE};
use super::{api_message, token};

/// Reads the objects one pod's volumes refer to, remembering each for this refresh.
pub struct Sources<'a> {
    client: &'a kube::Client,
    node_name: &'a str,
    pod: &'a Pod,
    namespace: &'a str,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
    allocatable: Option<Allocatable>,
}

impl<'a> Sources<'a> {
    pub fn new(client: &'a kube::Client, node_name: &'a str, pod: &'a Pod) -> Sources<'a> {
        Sources {
            client,
            node_name,
            pod,
            namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
            allocatable: None,
        }
    }

    pub fn namespace(&self) -> &'a str {
        self.namespace
    }

    /// The ConfigMap, `None` if it does not exist.
    async fn config_map(&mut self, name: &str) -> Result<Option<ConfigMap>, String> {
        if let Some(found) = self.config_maps.get(name) {
            return Ok(found.clone());
        }
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(self.client.clone(), self.namespace);
        let found = api.get_opt(name).await.map_err(|err| {
            format!(
                "couldn't get configmap {}/{name}: {}",
                self.namespace,
                api_message(&err)
            )
        })?;
        self.config_maps.insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// The Secret, `None` if it does not exist.
    async fn secret(&mut self, name: &str) -> Result<Option<Secret>, String> {
        if let Some(found) = self.secrets.get(name) {
            return Ok(found.clone());
        }
        let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), self.namespace);
        let found = api.get_opt(name).await.map_err(|err| {
            format!(
                "couldn't get secret {}/{name}: {}",
                self.namespace,
                api_message(&err)
            )
        })?;
        self.secrets.insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// The node's allocatable resources when `needed` (read once per refresh).
    async fn allocatable(&mut self, needed: bool) -> Result<Option<&Allocatable>, String> {
        if !needed {
            return Ok(None);
        }
        if self.allocatable.is_none() {
            let allocatable = downward_api::node_allocatable(self.client, self.node_name)
                .await
                .map_err(|e| e.to_string())?;
            self.allocatable = Some(allocatable);
        }
        Ok(self.allocatable.as_ref())
    }

    pub async fn config_map_files(
        &mut self,
        source: &ConfigMapVolumeSource,
    ) -> Result<Payload, String> {
        let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
        self.config_map_payload(&source.name, source.items.as_deref(), mode, source.optional)
            .await
    }

    async fn config_map_payload(
        &mut self,
        name: &str,
        items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
        default_mode: i32,
        optional: Option<bool>,
    ) -> Result<Payload, String> {
        let optional = optional.unwrap_or(false);
        let config_map = match self.config_map(name).await? {
            Some(found) => found,
            None if optional => ConfigMap::default(),
            None => return Err(format!("configmap {name:?} not found")),
        };
        projection::config_map_payload(items, &config_map, default_mode, optional)
    }

    pub async fn secret_files(&mut self, source: &SecretVolumeSource) -> Result<Payload, String> {
        let name = source
            .secret_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or("the secret volume names no secret")?;
        let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
        self.secret_payload(name, source.items.as_deref(), mode, source.optional)
            .await
    }

    async fn secret_payload(
        &mut self,
        name: &str,
        items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
        default_mode: i32,
        optional: Option<bool>,
    ) -> Result<Payload, String> {
        let optional = optional.unwrap_or(false);
        let secret = match self.secret(name).await? {
            Some(found) => found,
            None if optional => Secret::default(),
            None => return Err(format!("secret {name:?} not found")),
        };
        projection::secret_payload(items, &secret, default_mode, optional)
    }

    pub async fn downward_api_files(
        &mut self,
        source: &DownwardAPIVolumeSource,
    ) -> Result<Payload, String> {
        let items = source.items.as_deref().unwrap_or_default();
        let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
        self.downward_api_payload(items, mode).await
    }

    async fn downward_api_payload(
        &mut self,
        items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
        default_mode: i32,
    ) -> Result<Payload, String> {
        let pod = self.pod;
        let needed = projection::downward_api_needs_allocatable(items, pod);
        let allocatable = self.allocatable(needed).await?;
        projection::downward_api_payload(items, pod, default_mode, allocatable)
    }

    /// Every source of a projected volume in order; `target` is the volume's directory,
    /// whose current token is kept while it is fresh. All sources are tried and all
    /// failures reported, as upstream.
    pub async fn projected_files(
        &mut self,
        source: &ProjectedVolumeSource,
        target: &Path,
    ) -> Result<Payload, String> {
        let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
        let mut payload = Payload::new();
        let mut errors = Vec::new();
        for projection in source.sources.iter().flatten() {
            let files = if let Some(config_map) = &projection.config_map {
                let items = config_map.items.as_deref();
                self.config_map_payload(&config_map.name, items, mode, config_map.optional)
                    .await
            } else if let Some(secret) = &projection.secret {
                self.secret_payload(&secret.name, secret.items.as_deref(), mode, secret.optional)
                    .await
            } else if let Some(downward) = &projection.downward_api {
                let items = downward.items.as_deref().unwrap_or_default();
                self.downward_api_payload(items, mode).await
            } else if let Some(token) = &projection.service_account_token {
                self.token_file(token, target, mode).await
            } else {
                Err("projected source of an unsupported kind (clusterTrustBundle?)".to_string())
            };
            match files {
                Ok(files) => payload.extend(files),
                Err(err) => errors.push(err),
            }
        }
        if errors.is_empty() {
            Ok(payload)
        } else {
            Err(errors.join("; "))
        }
    }

    /// The token file: the one already written while it is fresh, else a new token.
    async fn token_file(
        &mut self,
        source: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
        target: &Path,
        mode: i32,
    ) -> Result<Payload, String> {
        let now = chrono::Utc::now().timestamp();
        let data = match atomic_writer::current_file(target, &source.path) {
            Some(current) if !token::needs_refresh(&current, now) => current,
            _ => token::request(self.client, self.pod, source)
                .await?
                .into_bytes(),
        };
        let file = FileProjection {
            data,
            mode: projection::mode_bits(mode),
        };
        Ok(Payload::from([(source.path.clone(), file)]))
    }
}
