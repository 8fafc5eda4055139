//! Namespaced configuration objects: Namespaces, ConfigMaps, Secrets,
//! ServiceAccounts and ResourceQuotas.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::since;
use crate::fields::{
    creation_timestamp, int_or_string, len_at, name, object_at, opt_str_at, str_at,
};

pub(crate) fn namespace_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Status", "The status of the namespace"),
        AGE,
    ]
}

pub(crate) fn namespace_cells(namespace: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(namespace)),
        // The API defaults a missing phase to Active.
        json!(opt_str_at(namespace, &["status", "phase"])
            .filter(|p| !p.is_empty())
            .unwrap_or("Active")),
        json!(since(creation_timestamp(namespace), now)),
    ]
}

pub(crate) fn config_map_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Data", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
        AGE,
    ]
}

pub(crate) fn config_map_cells(config_map: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(config_map)),
        json!(len_at(config_map, &["data"]) + len_at(config_map, &["binaryData"])),
        json!(since(creation_timestamp(config_map), now)),
    ]
}

pub(crate) fn secret_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Type", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
        Column::string("Data", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
        AGE,
    ]
}

pub(crate) fn secret_cells(secret: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The API defaults an empty type to Opaque.
    let type_ = match str_at(secret, &["type"]) {
        "" => "Opaque",
        t => t,
    };
    // stringData is folded into data on write; count it for unnormalised objects.
    let string_only = object_at(secret, &["stringData"])
        .map(|string_data| {
            let data = object_at(secret, &["data"]);
            string_data
                .keys()
                .filter(|k| !data.is_some_and(|d| d.contains_key(*k)))
                .count()
        })
        .unwrap_or(0);
    vec![
        json!(name(secret)),
        json!(type_),
        json!(len_at(secret, &["data"]) + i64::try_from(string_only).unwrap_or(0)),
        json!(since(creation_timestamp(secret), now)),
    ]
}

pub(crate) fn service_account_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Secrets", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret"),
        AGE,
    ]
}

pub(crate) fn service_account_cells(account: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(account)),
        json!(len_at(account, &["secrets"])),
        json!(since(creation_timestamp(account), now)),
    ]
}

pub(crate) fn resource_quota_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
        Column::string("Limit", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
        AGE,
    ]
}

/// "resource: used/hard" for each hard limit, sorted by resource name; names
/// starting with "limits." go to the LIMIT column, the rest to REQUEST.
pub(crate) fn resource_quota_cells(quota: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    if let Some(hard) = object_at(quota, &["status", "hard"]) {
        let used = object_at(quota, &["status", "used"]);
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let used = used
                .and_then(|u| u.get(resource.as_str()))
                .map(int_or_string)
                .unwrap_or_else(|| "0".to_string());
            let text = format!(
                "{resource}: {used}/{}",
                int_or_string(&hard[resource.as_str()])
            );
            if resource.starts_with("limits.") {
                limits.push(text);
            } else {
                requests.push(text);
            }
        }
    }
    vec![
        json!(name(quota)),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        json!(since(creation_timestamp(quota), now)),
    ]
}
