//! The downward API: a pod's own fields and a container's resources as text. Both
//! downwardAPI volume files (and projected downwardAPI sources) and container environment
//! variables (`pods::env`) use these, so a value reads the same wherever it appears.
//!
//! Only the pod-metadata paths live here; the fields only environment variables may name
//! (`spec.nodeName`, `status.podIP`, ...) are resolved in `pods::env`.

use std::collections::BTreeMap;

use k3rs_core::quantity::{div_ceil, Quantity};
use k8s_openapi::api::core::v1::{Container, Node, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::{Error, Result};

/// A node's allocatable resources (`status.allocatable`), the limit a container without
/// one effectively has.
pub type Allocatable = BTreeMap<String, ApiQuantity>;

/// The value of a pod `metadata.*` field path, as upstream's `ExtractFieldPathAsString`:
/// `metadata.name`, `.namespace`, `.uid`, `.labels`, `.annotations` (all entries as
/// `key="value"` lines) and `metadata.labels['key']` / `metadata.annotations['key']`.
pub fn metadata_field(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((path, key)) = split_subscript(field_path) {
        let map = match path {
            "metadata.labels" => &meta.labels,
            "metadata.annotations" => &meta.annotations,
            _ => {
                return Err(format!(
                    "fieldPath {field_path:?} does not support subscript"
                ))
            }
        };
        return Ok(map
            .as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default());
    }
    let empty = BTreeMap::new();
    Ok(match field_path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref().unwrap_or(&empty)),
        "metadata.annotations" => format_map(meta.annotations.as_ref().unwrap_or(&empty)),
        _ => return Err(format!("unsupported fieldPath: {field_path}")),
    })
}

/// Field selectors carry an API version; only `v1` (or none, before defaulting) exists.
pub fn check_field_api_version(api_version: Option<&str>) -> Result<(), String> {
    match api_version {
        None | Some("") | Some("v1") => Ok(()),
        Some(other) => Err(format!("unsupported pod version: {other}")),
    }
}

/// `metadata.labels['app']` → `("metadata.labels", "app")`.
fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, key) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, key))
}

/// All entries of a label or annotation map, one `key="value"` per line in key order,
/// the value quoted as Go's `%q` does (what upstream writes, so readers of these files
/// parse them the same way).
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(key, value)| format!("{key}={}", go_quote(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A double-quoted string with Go's escapes for quotes, backslashes and control
/// characters; other characters are kept as they are.
fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `selector` reads a limit `container` does not set, which then defaults to the
/// node's allocatable amount (so callers fetch the Node only when it matters).
pub fn needs_allocatable(selector: &ResourceFieldSelector, container: &Container) -> bool {
    let Some(resource) = selector.resource.strip_prefix("limits.") else {
        return false;
    };
    !container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .is_some_and(|limits| limits.contains_key(resource))
}

/// The value of a container's `limits.*` / `requests.*` resource divided by the
/// selector's divisor and rounded up, as upstream: CPU in millicores against the divisor's
/// millicores, memory, ephemeral storage and huge pages in bytes. An unset limit is the
/// node's allocatable amount; an unset request is zero.
pub fn container_resource(
    selector: &ResourceFieldSelector,
    container: &Container,
    allocatable: Option<&Allocatable>,
) -> Result<String, String> {
    let divisor = match &selector.divisor {
        Some(divisor) => parse(divisor)?,
        None => Quantity::ZERO,
    };
    let divisor = if divisor.is_zero() {
        Quantity::from_units(1)
    } else {
        divisor
    };
    let (kind, resource) = selector
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {}", selector.resource))?;
    let supported = matches!(resource, "cpu" | "memory" | "ephemeral-storage")
        || resource.starts_with("hugepages-");
    if !supported || !matches!(kind, "limits" | "requests") {
        return Err(format!(
            "unsupported container resource : {}",
            selector.resource
        ));
    }
    let resources = container.resources.as_ref();
    let declared = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        _ => resources.and_then(|r| r.requests.as_ref()),
    }
    .and_then(|m| m.get(resource));
    let value = match (declared, kind) {
        (Some(q), _) => parse(q)?,
        (None, "limits") => match allocatable.and_then(|a| a.get(resource)) {
            Some(q) => parse(q)?,
            None => Quantity::ZERO,
        },
        (None, _) => Quantity::ZERO,
    };
    let (numerator, denominator) = if resource == "cpu" {
        (value.milli_value(), divisor.milli_value())
    } else {
        (value.value(), divisor.value())
    };
    if denominator <= 0 {
        return Err(format!(
            "invalid divisor {} for {}",
            selector
                .divisor
                .as_ref()
                .map(|d| d.0.as_str())
                .unwrap_or(""),
            selector.resource
        ));
    }
    Ok(div_ceil(numerator, denominator).to_string())
}

fn parse(quantity: &ApiQuantity) -> Result<Quantity, String> {
    Quantity::parse(&quantity.0).ok_or_else(|| format!("invalid quantity {:?}", quantity.0))
}

/// The container of `pod` named `name` (regular or init), for `resourceFieldRef`s in
/// volumes, which name their container.
pub fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// The node's allocatable resources, read from its Node object (the node status loop
/// keeps them current).
pub async fn node_allocatable(client: &kube::Client, node_name: &str) -> Result<Allocatable> {
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let node = nodes.get(node_name).await.map_err(|err| {
        Error::Other(format!(
            "reading node {node_name:?} for its allocatable resources: {}",
            super::api_message(&err)
        ))
    })?;
    Ok(node.status.and_then(|s| s.allocatable).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                uid: Some("1234".into()),
                labels: Some(BTreeMap::from([
                    ("app".into(), "web".into()),
                    ("tier".into(), "front \"end\"".into()),
                ])),
                annotations: Some(BTreeMap::from([("note".into(), "a\nb\u{1}".into())])),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, ApiQuantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ApiQuantity(v.to_string())))
            .collect()
    }

    fn selector(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector {
            resource: resource.into(),
            divisor: divisor.map(|d| ApiQuantity(d.into())),
            container_name: None,
        }
    }

    #[test]
    fn metadata_fields() {
        let pod = pod();
        assert_eq!(metadata_field(&pod, "metadata.name").unwrap(), "web-0");
        assert_eq!(metadata_field(&pod, "metadata.namespace").unwrap(), "shop");
        assert_eq!(metadata_field(&pod, "metadata.uid").unwrap(), "1234");
        assert_eq!(
            metadata_field(&pod, "metadata.labels").unwrap(),
            "app=\"web\"\ntier=\"front \\\"end\\\"\""
        );
        assert_eq!(
            metadata_field(&pod, "metadata.annotations").unwrap(),
            "note=\"a\\nb\\x01\""
        );
        assert_eq!(
            metadata_field(&pod, "metadata.labels['app']").unwrap(),
            "web"
        );
        assert_eq!(
            metadata_field(&pod, "metadata.annotations['missing']").unwrap(),
            ""
        );
        assert_eq!(
            metadata_field(&pod, "metadata.name['x']").unwrap_err(),
            "fieldPath \"metadata.name['x']\" does not support subscript"
        );
        assert_eq!(
            metadata_field(&pod, "spec.nodeName").unwrap_err(),
            "unsupported fieldPath: spec.nodeName"
        );
    }

    #[test]
    fn resources_with_divisors_round_up() {
        let container = Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                limits: Some(quantities(&[("cpu", "250m"), ("memory", "64Mi")])),
                requests: Some(quantities(&[("cpu", "100m")])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        };
        let value = |resource, divisor| {
            container_resource(&selector(resource, divisor), &container, None).unwrap()
        };
        assert_eq!(value("limits.cpu", None), "1");
        assert_eq!(value("limits.cpu", Some("1m")), "250");
        assert_eq!(value("requests.cpu", Some("1m")), "100");
        assert_eq!(value("limits.memory", None), "67108864");
        assert_eq!(value("limits.memory", Some("1Mi")), "64");
        assert_eq!(value("limits.memory", Some("1M")), "68");
        assert_eq!(value("requests.memory", None), "0");
        assert!(container_resource(&selector("limits.gpu", None), &container, None).is_err());
    }

    #[test]
    fn unset_limits_default_to_node_allocatable() {
        let container = Container::default();
        let allocatable = quantities(&[("cpu", "2"), ("memory", "4Gi")]);
        let memory = selector("limits.memory", Some("1Mi"));
        assert!(needs_allocatable(&memory, &container));
        assert!(!needs_allocatable(
            &selector("requests.cpu", None),
            &container
        ));
        assert_eq!(
            container_resource(&memory, &container, Some(&allocatable)).unwrap(),
            "4096"
        );
        assert_eq!(
            container_resource(
                &selector("limits.cpu", Some("1m")),
                &container,
                Some(&allocatable)
            )
            .unwrap(),
            "2000"
        );
    }
}
