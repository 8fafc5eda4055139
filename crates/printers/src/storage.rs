//! Storage objects: PersistentVolumes, PersistentVolumeClaims, StorageClasses,
//! VolumeAttachments, CSIDrivers and CSINodes.
//!
//! Where the API would have defaulted a missing field before upstream printed
//! it (phase Pending, reclaim policy Retain, volume mode Filesystem), the
//! default is printed too.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::since;
use crate::fields::{
    array_at, at, creation_timestamp, int_or_string, is_deleting, len_at, name, opt_bool_at,
    opt_str_at, str_at,
};

const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Access modes abbreviated in upstream's fixed order: "RWO,ROX,RWX,RWOP".
fn access_modes(modes: &[Value]) -> String {
    let has = |mode: &str| modes.iter().any(|m| m.as_str() == Some(mode));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `value`, or the API default when it is empty.
fn non_empty_or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

/// Storage class from the beta annotation, else `spec.storageClassName`.
fn storage_class(obj: &Value) -> &str {
    opt_str_at(obj, &["metadata", "annotations", BETA_CLASS_ANNOTATION])
        .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]))
}

fn storage_quantity(resources: Option<&Value>) -> String {
    resources
        .and_then(|r| r.get("storage"))
        .map(int_or_string)
        .unwrap_or_else(|| "0".to_string())
}

pub(crate) fn persistent_volume_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Capacity", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
        Column::string("Access Modes", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
        Column::string("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
        Column::string("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
        Column::string("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
        Column::string("StorageClass", "StorageClass of the pv"),
        Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        Column::string("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
        AGE,
        Column::string("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.").wide(),
    ]
}

pub(crate) fn persistent_volume_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match at(pv, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if is_deleting(pv) {
        "Terminating"
    } else {
        non_empty_or(str_at(pv, &["status", "phase"]), "Pending")
    };
    vec![
        json!(name(pv)),
        json!(storage_quantity(at(pv, &["spec", "capacity"]))),
        json!(access_modes(array_at(pv, &["spec", "accessModes"]))),
        json!(non_empty_or(
            str_at(pv, &["spec", "persistentVolumeReclaimPolicy"]),
            "Retain"
        )),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(opt_str_at(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        json!(str_at(pv, &["status", "reason"])),
        json!(since(creation_timestamp(pv), now)),
        json!(opt_str_at(pv, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

pub(crate) fn persistent_volume_claim_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Status", "phase represents the current phase of PersistentVolumeClaim."),
        Column::string("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
        Column::string("Capacity", "capacity represents the actual resources of the underlying volume."),
        Column::string("Access Modes", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
        Column::string("StorageClass", "StorageClass of the pvc"),
        Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        AGE,
        Column::string("VolumeMode", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.").wide(),
    ]
}

pub(crate) fn persistent_volume_claim_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if is_deleting(pvc) {
        "Terminating"
    } else {
        non_empty_or(str_at(pvc, &["status", "phase"]), "Pending")
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            storage_quantity(at(pvc, &["status", "capacity"])),
            access_modes(array_at(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        json!(name(pvc)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(opt_str_at(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        json!(since(creation_timestamp(pvc), now)),
        json!(opt_str_at(pvc, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

pub(crate) fn storage_class_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Provisioner", "provisioner indicates the type of the provisioner."),
        Column::string("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
        Column::string("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
        Column::string("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
        AGE,
    ]
}

pub(crate) fn storage_class_cells(class: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| opt_str_at(class, &["metadata", "annotations", key]) == Some("true"));
    let display_name = if is_default {
        format!("{} (default)", name(class))
    } else {
        name(class).to_string()
    };
    vec![
        json!(display_name),
        json!(str_at(class, &["provisioner"])),
        json!(opt_str_at(class, &["reclaimPolicy"]).unwrap_or("Delete")),
        json!(opt_str_at(class, &["volumeBindingMode"]).unwrap_or("Immediate")),
        json!(opt_bool_at(class, &["allowVolumeExpansion"]).unwrap_or(false)),
        json!(since(creation_timestamp(class), now)),
    ]
}

pub(crate) fn volume_attachment_columns() -> Vec<Column> {
    vec![
        NAME,
        Column { format: "name", ..Column::string("Attacher", "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().") },
        Column::string("PV", "persistentVolumeName represents the name of the persistent volume to attach."),
        Column::string("Node", "nodeName represents the node that the volume should be attached to."),
        Column::boolean("Attached", "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher."),
        AGE,
    ]
}

pub(crate) fn volume_attachment_cells(attachment: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(attachment)),
        json!(str_at(attachment, &["spec", "attacher"])),
        json!(str_at(
            attachment,
            &["spec", "source", "persistentVolumeName"]
        )),
        json!(str_at(attachment, &["spec", "nodeName"])),
        json!(opt_bool_at(attachment, &["status", "attached"]).unwrap_or(false)),
        json!(since(creation_timestamp(attachment), now)),
    ]
}

pub(crate) fn csi_driver_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::boolean("AttachRequired", "attachRequired indicates this CSI volume driver requires an attach operation."),
        Column::boolean("PodInfoOnMount", "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations."),
        Column::boolean("StorageCapacity", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report."),
        Column::string("TokenRequests", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication."),
        Column::boolean("RequiresRepublish", "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume."),
        Column::string("Modes", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports."),
        AGE,
    ]
}

pub(crate) fn csi_driver_cells(driver: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let modes: Vec<&str> = array_at(driver, &["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The API defaults an empty list to [Persistent].
    let modes = if modes.is_empty() {
        "Persistent".to_string()
    } else {
        modes.join(",")
    };
    let token_requests = match at(driver, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(requests) => requests
            .iter()
            .map(|r| str_at(r, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    vec![
        json!(name(driver)),
        json!(opt_bool_at(driver, &["spec", "attachRequired"]).unwrap_or(true)),
        json!(opt_bool_at(driver, &["spec", "podInfoOnMount"]).unwrap_or(false)),
        json!(opt_bool_at(driver, &["spec", "storageCapacity"]).unwrap_or(false)),
        json!(token_requests),
        json!(opt_bool_at(driver, &["spec", "requiresRepublish"]).unwrap_or(false)),
        json!(modes),
        json!(since(creation_timestamp(driver), now)),
    ]
}

pub(crate) fn csi_node_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::integer(
            "Drivers",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        AGE,
    ]
}

pub(crate) fn csi_node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(node)),
        json!(len_at(node, &["spec", "drivers"])),
        json!(since(creation_timestamp(node), now)),
    ]
}
