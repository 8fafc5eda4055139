//! Binding subjects: who a RoleBinding or ClusterRoleBinding grants its role to, and how
//! upstream describes them in allow reasons.
//!
//! A `User` subject matches the user name; a `Group` subject matches one of the user's
//! groups (`system:authenticated`, `system:serviceaccounts`, `system:serviceaccounts:<ns>`
//! come from the authenticator like any other group); a `ServiceAccount` subject
//! `{namespace, name}` matches the user `system:serviceaccount:<namespace>:<name>`, its
//! namespace defaulting to the RoleBinding's (a ClusterRoleBinding has none to lend).

use serde_json::Value;

/// Prefix of service account user names.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// What one subject of a binding names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `kind: User`.
    User(String),
    /// `kind: Group`.
    Group(String),
    /// `kind: ServiceAccount`; `namespace` as written (may be empty).
    ServiceAccount { namespace: String, name: String },
    /// Any other kind; never matches.
    Unknown { kind: String, name: String },
}

impl Subject {
    /// Parses one entry of a binding's `subjects`.
    pub fn from_json(v: &Value) -> Subject {
        let field = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let name = field("name");
        match v.get("kind").and_then(Value::as_str).unwrap_or("") {
            "User" => Subject::User(name),
            "Group" => Subject::Group(name),
            "ServiceAccount" => Subject::ServiceAccount {
                namespace: field("namespace"),
                name,
            },
            kind => Subject::Unknown {
                kind: kind.to_string(),
                name,
            },
        }
    }

    /// The subjects of a binding object.
    pub fn list_from_binding(binding: &Value) -> Vec<Subject> {
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .map(|subjects| subjects.iter().map(Subject::from_json).collect())
            .unwrap_or_default()
    }

    /// Whether this subject names the user, for a binding in `binding_namespace`
    /// (`""` for ClusterRoleBindings). Upstream `appliesToUser`.
    pub fn applies_to(&self, user: &str, groups: &[String], binding_namespace: &str) -> bool {
        match self {
            Subject::User(name) => name == user,
            Subject::Group(name) => groups.iter().any(|g| g == name),
            Subject::ServiceAccount { .. } => {
                self.service_account_user(binding_namespace).as_deref() == Some(user)
            }
            Subject::Unknown { .. } => false,
        }
    }

    /// For a ServiceAccount subject, the user name it stands for in a binding in
    /// `binding_namespace`; `None` for other kinds or when no namespace is known.
    pub fn service_account_user(&self, binding_namespace: &str) -> Option<String> {
        let Subject::ServiceAccount { namespace, name } = self else {
            return None;
        };
        let namespace = if namespace.is_empty() {
            binding_namespace
        } else {
            namespace
        };
        (!namespace.is_empty()).then(|| service_account_user(namespace, name))
    }

    /// Upstream's `describeSubject`: `Group "system:masters"`,
    /// `ServiceAccount "name/namespace"` (sic: name first).
    pub fn describe(&self, binding_namespace: &str) -> String {
        match self {
            Subject::User(name) => format!("User {name:?}"),
            Subject::Group(name) => format!("Group {name:?}"),
            Subject::ServiceAccount { namespace, name } => {
                let namespace = if namespace.is_empty() {
                    binding_namespace
                } else {
                    namespace
                };
                format!("ServiceAccount {:?}", format!("{name}/{namespace}"))
            }
            Subject::Unknown { kind, name } => format!("{kind} {name:?}"),
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_match_and_describe() {
        let groups = vec!["system:authenticated".to_string(), "devs".to_string()];
        let user = Subject::from_json(
            &json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}),
        );
        assert!(user.applies_to("alice", &[], ""));
        assert!(!user.applies_to("bob", &groups, ""));
        assert_eq!(user.describe(""), r#"User "alice""#);

        let group = Subject::from_json(&json!({"kind": "Group", "name": "devs"}));
        assert!(group.applies_to("bob", &groups, ""));
        assert!(!group.applies_to("devs", &[], ""));

        let sa = Subject::from_json(
            &json!({"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}),
        );
        assert!(sa.applies_to("system:serviceaccount:ci:builder", &[], ""));
        assert!(sa.applies_to("system:serviceaccount:ci:builder", &[], "other"));
        assert!(!sa.applies_to("system:serviceaccount:ci:builder2", &[], ""));
        assert!(!sa.applies_to("builder", &[], "ci"));
        assert_eq!(sa.describe(""), r#"ServiceAccount "builder/ci""#);

        // Without a namespace the subject takes the RoleBinding's, and never matches in a
        // ClusterRoleBinding.
        let local = Subject::from_json(&json!({"kind": "ServiceAccount", "name": "default"}));
        assert!(local.applies_to("system:serviceaccount:dev:default", &[], "dev"));
        assert!(!local.applies_to("system:serviceaccount:dev:default", &[], "prod"));
        assert!(!local.applies_to("system:serviceaccount::default", &[], ""));
        assert_eq!(local.service_account_user(""), None);
        assert_eq!(local.describe("dev"), r#"ServiceAccount "default/dev""#);

        let odd = Subject::from_json(&json!({"kind": "Robot", "name": "alice"}));
        assert!(!odd.applies_to("alice", &[], ""));
    }
}
