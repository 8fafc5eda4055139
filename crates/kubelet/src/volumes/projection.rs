//! What goes into configMap, secret and downwardAPI volumes (alone or as projected
//! sources): the files, as a payload for the atomic writer, from objects already read.
//! Pure functions, with upstream's rules: no `items` means every key; an item naming a
//! missing key fails unless the source is optional; modes come from the item, else the
//! volume's `defaultMode`, else 0644.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret};

use super::atomic_writer::{FileProjection, Payload};
use super::downward_api::{self, Allocatable};

/// Upstream's default for every API-data volume, secrets included.
pub const DEFAULT_MODE: i32 = 0o644;

pub fn config_map_payload(
    items: Option<&[KeyToPath]>,
    config_map: &ConfigMap,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let mut data: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (key, value) in config_map.data.iter().flatten() {
        data.insert(key, value.as_bytes());
    }
    for (key, value) in config_map.binary_data.iter().flatten() {
        data.insert(key, &value.0);
    }
    keyed_payload(items, &data, default_mode, optional, |key| {
        format!("configmap references non-existent config key: {key}")
    })
}

pub fn secret_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let data: BTreeMap<&str, &[u8]> = secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.as_str(), value.0.as_slice()))
        .collect();
    keyed_payload(items, &data, default_mode, optional, |key| {
        format!("references non-existent secret key: {key}")
    })
}

fn keyed_payload(
    items: Option<&[KeyToPath]>,
    data: &BTreeMap<&str, &[u8]>,
    default_mode: i32,
    optional: bool,
    missing: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let file = |bytes: &[u8], mode: i32| FileProjection {
        data: bytes.to_vec(),
        mode: mode_bits(mode),
    };
    let mut payload = Payload::new();
    match items {
        None | Some([]) => {
            for (key, bytes) in data {
                payload.insert(key.to_string(), file(bytes, default_mode));
            }
        }
        Some(items) => {
            for item in items {
                match data.get(item.key.as_str()) {
                    Some(bytes) => {
                        let mode = item.mode.unwrap_or(default_mode);
                        payload.insert(item.path.clone(), file(bytes, mode));
                    }
                    None if optional => {}
                    None => return Err(missing(&item.key)),
                }
            }
        }
    }
    Ok(payload)
}

/// Whether any `resourceFieldRef` of `items` reads a limit its container leaves unset.
pub fn downward_api_needs_allocatable(items: &[DownwardAPIVolumeFile], pod: &Pod) -> bool {
    items.iter().any(|item| {
        item.resource_field_ref.as_ref().is_some_and(|selector| {
            let name = selector.container_name.as_deref().unwrap_or_default();
            downward_api::find_container(pod, name)
                .is_some_and(|c| downward_api::needs_allocatable(selector, c))
        })
    })
}

/// The files of a downwardAPI volume or source. Every item is tried; the errors of all
/// failing items are reported together.
pub fn downward_api_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    default_mode: i32,
    allocatable: Option<&Allocatable>,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(field) = &item.field_ref {
            downward_api::check_field_api_version(field.api_version.as_deref())
                .and_then(|()| downward_api::metadata_field(pod, &field.field_path))
        } else if let Some(selector) = &item.resource_field_ref {
            let name = selector.container_name.as_deref().unwrap_or_default();
            match downward_api::find_container(pod, name) {
                Some(container) => {
                    downward_api::container_resource(selector, container, allocatable)
                }
                None => Err(format!("container {name} not found")),
            }
        } else {
            Err(format!(
                "downwardAPI item {:?} has neither fieldRef nor resourceFieldRef",
                item.path
            ))
        };
        match value {
            Ok(text) => {
                let mode = mode_bits(item.mode.unwrap_or(default_mode));
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: text.into_bytes(),
                        mode,
                    },
                );
            }
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(payload)
    } else {
        Err(errors.join("; "))
    }
}

/// API modes are `int32`s validated to 0..=0777; keep only permission bits regardless.
pub fn mode_bits(mode: i32) -> u32 {
    (mode as u32) & 0o777
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    fn config_map() -> ConfigMap {
        ConfigMap {
            data: Some(BTreeMap::from([
                ("app.conf".into(), "port=80".into()),
                ("empty".into(), String::new()),
            ])),
            binary_data: Some(BTreeMap::from([(
                "logo.bin".into(),
                ByteString(vec![0, 159, 146]),
            )])),
            ..ConfigMap::default()
        }
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    fn text(payload: &Payload, path: &str) -> (String, u32) {
        let file = &payload[path];
        (String::from_utf8_lossy(&file.data).into_owned(), file.mode)
    }

    #[test]
    fn every_key_without_items() {
        let payload = config_map_payload(None, &config_map(), 0o640, false).unwrap();
        assert_eq!(payload.len(), 3);
        assert_eq!(text(&payload, "app.conf"), ("port=80".into(), 0o640));
        assert_eq!(payload["logo.bin"].data, vec![0, 159, 146]);
        assert_eq!(text(&payload, "empty"), (String::new(), 0o640));
    }

    #[test]
    fn items_pick_keys_paths_and_modes() {
        let items = [
            item("app.conf", "conf/app.conf", Some(0o600)),
            item("logo.bin", "logo", None),
        ];
        let payload = config_map_payload(Some(&items), &config_map(), DEFAULT_MODE, false).unwrap();
        assert_eq!(
            payload.keys().collect::<Vec<_>>(),
            vec!["conf/app.conf", "logo"]
        );
        assert_eq!(payload["conf/app.conf"].mode, 0o600);
        assert_eq!(payload["logo"].mode, 0o644);
    }

    #[test]
    fn missing_keys_fail_unless_optional() {
        let items = [item("nope", "nope", None), item("empty", "e", None)];
        assert_eq!(
            config_map_payload(Some(&items), &config_map(), DEFAULT_MODE, false).unwrap_err(),
            "configmap references non-existent config key: nope"
        );
        let payload = config_map_payload(Some(&items), &config_map(), DEFAULT_MODE, true).unwrap();
        assert_eq!(payload.keys().collect::<Vec<_>>(), vec!["e"]);

        let secret = Secret {
            data: Some(BTreeMap::from([(
                "token".into(),
                ByteString(b"s3cr3t".to_vec()),
            )])),
            ..Secret::default()
        };
        assert_eq!(
            secret_payload(Some(&items), &secret, DEFAULT_MODE, false).unwrap_err(),
            "references non-existent secret key: nope"
        );
        let payload = secret_payload(None, &secret, 0o400, false).unwrap();
        assert_eq!(text(&payload, "token"), ("s3cr3t".into(), 0o400));
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(BTreeMap::from([("cpu".into(), Quantity("250m".into()))])),
                        ..ResourceRequirements::default()
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn field(path: &str, field_path: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: field_path.into(),
            }),
            ..DownwardAPIVolumeFile::default()
        }
    }

    fn resource(path: &str, container: &str, resource: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some(container.into()),
                resource: resource.into(),
                divisor: Some(Quantity("1m".into())),
            }),
            mode: Some(0o400),
            ..DownwardAPIVolumeFile::default()
        }
    }

    #[test]
    fn downward_api_files() {
        let pod = pod();
        let items = [
            field("name", "metadata.name"),
            field("labels", "metadata.labels"),
            resource("cpu_request", "app", "requests.cpu"),
            resource("cpu_limit", "app", "limits.cpu"),
        ];
        assert!(downward_api_needs_allocatable(&items, &pod));
        let allocatable = BTreeMap::from([("cpu".into(), Quantity("2".into()))]);
        let payload = downward_api_payload(&items, &pod, DEFAULT_MODE, Some(&allocatable)).unwrap();
        assert_eq!(text(&payload, "name"), ("web".into(), 0o644));
        assert_eq!(text(&payload, "labels").0, "app=\"web\"");
        assert_eq!(text(&payload, "cpu_request"), ("250".into(), 0o400));
        assert_eq!(text(&payload, "cpu_limit").0, "2000");

        let bad = [
            field("x", "spec.nodeName"),
            resource("y", "sidecar", "limits.cpu"),
        ];
        assert!(!downward_api_needs_allocatable(&bad, &pod));
        assert_eq!(
            downward_api_payload(&bad, &pod, DEFAULT_MODE, None).unwrap_err(),
            "unsupported fieldPath: spec.nodeName; container sidecar not found"
        );
    }
}
