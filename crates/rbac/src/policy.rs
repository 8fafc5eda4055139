//! The policy snapshot and the authorization decision.
//!
//! [`Policy::new`] resolves every binding's role once and indexes bindings by subject
//! (user name, group name, and the user name a ServiceAccount subject stands for), per
//! namespace for RoleBindings. [`Policy::authorize`] then looks only at the bindings naming
//! the caller: a couple of hash lookups and a scan of their rules, no allocation beyond the
//! candidate list. The order of evaluation is upstream's (ClusterRoleBindings, then the
//! request namespace's RoleBindings, each in input order), so reasons name the same binding
//! kube-apiserver would.
//!
//! A Policy is immutable; the API server builds a new one when an RBAC object changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::attributes::{Attributes, Decision};
use crate::error::Error;
use crate::rule::Rule;
use crate::subject::Subject;

/// All Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, indexed for lookup by
/// subject. `Policy::default()` has no bindings and denies everything.
#[derive(Debug, Default)]
pub struct Policy {
    cluster: BindingSet,
    namespaced: HashMap<String, BindingSet>,
}

/// Answer to a SelfSubjectRulesReview / SubjectRulesReview: the rules that apply to a user
/// in a namespace, split like upstream's `SubjectRulesReviewStatus`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesReview {
    /// `ResourceRule`s: `{verbs, apiGroups, resources, resourceNames}`.
    pub resource_rules: Vec<Value>,
    /// `NonResourceRule`s: `{verbs, nonResourceURLs}`.
    pub non_resource_rules: Vec<Value>,
    /// Whether the list may be missing rules (RBAC itself always answers completely, as
    /// upstream; another authorizer in the chain may set it).
    pub incomplete: bool,
    /// Errors met resolving bindings (e.g. a missing role), `""` if none.
    pub evaluation_error: String,
}

impl RulesReview {
    /// The `status` of a (Self)SubjectRulesReview.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "resourceRules": self.resource_rules,
            "nonResourceRules": self.non_resource_rules,
            "incomplete": self.incomplete,
        });
        if !self.evaluation_error.is_empty() {
            status["evaluationError"] = Value::from(self.evaluation_error.clone());
        }
        status
    }
}

/// Bindings of one scope (all ClusterRoleBindings, or one namespace's RoleBindings) and the
/// index from subject to `(binding, subject)` positions.
#[derive(Debug, Default)]
struct BindingSet {
    bindings: Vec<Binding>,
    by_user: HashMap<String, Vec<(u32, u32)>>,
    by_group: HashMap<String, Vec<(u32, u32)>>,
}

#[derive(Debug)]
struct Binding {
    name: String,
    /// `""` for ClusterRoleBindings.
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
    /// The referenced role's rules, resolved at snapshot time.
    rules: Result<Arc<[Rule]>, Error>,
}

impl Binding {
    /// Upstream's `clusterRoleBindingDescriber` / `roleBindingDescriber`.
    fn describe(&self, subject: usize) -> String {
        let subject = self.subjects[subject].describe(&self.namespace);
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {subject}",
                self.name, self.role_kind, self.role_name
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {subject}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind,
                self.role_name
            )
        }
    }
}

impl BindingSet {
    fn insert(&mut self, binding: Binding) {
        let index = u32::try_from(self.bindings.len()).expect("fewer than 2^32 bindings");
        for (position, subject) in binding.subjects.iter().enumerate() {
            let entry = (index, position as u32);
            match subject {
                Subject::User(name) => self.by_user.entry(name.clone()).or_default().push(entry),
                Subject::Group(name) => self.by_group.entry(name.clone()).or_default().push(entry),
                Subject::ServiceAccount { .. } => {
                    if let Some(user) = subject.service_account_user(&binding.namespace) {
                        self.by_user.entry(user).or_default().push(entry);
                    }
                }
                Subject::Unknown { .. } => {}
            }
        }
        self.bindings.push(binding);
    }

    /// Bindings naming the user, in input order, each with its first matching subject.
    fn candidates(&self, user: &str, groups: &[String]) -> Vec<(u32, u32)> {
        let mut found: Vec<(u32, u32)> = Vec::new();
        if let Some(hits) = self.by_user.get(user) {
            found.extend_from_slice(hits);
        }
        for group in groups {
            if let Some(hits) = self.by_group.get(group.as_str()) {
                found.extend_from_slice(hits);
            }
        }
        found.sort_unstable();
        found.dedup_by_key(|(binding, _)| *binding);
        found
    }

    /// Visits the rules of every binding naming the user, with the binding and the matching
    /// subject's position; resolution errors go to `errors`. Stops when `visit` returns true.
    fn visit<'s>(
        &'s self,
        user: &str,
        groups: &[String],
        errors: &mut Vec<String>,
        mut visit: impl FnMut(&'s Binding, usize, &'s [Rule]) -> bool,
    ) -> bool {
        for (binding, subject) in self.candidates(user, groups) {
            let binding = &self.bindings[binding as usize];
            match &binding.rules {
                Ok(rules) => {
                    if visit(binding, subject as usize, rules) {
                        return true;
                    }
                }
                Err(err) => errors.push(err.to_string()),
            }
        }
        false
    }
}

fn metadata_str<'v>(obj: &'v Value, key: &str) -> &'v str {
    obj.pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Upstream `utilerrors.NewAggregate(errs).Error()`: one message as is, several
/// deduplicated and bracketed.
fn aggregate_errors(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for err in errors {
        if !seen.contains(&err.as_str()) {
            seen.push(err);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

impl Policy {
    /// Builds the snapshot. Objects missing a name are ignored; if names repeat, the last
    /// object wins. Bindings referencing missing roles are kept: they grant nothing and
    /// their error shows up in deny reasons and rules reviews, as upstream.
    pub fn new(
        roles: Vec<Value>,
        cluster_roles: Vec<Value>,
        role_bindings: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
    ) -> Policy {
        let mut role_rules: HashMap<(String, String), Arc<[Rule]>> = HashMap::new();
        for role in &roles {
            let (namespace, name) = (metadata_str(role, "namespace"), metadata_str(role, "name"));
            if !name.is_empty() {
                role_rules.insert(
                    (namespace.to_string(), name.to_string()),
                    Rule::list_from_role(role).into(),
                );
            }
        }
        let mut cluster_role_rules: HashMap<String, Arc<[Rule]>> = HashMap::new();
        for role in &cluster_roles {
            let name = metadata_str(role, "name");
            if !name.is_empty() {
                cluster_role_rules.insert(name.to_string(), Rule::list_from_role(role).into());
            }
        }

        let resolve = |binding: &Value, namespace: &str| -> Binding {
            let role_kind = binding
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let role_name = binding
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let rules = match role_kind.as_str() {
                "Role" => role_rules
                    .get(&(namespace.to_string(), role_name.clone()))
                    .cloned()
                    .ok_or_else(|| Error::RoleNotFound {
                        namespace: namespace.to_string(),
                        name: role_name.clone(),
                    }),
                "ClusterRole" => cluster_role_rules.get(&role_name).cloned().ok_or_else(|| {
                    Error::ClusterRoleNotFound {
                        name: role_name.clone(),
                    }
                }),
                other => Err(Error::UnsupportedRoleRefKind {
                    kind: other.to_string(),
                }),
            };
            Binding {
                name: metadata_str(binding, "name").to_string(),
                namespace: namespace.to_string(),
                role_kind,
                role_name,
                subjects: Subject::list_from_binding(binding),
                rules,
            }
        };

        let mut policy = Policy::default();
        for binding in &cluster_role_bindings {
            if !metadata_str(binding, "name").is_empty() {
                policy.cluster.insert(resolve(binding, ""));
            }
        }
        for binding in &role_bindings {
            let namespace = metadata_str(binding, "namespace");
            if !namespace.is_empty() && !metadata_str(binding, "name").is_empty() {
                policy
                    .namespaced
                    .entry(namespace.to_string())
                    .or_default()
                    .insert(resolve(binding, namespace));
            }
        }
        policy
    }

    /// Decides one request: allowed if a ClusterRoleBinding, or (for namespaced resource
    /// requests) a RoleBinding of the request's namespace, names the user and references a
    /// role with a rule allowing the request.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        let mut errors = Vec::new();
        let mut reason = None;
        let mut check = |binding: &Binding, subject: usize, rules: &[Rule]| {
            if rules.iter().any(|rule| rule.allows(a)) {
                reason = Some(format!("RBAC: allowed by {}", binding.describe(subject)));
                return true;
            }
            false
        };
        let mut allowed = self
            .cluster
            .visit(a.user, a.groups, &mut errors, &mut check);
        if !allowed && a.resource_request && !a.namespace.is_empty() {
            if let Some(set) = self.namespaced.get(a.namespace) {
                allowed = set.visit(a.user, a.groups, &mut errors, &mut check);
            }
        }
        match reason {
            Some(reason) if allowed => Decision::Allow { reason },
            _ if errors.is_empty() => Decision::Deny {
                reason: String::new(),
            },
            _ => Decision::Deny {
                reason: format!("RBAC: {}", aggregate_errors(&errors)),
            },
        }
    }

    /// The rules that apply to a user in a namespace (`""`: ClusterRoleBindings only), as
    /// PolicyRule JSON in evaluation order, exact duplicates removed. Upstream `RulesFor`,
    /// behind SelfSubjectRulesReview and `kubectl auth can-i --list`.
    pub fn rules_for(&self, user: &str, groups: &[String], namespace: &str) -> Vec<Value> {
        self.collect_rules(user, groups, namespace)
            .0
            .into_iter()
            .map(Rule::to_json)
            .collect()
    }

    /// [`Policy::rules_for`] split into resource and non-resource rules, with resolution
    /// errors, ready for a SubjectRulesReview status.
    pub fn rules_review(&self, user: &str, groups: &[String], namespace: &str) -> RulesReview {
        let (rules, errors) = self.collect_rules(user, groups, namespace);
        let mut review = RulesReview {
            evaluation_error: aggregate_errors(&errors),
            ..RulesReview::default()
        };
        for rule in rules {
            if !rule.resources.is_empty() {
                // ResourceRule: `verbs`, then the non-empty ones of the rest (omitempty).
                let mut resource_rule = json!({ "verbs": rule.verbs });
                for (key, items) in [
                    ("apiGroups", &rule.api_groups),
                    ("resources", &rule.resources),
                    ("resourceNames", &rule.resource_names),
                ] {
                    if !items.is_empty() {
                        resource_rule[key] = Value::from(items.clone());
                    }
                }
                review.resource_rules.push(resource_rule);
            }
            if !rule.non_resource_urls.is_empty() {
                review.non_resource_rules.push(json!({
                    "verbs": rule.verbs,
                    "nonResourceURLs": rule.non_resource_urls,
                }));
            }
        }
        review
    }

    fn collect_rules(
        &self,
        user: &str,
        groups: &[String],
        namespace: &str,
    ) -> (Vec<&Rule>, Vec<String>) {
        let mut errors = Vec::new();
        let mut seen: HashSet<&Rule> = HashSet::new();
        let mut rules: Vec<&Rule> = Vec::new();
        let mut sets = vec![&self.cluster];
        if !namespace.is_empty() {
            if let Some(set) = self.namespaced.get(namespace) {
                sets.push(set);
            }
        }
        for set in sets {
            set.visit(user, groups, &mut errors, |_, _, found| {
                for rule in found {
                    if seen.insert(rule) {
                        rules.push(rule);
                    }
                }
                false
            });
        }
        (rules, errors)
    }
}
