//! Cluster plumbing objects: Leases, PriorityClasses, RuntimeClasses,
//! admission webhook configurations and CertificateSigningRequests.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::{human_duration, since};
use crate::fields::{
    array_at, creation_timestamp, int_at, len_at, name, opt_bool_at, opt_int_at, opt_str_at, str_at,
};

pub(crate) fn lease_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Holder", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
        AGE,
    ]
}

pub(crate) fn lease_cells(lease: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(lease)),
        json!(str_at(lease, &["spec", "holderIdentity"])),
        json!(since(creation_timestamp(lease), now)),
    ]
}

pub(crate) fn priority_class_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::integer("Value", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
        Column::boolean("Global-Default", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
        AGE,
        Column::string("PreemptionPolicy", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
    ]
}

pub(crate) fn priority_class_cells(class: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(class)),
        json!(int_at(class, &["value"])),
        json!(opt_bool_at(class, &["globalDefault"]).unwrap_or(false)),
        json!(since(creation_timestamp(class), now)),
        json!(opt_str_at(class, &["preemptionPolicy"]).unwrap_or("PreemptLowerPriority")),
    ]
}

pub(crate) fn runtime_class_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Handler", "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."),
        AGE,
    ]
}

pub(crate) fn runtime_class_cells(class: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(class)),
        json!(str_at(class, &["handler"])),
        json!(since(creation_timestamp(class), now)),
    ]
}

pub(crate) fn webhook_configuration_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::integer(
            "Webhooks",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        AGE,
    ]
}

pub(crate) fn webhook_configuration_cells(config: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(config)),
        json!(len_at(config, &["webhooks"])),
        json!(since(creation_timestamp(config), now)),
    ]
}

pub(crate) fn certificate_signing_request_columns() -> Vec<Column> {
    vec![
        NAME,
        AGE,
        Column::string("SignerName", "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`."),
        Column::string("Requestor", "Name of the user that created the request."),
        Column::string("RequestedDuration", "Requested duration of validity of the issued certificate."),
        Column::string("Condition", "Conditions applied to the request (Approved, Denied, Failed, Issued)."),
    ]
}

/// "Approved,Issued", "Denied", "Pending", ... in upstream's precedence.
fn csr_condition(csr: &Value) -> String {
    let conditions = array_at(csr, &["status", "conditions"]);
    let has = |type_: &str| conditions.iter().any(|c| str_at(c, &["type"]) == type_);
    let mut status = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

pub(crate) fn certificate_signing_request_cells(csr: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let signer = opt_str_at(csr, &["spec", "signerName"])
        .filter(|s| !s.is_empty())
        .unwrap_or("<none>");
    let requested = opt_int_at(csr, &["spec", "expirationSeconds"])
        .map(|seconds| human_duration(chrono::Duration::seconds(seconds)))
        .unwrap_or_else(|| "<none>".to_string());
    vec![
        json!(name(csr)),
        json!(since(creation_timestamp(csr), now)),
        json!(signer),
        json!(str_at(csr, &["spec", "username"])),
        json!(requested),
        json!(csr_condition(csr)),
    ]
}
