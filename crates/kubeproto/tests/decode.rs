//! End-to-end decoding of real protobuf bodies built with `k8s-pb` + prost, compared with
//! the JSON Kubernetes produces, and checked against the `k8s-openapi` types.

use std::collections::BTreeMap;

use k3rs_kubeproto::{decode_object, decode_raw, Error, MEDIA_TYPE};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

/// Wraps an object like client-go does: magic, then `runtime.Unknown`.
fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn s(text: &str) -> Option<String> {
    Some(text.to_string())
}

/// Metadata the way Go's protobuf encoder writes it: every non-pointer string is present
/// even when empty, and a zero `creationTimestamp` is an empty message.
fn go_metadata(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

fn quantity(text: &str) -> Quantity {
    Quantity { string: s(text) }
}

fn int_or_string_int(value: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(value),
        str_val: s(""),
    }
}

fn int_or_string_str(value: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(value),
    }
}

#[test]
fn media_type_is_kubernetes_protobuf() {
    assert_eq!(MEDIA_TYPE, "application/vnd.kubernetes.protobuf");
}

#[test]
fn config_map_with_data_and_binary_data() {
    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ..go_metadata("settings", "default")
        }),
        data: BTreeMap::from([
            ("mode".to_string(), "fast".to_string()),
            ("empty".to_string(), String::new()),
        ]),
        binary_data: BTreeMap::from([("blob".to_string(), vec![0u8, 1, 2, 255])]),
        immutable: None,
    };
    let value = decode_object(&envelope("v1", "ConfigMap", &config_map)).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default", "labels": {"app": "web"}},
            "data": {"mode": "fast", "empty": ""},
            "binaryData": {"blob": "AAEC/w=="},
        })
    );
    let typed: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(value).unwrap();
    assert_eq!(typed.binary_data.unwrap()["blob"].0, vec![0u8, 1, 2, 255]);
}

#[test]
fn secret_bytes_become_base64() {
    let secret = core::Secret {
        metadata: Some(go_metadata("db", "prod")),
        data: BTreeMap::from([("password".to_string(), b"hunter2".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
        immutable: Some(true),
    };
    let value = decode_object(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "prod"},
            "data": {"password": "aHVudGVyMg=="},
            "type": "Opaque",
            "immutable": true,
        })
    );
    let typed: k8s_openapi::api::core::v1::Secret = serde_json::from_value(value).unwrap();
    assert_eq!(typed.data.unwrap()["password"].0, b"hunter2".to_vec());
}

#[test]
fn namespace() {
    let namespace = core::Namespace {
        metadata: Some(go_metadata("team-a", "")),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            ..Default::default()
        }),
    };
    let value = decode_object(&envelope("v1", "Namespace", &namespace)).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a"},
            "spec": {},
            "status": {},
        })
    );
    serde_json::from_value::<k8s_openapi::api::core::v1::Namespace>(value).unwrap();
}

fn web_container() -> core::Container {
    core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            name: s("http"),
            container_port: Some(80),
            protocol: s("TCP"),
            ..Default::default()
        }],
        env: vec![
            core::EnvVar {
                name: s("MODE"),
                value: s("fast"),
                value_from: None,
            },
            core::EnvVar {
                name: s("PASSWORD"),
                value: s(""),
                value_from: Some(core::EnvVarSource {
                    secret_key_ref: Some(core::SecretKeySelector {
                        local_object_reference: Some(core::LocalObjectReference { name: s("db") }),
                        key: s("password"),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
        ],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([
                ("cpu".to_string(), quantity("500m")),
                ("memory".to_string(), quantity("128Mi")),
            ]),
            requests: BTreeMap::from([("cpu".to_string(), quantity("100m"))]),
            ..Default::default()
        }),
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(int_or_string_int(80)),
                    scheme: s("HTTP"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(10),
            ..Default::default()
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                tcp_socket: Some(core::TcpSocketAction {
                    port: Some(int_or_string_str("http")),
                    host: s(""),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        image_pull_policy: s("IfNotPresent"),
        ..Default::default()
    }
}

#[test]
fn deployment_with_container_ports_env_resources_and_probes() {
    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let deployment = apps::Deployment {
        metadata: Some(go_metadata("web", "default")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector {
                match_labels: labels.clone(),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![web_container()],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(int_or_string_str("25%")),
                    max_surge: Some(int_or_string_int(1)),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let value = decode_object(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "fast"},
                            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "100m"},
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"},
                            "initialDelaySeconds": 5,
                            "periodSeconds": 10,
                        },
                        "readinessProbe": {"tcpSocket": {"port": "http"}},
                        "imagePullPolicy": "IfNotPresent",
                    }],
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1},
            },
        },
    });
    assert_eq!(value, expected);
    let typed: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(value).unwrap();
    let container = &typed.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()["cpu"]
            .0,
        "500m"
    );
}

#[test]
fn service_with_cluster_ips_and_named_target_port() {
    let service = core::Service {
        metadata: Some(go_metadata("web", "default")),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: Some(int_or_string_str("http")),
                ..Default::default()
            }],
            selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
            cluster_ip: s("10.43.0.10"),
            cluster_ips: vec!["10.43.0.10".to_string(), "fd00::10".to_string()],
            r#type: s("ClusterIP"),
            ip_families: vec!["IPv4".to_string(), "IPv6".to_string()],
            ..Default::default()
        }),
        status: None,
    };
    let value = decode_object(&envelope("v1", "Service", &service)).unwrap();
    assert_eq!(
        value["spec"],
        json!({
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
            "selector": {"app": "web"},
            "clusterIP": "10.43.0.10",
            "clusterIPs": ["10.43.0.10", "fd00::10"],
            "type": "ClusterIP",
            "ipFamilies": ["IPv4", "IPv6"],
        })
    );
    serde_json::from_value::<k8s_openapi::api::core::v1::Service>(value).unwrap();
}

#[test]
fn pod_with_host_ipc_time_and_inline_volume_source() {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_704_164_645),
                nanos: Some(0),
            }),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:spec":{"f:hostIPC":{}}}"#.to_vec()),
                }),
                ..Default::default()
            }],
            ..go_metadata("p", "default")
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                image: s("busybox"),
                ..Default::default()
            }],
            host_ipc: Some(true),
            volumes: vec![core::Volume {
                name: s("config"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: s("settings"),
                        }),
                        default_mode: Some(0o644),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
        status: None,
    };
    let value = decode_object(&envelope("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        value["metadata"]["creationTimestamp"],
        "2024-01-02T03:04:05Z"
    );
    assert_eq!(
        value["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:hostIPC": {}}})
    );
    assert_eq!(value["spec"]["hostIPC"], true);
    assert_eq!(
        value["spec"]["volumes"],
        json!([{"name": "config", "configMap": {"name": "settings", "defaultMode": 420}}])
    );
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(value).unwrap();
    assert_eq!(typed.spec.unwrap().host_ipc, Some(true));
}

#[test]
fn lease_with_micro_time() {
    let lease = coordination::Lease {
        metadata: Some(go_metadata("leader", "kube-system")),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(15),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(123_456_789),
            }),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let value = decode_object(&envelope("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    assert_eq!(
        value["spec"],
        json!({
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 15,
            "renewTime": "2024-01-02T03:04:05.123456Z",
            "leaseTransitions": 0,
        })
    );
    serde_json::from_value::<k8s_openapi::api::coordination::v1::Lease>(value).unwrap();
}

#[test]
fn token_request() {
    let request = authn::TokenRequest {
        metadata: Some(go_metadata("", "")),
        spec: Some(authn::TokenRequestSpec {
            audiences: vec!["https://kubernetes.default.svc".to_string()],
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        }),
        status: Some(authn::TokenRequestStatus {
            token: s(""),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    let value = decode_object(&envelope(
        "authentication.k8s.io/v1",
        "TokenRequest",
        &request,
    ))
    .unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            // Go writes the empty token and zero time; its JSON omits both.
            "status": {},
        })
    );
}

#[test]
fn delete_options_in_any_group_version() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("1234"),
            resource_version: None,
        }),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".to_string()],
        ..Default::default()
    };
    let expected = json!({
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "1234"},
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    });
    for api_version in ["meta.k8s.io/v1", "v1", "apps/v1"] {
        let value = decode_object(&envelope(api_version, "DeleteOptions", &options)).unwrap();
        let mut want = expected.clone();
        want["apiVersion"] = json!(api_version);
        want["kind"] = json!("DeleteOptions");
        assert_eq!(value, want, "{api_version}");
        serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>(
            value,
        )
        .unwrap();
    }
}

#[test]
fn decode_raw_by_api_version_and_kind() {
    let revision = apps::ControllerRevision {
        metadata: Some(go_metadata("web-1", "default")),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"replicas":2}}"#.to_vec()),
        }),
        revision: Some(1),
    };
    let value = decode_raw("apps/v1", "ControllerRevision", &revision.encode_to_vec()).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {"name": "web-1", "namespace": "default"},
            "data": {"spec": {"replicas": 2}},
            "revision": 1,
        })
    );
    serde_json::from_value::<k8s_openapi::api::apps::v1::ControllerRevision>(value).unwrap();
}

#[test]
fn custom_resource_definition_schema() {
    let string_schema = apiext::JsonSchemaProps {
        r#type: s("string"),
        default: Some(apiext::Json {
            raw: Some(br#""blue""#.to_vec()),
        }),
        ..Default::default()
    };
    let schema = apiext::JsonSchemaProps {
        r#type: s("object"),
        properties: BTreeMap::from([("color".to_string(), string_schema)]),
        additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..Default::default()
    };
    let crd = apiext::CustomResourceDefinition {
        metadata: Some(go_metadata("widgets.example.com", "")),
        spec: Some(apiext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(apiext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                kind: s("Widget"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![apiext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(apiext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let value = decode_object(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .unwrap();
    assert_eq!(
        value["spec"]["versions"][0]["schema"],
        json!({"openAPIV3Schema": {
            "type": "object",
            "properties": {"color": {"type": "string", "default": "blue"}},
            "additionalProperties": false,
            "x-kubernetes-preserve-unknown-fields": true,
        }})
    );
    serde_json::from_value::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >(value)
    .unwrap();
}

#[test]
fn bad_magic_is_an_error() {
    assert!(matches!(
        decode_object(b"{\"kind\":\"Pod\"}"),
        Err(Error::BadMagic)
    ));
    assert!(matches!(decode_object(b""), Err(Error::BadMagic)));
}

#[test]
fn unknown_kind_is_an_error() {
    let body = envelope("apps/v1", "Foo", &core::Namespace::default());
    let error = decode_object(&body).unwrap_err();
    assert_eq!(error.to_string(), "unknown kind \"apps/v1, Kind=Foo\"");
    assert!(decode_raw("v1", "", &[]).is_err());
    assert!(decode_raw("no.such.group/v1", "Pod", &[]).is_err());
}

#[test]
fn truncated_varint_is_an_error() {
    // ConfigMap field 4 (immutable, varint) with a varint that never ends.
    let error = decode_raw("v1", "ConfigMap", &[0x20, 0x80, 0x80]).unwrap_err();
    assert!(
        matches!(error, Error::Malformed { field: 4, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("k8s.io.api.core.v1.ConfigMap"),
        "{error}"
    );
}

#[test]
fn wrong_wire_type_and_truncated_length_are_errors() {
    // Field 1 (metadata, a message) sent as a varint.
    assert!(decode_raw("v1", "ConfigMap", &[0x08, 0x01]).is_err());
    // Field 1 with a length past the end.
    assert!(decode_raw("v1", "ConfigMap", &[0x0a, 0x10, 0x00]).is_err());
    // A truncated envelope.
    let body = envelope("v1", "ConfigMap", &core::ConfigMap::default());
    for len in 4..body.len() {
        let _ = decode_object(&body[..len]);
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let deployment = apps::Deployment {
        metadata: Some(go_metadata("web", "default")),
        spec: Some(apps::DeploymentSpec {
            template: Some(core::PodTemplateSpec {
                metadata: None,
                spec: Some(core::PodSpec {
                    containers: vec![web_container()],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let body = envelope("apps/v1", "Deployment", &deployment);
    // Flip every byte in turn and truncate everywhere: errors are fine, panics are not.
    let mut seed: u32 = 12345;
    for i in 4..body.len() {
        let mut mutated = body.clone();
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        mutated[i] ^= (seed >> 16) as u8 | 1;
        let _ = decode_object(&mutated);
        let _ = decode_object(&body[..i]);
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    // JSONSchemaProps nested through `not`, far beyond any real schema.
    let mut schema = apiext::JsonSchemaProps::default();
    for _ in 0..200 {
        schema = apiext::JsonSchemaProps {
            not: Some(Box::new(schema)),
            ..Default::default()
        };
    }
    let result = decode_raw(
        "apiextensions.k8s.io/v1",
        "JSONSchemaProps",
        &schema.encode_to_vec(),
    );
    assert!(matches!(result, Err(Error::TooDeep(_))), "{result:?}");
}

#[test]
fn responses_keep_unknown_fields_out() {
    // A field number the schema does not know (a newer Kubernetes) is skipped.
    let mut raw = core::Namespace {
        metadata: Some(go_metadata("x", "")),
        ..Default::default()
    }
    .encode_to_vec();
    raw.extend([0xf8, 0x3e, 0x01]); // field 999, varint 1
    let value = decode_raw("v1", "Namespace", &raw).unwrap();
    assert_eq!(
        value,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    );
}
