//! Which printer handles which resource: a closed list keyed by API group and
//! plural, with the default NAME/CREATED AT printer for everything else
//! (custom resources, Roles, LimitRanges, CRDs, ...).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::columns::{default_columns, Column};
use crate::fields::{creation_timestamp, name};
use crate::{cluster, config, event, ingress, node, pod, rbac, service, storage, workload};

/// A resource kind with its own upstream printer, or [`Printer::Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Printer {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Namespace,
    Event,
    EventsApiEvent,
    ConfigMap,
    Secret,
    ServiceAccount,
    ResourceQuota,
    PersistentVolume,
    PersistentVolumeClaim,
    ReplicationController,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    ControllerRevision,
    Job,
    CronJob,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    Ingress,
    IngressClass,
    NetworkPolicy,
    Lease,
    PriorityClass,
    RuntimeClass,
    StorageClass,
    VolumeAttachment,
    CsiDriver,
    CsiNode,
    RoleBinding,
    ClusterRoleBinding,
    WebhookConfiguration,
    CertificateSigningRequest,
    Default,
}

impl Printer {
    /// The printer for a resource given its API group ("" = core) and plural.
    pub(crate) fn for_resource(group: &str, plural: &str) -> Self {
        match (group, plural) {
            ("", "pods") => Self::Pod,
            ("", "services") => Self::Service,
            ("", "endpoints") => Self::Endpoints,
            ("", "nodes") => Self::Node,
            ("", "namespaces") => Self::Namespace,
            ("", "events") => Self::Event,
            ("", "configmaps") => Self::ConfigMap,
            ("", "secrets") => Self::Secret,
            ("", "serviceaccounts") => Self::ServiceAccount,
            ("", "resourcequotas") => Self::ResourceQuota,
            ("", "persistentvolumes") => Self::PersistentVolume,
            ("", "persistentvolumeclaims") => Self::PersistentVolumeClaim,
            ("", "replicationcontrollers") => Self::ReplicationController,
            ("events.k8s.io", "events") => Self::EventsApiEvent,
            ("discovery.k8s.io", "endpointslices") => Self::EndpointSlice,
            ("apps", "deployments") => Self::Deployment,
            ("apps", "replicasets") => Self::ReplicaSet,
            ("apps", "daemonsets") => Self::DaemonSet,
            ("apps", "statefulsets") => Self::StatefulSet,
            ("apps", "controllerrevisions") => Self::ControllerRevision,
            ("batch", "jobs") => Self::Job,
            ("batch", "cronjobs") => Self::CronJob,
            ("autoscaling", "horizontalpodautoscalers") => Self::HorizontalPodAutoscaler,
            ("policy", "poddisruptionbudgets") => Self::PodDisruptionBudget,
            ("networking.k8s.io", "ingresses") => Self::Ingress,
            ("networking.k8s.io", "ingressclasses") => Self::IngressClass,
            ("networking.k8s.io", "networkpolicies") => Self::NetworkPolicy,
            ("coordination.k8s.io", "leases") => Self::Lease,
            ("scheduling.k8s.io", "priorityclasses") => Self::PriorityClass,
            ("node.k8s.io", "runtimeclasses") => Self::RuntimeClass,
            ("storage.k8s.io", "storageclasses") => Self::StorageClass,
            ("storage.k8s.io", "volumeattachments") => Self::VolumeAttachment,
            ("storage.k8s.io", "csidrivers") => Self::CsiDriver,
            ("storage.k8s.io", "csinodes") => Self::CsiNode,
            ("rbac.authorization.k8s.io", "rolebindings") => Self::RoleBinding,
            ("rbac.authorization.k8s.io", "clusterrolebindings") => Self::ClusterRoleBinding,
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations" | "validatingwebhookconfigurations",
            ) => Self::WebhookConfiguration,
            ("certificates.k8s.io", "certificatesigningrequests") => {
                Self::CertificateSigningRequest
            }
            _ => Self::Default,
        }
    }

    /// Column definitions, wide columns included.
    pub(crate) fn columns(self) -> Vec<Column> {
        match self {
            Self::Pod => pod::columns(),
            Self::Service => service::service_columns(),
            Self::Endpoints => service::endpoints_columns(),
            Self::EndpointSlice => service::endpoint_slice_columns(),
            Self::Node => node::columns(),
            Self::Namespace => config::namespace_columns(),
            Self::Event | Self::EventsApiEvent => event::columns(),
            Self::ConfigMap => config::config_map_columns(),
            Self::Secret => config::secret_columns(),
            Self::ServiceAccount => config::service_account_columns(),
            Self::ResourceQuota => config::resource_quota_columns(),
            Self::PersistentVolume => storage::persistent_volume_columns(),
            Self::PersistentVolumeClaim => storage::persistent_volume_claim_columns(),
            Self::ReplicationController | Self::ReplicaSet => workload::replica_set_columns(),
            Self::Deployment => workload::deployment_columns(),
            Self::DaemonSet => workload::daemon_set_columns(),
            Self::StatefulSet => workload::stateful_set_columns(),
            Self::ControllerRevision => workload::controller_revision_columns(),
            Self::Job => workload::job_columns(),
            Self::CronJob => workload::cron_job_columns(),
            Self::HorizontalPodAutoscaler => workload::horizontal_pod_autoscaler_columns(),
            Self::PodDisruptionBudget => workload::pod_disruption_budget_columns(),
            Self::Ingress => ingress::ingress_columns(),
            Self::IngressClass => ingress::ingress_class_columns(),
            Self::NetworkPolicy => ingress::network_policy_columns(),
            Self::Lease => cluster::lease_columns(),
            Self::PriorityClass => cluster::priority_class_columns(),
            Self::RuntimeClass => cluster::runtime_class_columns(),
            Self::StorageClass => storage::storage_class_columns(),
            Self::VolumeAttachment => storage::volume_attachment_columns(),
            Self::CsiDriver => storage::csi_driver_columns(),
            Self::CsiNode => storage::csi_node_columns(),
            Self::RoleBinding => rbac::binding_columns(false),
            Self::ClusterRoleBinding => rbac::binding_columns(true),
            Self::WebhookConfiguration => cluster::webhook_configuration_columns(),
            Self::CertificateSigningRequest => cluster::certificate_signing_request_columns(),
            Self::Default => default_columns(),
        }
    }

    /// Row cells for one object, aligned with [`Printer::columns`].
    pub(crate) fn cells(self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        match self {
            Self::Pod => pod::cells(obj, now),
            Self::Service => service::service_cells(obj, now),
            Self::Endpoints => service::endpoints_cells(obj, now),
            Self::EndpointSlice => service::endpoint_slice_cells(obj, now),
            Self::Node => node::cells(obj, now),
            Self::Namespace => config::namespace_cells(obj, now),
            Self::Event => event::cells(obj, now, false),
            Self::EventsApiEvent => event::cells(obj, now, true),
            Self::ConfigMap => config::config_map_cells(obj, now),
            Self::Secret => config::secret_cells(obj, now),
            Self::ServiceAccount => config::service_account_cells(obj, now),
            Self::ResourceQuota => config::resource_quota_cells(obj, now),
            Self::PersistentVolume => storage::persistent_volume_cells(obj, now),
            Self::PersistentVolumeClaim => storage::persistent_volume_claim_cells(obj, now),
            Self::ReplicationController => workload::replica_set_cells(obj, now, true),
            Self::ReplicaSet => workload::replica_set_cells(obj, now, false),
            Self::Deployment => workload::deployment_cells(obj, now),
            Self::DaemonSet => workload::daemon_set_cells(obj, now),
            Self::StatefulSet => workload::stateful_set_cells(obj, now),
            Self::ControllerRevision => workload::controller_revision_cells(obj, now),
            Self::Job => workload::job_cells(obj, now),
            Self::CronJob => workload::cron_job_cells(obj, now),
            Self::HorizontalPodAutoscaler => workload::horizontal_pod_autoscaler_cells(obj, now),
            Self::PodDisruptionBudget => workload::pod_disruption_budget_cells(obj, now),
            Self::Ingress => ingress::ingress_cells(obj, now),
            Self::IngressClass => ingress::ingress_class_cells(obj, now),
            Self::NetworkPolicy => ingress::network_policy_cells(obj, now),
            Self::Lease => cluster::lease_cells(obj, now),
            Self::PriorityClass => cluster::priority_class_cells(obj, now),
            Self::RuntimeClass => cluster::runtime_class_cells(obj, now),
            Self::StorageClass => storage::storage_class_cells(obj, now),
            Self::VolumeAttachment => storage::volume_attachment_cells(obj, now),
            Self::CsiDriver => storage::csi_driver_cells(obj, now),
            Self::CsiNode => storage::csi_node_cells(obj, now),
            Self::RoleBinding | Self::ClusterRoleBinding => rbac::binding_cells(obj, now),
            Self::WebhookConfiguration => cluster::webhook_configuration_cells(obj, now),
            Self::CertificateSigningRequest => cluster::certificate_signing_request_cells(obj, now),
            Self::Default => default_cells(obj),
        }
    }

    /// Row conditions (only finished pods carry any).
    pub(crate) fn row_conditions(self, obj: &Value) -> Option<Value> {
        match self {
            Self::Pod => pod::row_conditions(obj),
            _ => None,
        }
    }
}

/// NAME and CREATED AT (RFC 3339, UTC; Go's zero time when unset), as the
/// default table convertor prints them.
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = creation_timestamp(obj)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(name(obj)), json!(created)]
}
