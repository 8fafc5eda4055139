//! The query parameters of resource requests, parsed once per request.

use std::collections::HashMap;

use k3rs_core::selector::{FieldSelector, LabelSelector};

use crate::error::{ApiError, ApiResult};

/// How unknown fields in a body are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

#[derive(Debug)]
pub struct Params {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout_seconds: Option<u64>,
    pub field_validation: FieldValidation,
    pub dry_run: bool,
    pub include_object: String,
    pub grace_period_seconds: Option<i64>,
    pub field_manager: Option<String>,
    pub propagation_policy: Option<String>,
    /// Server-side apply takes fields other managers own.
    pub force: bool,
}

fn truthy(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true" | "1"))
}

impl Params {
    pub fn parse(raw: Option<&str>) -> ApiResult<Params> {
        let map: HashMap<String, String> = match raw {
            Some(q) => serde_urlencoded_pairs(q),
            None => HashMap::new(),
        };
        let get = |k: &str| map.get(k).filter(|v| !v.is_empty());
        let label_selector = match get("labelSelector") {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("invalid labelSelector: {e}")))?,
            None => LabelSelector::everything(),
        };
        let field_selector = match get("fieldSelector") {
            Some(s) => FieldSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("invalid fieldSelector: {e}")))?,
            None => FieldSelector::everything(),
        };
        let limit = match get("limit") {
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n > 0 => Some(n as usize),
                Ok(_) => None,
                Err(_) => return Err(ApiError::bad_request(format!("invalid limit {v:?}"))),
            },
            None => None,
        };
        let timeout_seconds = match get("timeoutSeconds") {
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {v:?}")))?,
            ),
            None => None,
        };
        let grace_period_seconds =
            match get("gracePeriodSeconds") {
                Some(v) => Some(v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {v:?}"))
                })?),
                None => None,
            };
        let field_validation = match get("fieldValidation").map(String::as_str) {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
                )))
            }
        };
        let dry_run = match get("dryRun").map(String::as_str) {
            None => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported dryRun value {other:?}; only \"All\" is allowed"
                )))
            }
        };
        Ok(Params {
            label_selector,
            field_selector,
            limit,
            continue_token: get("continue").cloned(),
            resource_version: get("resourceVersion").cloned(),
            resource_version_match: get("resourceVersionMatch").cloned(),
            watch: truthy(map.get("watch")),
            allow_watch_bookmarks: truthy(map.get("allowWatchBookmarks")),
            send_initial_events: truthy(map.get("sendInitialEvents")),
            timeout_seconds,
            field_validation,
            dry_run,
            include_object: get("includeObject")
                .cloned()
                .unwrap_or_else(|| "Metadata".into()),
            grace_period_seconds,
            field_manager: get("fieldManager").cloned(),
            propagation_policy: get("propagationPolicy").cloned(),
            force: truthy(map.get("force")),
        })
    }

    /// `resourceVersion` as a revision; `None` for unset, "" and "0" (meaning "any").
    pub fn revision(&self) -> ApiResult<Option<i64>> {
        parse_revision(self.resource_version.as_deref())
    }
}

pub fn parse_revision(rv: Option<&str>) -> ApiResult<Option<i64>> {
    match rv {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {v:?}"))),
    }
}

/// `a=b&c=d` with percent-decoding and `+` as space.
fn serde_urlencoded_pairs(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_queries() {
        let p = Params::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=500&watch=true&fieldValidation=Strict",
        ))
        .unwrap();
        assert_eq!(p.limit, Some(500));
        assert!(p.watch);
        assert_eq!(p.field_validation, FieldValidation::Strict);
        assert!(!p.label_selector.is_empty());
        assert!(Params::parse(Some("limit=x")).is_err());
        assert!(Params::parse(Some("fieldValidation=Loud")).is_err());
        assert_eq!(decode("a%2"), "a%2");
    }

    #[test]
    fn revisions() {
        assert_eq!(parse_revision(Some("0")).unwrap(), None);
        assert_eq!(parse_revision(Some("42")).unwrap(), Some(42));
        assert!(parse_revision(Some("x")).is_err());
    }
}
