//! ClusterRole aggregation, as upstream's `clusterroleaggregation` controller computes it.
//!
//! A ClusterRole with `aggregationRule.clusterRoleSelectors` gets as `rules` the union of
//! the rules of every other ClusterRole its selectors match: selectors in order, matched
//! roles sorted by name, each rule once (first occurrence wins). Aggregated roles may
//! themselves be aggregated (`view` into `edit` into `admin`); [`aggregate`] iterates to a
//! fixed point, which the event-driven upstream controller reaches over several syncs.
//!
//! Pure: it returns the ClusterRoles to write and leaves writing to the controller.

use k3rs_core::selector::LabelSelector;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::rule::Rule;

struct Aggregated {
    /// Index into the input.
    index: usize,
    selectors: Vec<LabelSelector>,
}

/// The aggregated ClusterRoles whose `rules` differ from what their selectors produce,
/// each a copy of the input object with `rules` replaced, in input order. Roles with an
/// invalid selector are left alone (upstream retries them forever); see
/// [`aggregation_errors`].
pub fn aggregate(cluster_roles: &[Value]) -> Vec<Value> {
    let names: Vec<&str> = cluster_roles.iter().map(role_name).collect();
    let labels: Vec<Option<&Value>> = cluster_roles
        .iter()
        .map(|role| role.pointer("/metadata/labels"))
        .collect();
    let original: Vec<Vec<Rule>> = cluster_roles.iter().map(Rule::list_from_role).collect();
    let mut current = original.clone();

    let mut aggregated: Vec<Aggregated> = cluster_roles
        .iter()
        .enumerate()
        .filter_map(|(index, role)| {
            Some(Aggregated {
                index,
                selectors: selectors(role).ok()??,
            })
        })
        .collect();
    aggregated.sort_by(|a, b| names[a.index].cmp(names[b.index]));

    // Each role's selected sources, sorted by name (stable, so equal names keep input order).
    let sources: Vec<Vec<usize>> = aggregated
        .iter()
        .map(|agg| {
            let mut selected = Vec::new();
            for selector in &agg.selectors {
                let mut matched: Vec<usize> = (0..cluster_roles.len())
                    .filter(|&i| names[i] != names[agg.index] && selector.matches(labels[i]))
                    .collect();
                matched.sort_by(|&a, &b| names[a].cmp(names[b]));
                selected.extend(matched);
            }
            selected
        })
        .collect();

    // Gauss-Seidel rounds until nothing changes; the bound only matters for selector cycles.
    for _ in 0..=aggregated.len() {
        let mut changed = false;
        for (agg, sources) in aggregated.iter().zip(&sources) {
            let mut rules: Vec<Rule> = Vec::new();
            for &source in sources {
                for rule in &current[source] {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
            if rules != current[agg.index] {
                current[agg.index] = rules;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let mut out: Vec<(usize, Value)> = aggregated
        .iter()
        .filter(|agg| current[agg.index] != original[agg.index])
        .map(|agg| {
            let mut role = cluster_roles[agg.index].clone();
            role["rules"] = Value::Array(current[agg.index].iter().map(Rule::to_json).collect());
            (agg.index, role)
        })
        .collect();
    out.sort_by_key(|(index, _)| *index);
    out.into_iter().map(|(_, role)| role).collect()
}

/// Errors in the aggregation rules of the given ClusterRoles (invalid label selectors).
pub fn aggregation_errors(cluster_roles: &[Value]) -> Vec<Error> {
    cluster_roles
        .iter()
        .filter_map(|role| selectors(role).err())
        .collect()
}

fn role_name(role: &Value) -> &str {
    role.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The parsed `aggregationRule.clusterRoleSelectors`, `None` if the role is not aggregated.
fn selectors(role: &Value) -> Result<Option<Vec<LabelSelector>>> {
    let Some(rule) = role.get("aggregationRule").filter(|r| r.is_object()) else {
        return Ok(None);
    };
    let items = rule
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    items
        .iter()
        .enumerate()
        .map(|(index, selector)| {
            LabelSelector::from_label_selector_json(selector).map_err(|err| {
                Error::InvalidSelector {
                    cluster_role: role_name(role).to_string(),
                    index,
                    message: err.to_string(),
                }
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
