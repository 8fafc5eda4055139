//! Objects in the datastore: JSON encoding, storage keys and `resourceVersion`.
//!
//! Objects are stored without `metadata.resourceVersion`; it is the key's modification
//! revision and is filled in on every read, so it can never disagree with the store.

use std::sync::Arc;

use k3rs_core::ResourceDef;
use k3rs_store::{Backend, KeyValue, ListOptions};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::object;

/// One page of a list read.
pub struct Page {
    pub items: Vec<Value>,
    pub revision: i64,
    /// Storage key of the last item read (paging resumes after it).
    pub last_key: Option<String>,
    pub more: bool,
    pub remaining: Option<i64>,
}

#[derive(Clone)]
pub struct ObjectStore {
    backend: Arc<dyn Backend>,
}

impl ObjectStore {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub async fn get(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<Value>> {
        let kv = self.backend.get(&def.key(ns, name)).await?;
        kv.map(|kv| decode(def, &kv)).transpose()
    }

    /// Like [`ObjectStore::get`] but a missing object is a 404.
    pub async fn must_get(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        self.get(def, ns, name)
            .await?
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    pub async fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<i64>,
    ) -> ApiResult<Page> {
        let prefix = def.list_prefix(ns);
        let result = self
            .backend
            .list(ListOptions {
                prefix: &prefix,
                start_after,
                limit,
                revision,
            })
            .await?;
        let last_key = result.items.last().map(|kv| kv.key.clone());
        let items = result
            .items
            .iter()
            .map(|kv| decode(def, kv))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Page {
            items,
            revision: result.revision,
            last_key,
            more: result.more,
            remaining: result.remaining,
        })
    }

    pub async fn create(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        obj: &Value,
    ) -> ApiResult<Value> {
        let name = object::name(obj).unwrap_or_default().to_string();
        let kv = self
            .backend
            .create(&def.key(ns, &name), encode(obj))
            .await
            .map_err(|e| match e {
                k3rs_store::Error::AlreadyExists { .. } => {
                    ApiError::already_exists(&def.group, &def.plural, &name)
                }
                other => other.into(),
            })?;
        decode(def, &kv)
    }

    /// Compare-and-swap write; a lost race is a 409 the caller may retry.
    pub async fn update(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        obj: &Value,
        expected_revision: i64,
    ) -> ApiResult<Value> {
        let name = object::name(obj).unwrap_or_default().to_string();
        let kv = self
            .backend
            .update(&def.key(ns, &name), encode(obj), expected_revision)
            .await
            .map_err(|e| map_write_error(def, &name, e))?;
        decode(def, &kv)
    }

    pub async fn delete(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        expected_revision: Option<i64>,
    ) -> ApiResult<Value> {
        let kv = self
            .backend
            .delete(&def.key(ns, name), expected_revision)
            .await
            .map_err(|e| map_write_error(def, name, e))?;
        decode(def, &kv)
    }
}

fn map_write_error(def: &ResourceDef, name: &str, e: k3rs_store::Error) -> ApiError {
    match e {
        k3rs_store::Error::NotFound { .. } => ApiError::not_found(&def.group, &def.plural, name),
        k3rs_store::Error::Conflict { .. } => ApiError::stale(&def.group, &def.plural, name),
        other => other.into(),
    }
}

/// Bytes stored for an object: its JSON without `resourceVersion`.
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut obj = obj.clone();
    object::meta_mut(&mut obj).remove("resourceVersion");
    serde_json::to_vec(&obj).expect("JSON values always serialize")
}

/// An object read back from the store, with `resourceVersion` and the served
/// `apiVersion`/`kind` of `def` (two API versions may share one storage prefix).
pub fn decode(def: &ResourceDef, kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    crate::convert::to_served(def, &mut obj);
    object::set_str(&mut obj, "resourceVersion", &kv.mod_revision.to_string());
    Ok(obj)
}
