//! RoleBindings and ClusterRoleBindings: the referenced role and, in wide
//! output, the bound users, groups and service accounts. Roles and
//! ClusterRoles have no dedicated printer upstream (NAME, CREATED AT).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::since;
use crate::fields::{array_at, creation_timestamp, name, str_at};

pub(crate) fn binding_columns(cluster: bool) -> Vec<Column> {
    let (role, users, groups, service_accounts) = if cluster {
        (
            "ClusterRoleBinding references a ClusterRole, but not contain it.  It can reference a ClusterRole in the global namespace, and adds who information via Subject.",
            "Users in the clusterRoleBinding",
            "Groups in the clusterRoleBinding",
            "ServiceAccounts in the clusterRoleBinding",
        )
    } else {
        (
            "RoleBinding references a role, but does not contain it.  It can reference a Role in the same namespace or a ClusterRole in the global namespace. It adds who information via Subjects and namespace information by which namespace it exists in.  RoleBindings in a given namespace only have effect in that namespace.",
            "Users in the roleBinding",
            "Groups in the roleBinding",
            "ServiceAccounts in the roleBinding",
        )
    };
    vec![
        NAME,
        Column::string("Role", role),
        AGE,
        Column::string("Users", users).wide(),
        Column::string("Groups", groups).wide(),
        Column::string("ServiceAccounts", service_accounts).wide(),
    ]
}

pub(crate) fn binding_cells(binding: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in array_at(binding, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{subject_name}",
                str_at(subject, &["namespace"])
            )),
            _ => {}
        }
    }
    vec![
        json!(name(binding)),
        json!(format!(
            "{}/{}",
            str_at(binding, &["roleRef", "kind"]),
            str_at(binding, &["roleRef", "name"])
        )),
        json!(since(creation_timestamp(binding), now)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}
