//! Bootstrap tokens for joining agents, as k3s has them (`k3rs token create|list|delete`):
//! the Secret `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`
//! in kubeadm's layout (`token-id`, `token-secret`, `expiration`, usages, extra groups,
//! description). The supervisor accepts such a token until it expires.
//!
//! These are ordinary API clients of a server, authenticated by an admin kubeconfig.
//! Listing never returns secrets.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use k3rs_certs::bootstrap_token::{self, BootstrapToken};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::Serialize;

/// The client of the kubeconfig at `path`, and the CA PEM it trusts (whose hash goes in the token).
pub async fn admin_client(path: &str) -> Result<(kube::Client, String)> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| anyhow!("invalid --kubeconfig {path}: {e}"))?;
    let context_name = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| {
            anyhow!("invalid --kubeconfig {path}: no cluster for the current context")
        })?;
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| {
                    anyhow!("invalid --kubeconfig {path}: certificate-authority-data is not base64")
                })?;
            String::from_utf8(bytes).map_err(|_| {
                anyhow!("invalid --kubeconfig {path}: certificate-authority-data is not PEM")
            })?
        }
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| {
            anyhow!("invalid --kubeconfig {path}: certificate-authority {file}: {e}")
        })?,
        (None, None) => bail!("invalid --kubeconfig {path}: it names no certificate authority"),
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| anyhow!("invalid --kubeconfig {path}: {e}"))?;
    let client = kube::Client::try_from(config).context("API client")?;
    Ok((client, ca_pem))
}

fn secrets(client: kube::Client) -> kube::Api<Secret> {
    kube::Api::namespaced(client, bootstrap_token::NAMESPACE)
}

/// One line for an API error: the server's message, not kube-rs's debug dump.
fn api_error(err: kube::Error) -> anyhow::Error {
    match err {
        kube::Error::Api(status) => anyhow!("{} ({})", status.message, status.code),
        other => anyhow!(other),
    }
}

/// The Secret for `token`, in kubeadm's layout.
fn token_secret(
    token: &BootstrapToken,
    expires: Option<DateTime<Utc>>,
    description: Option<&str>,
) -> Secret {
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        data.insert(key.to_string(), ByteString(value.as_bytes().to_vec()));
    };
    put("token-id", &token.id);
    put("token-secret", &token.secret);
    put("usage-bootstrap-authentication", "true");
    put("usage-bootstrap-signing", "true");
    put("auth-extra-groups", bootstrap_token::DEFAULT_GROUP);
    if let Some(expires) = expires {
        put(
            "expiration",
            &expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
    }
    if let Some(description) = description.filter(|d| !d.is_empty()) {
        put("description", description);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(token.secret_name()),
            namespace: Some(bootstrap_token::NAMESPACE.to_string()),
            ..ObjectMeta::default()
        },
        type_: Some(bootstrap_token::SECRET_TYPE.to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Create `token`'s Secret, valid until `expires` (never when `None`). Refuses an id
/// that exists already.
pub async fn create(
    client: kube::Client,
    token: &BootstrapToken,
    expires: Option<DateTime<Utc>>,
    description: Option<&str>,
) -> Result<()> {
    let api = secrets(client);
    let name = token.secret_name();
    if api.get_opt(&name).await.map_err(api_error)?.is_some() {
        bail!("a token with id {:?} already exists", token.id);
    }
    api.create(
        &PostParams::default(),
        &token_secret(token, expires, description),
    )
    .await
    .map_err(api_error)
    .with_context(|| format!("creating Secret {}/{name}", bootstrap_token::NAMESPACE))?;
    Ok(())
}

/// A bootstrap token as `list` shows it: no secret.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub usages: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub groups: Vec<String>,
}

fn listed(secret: &Secret) -> Option<Listed> {
    if secret.type_.as_deref() != Some(bootstrap_token::SECRET_TYPE) {
        return None;
    }
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .unwrap_or_default()
    };
    let id = text("token-id");
    if !bootstrap_token::is_valid_id(&id) {
        return None;
    }
    let mut usages: Vec<String> = data
        .iter()
        .filter_map(|(k, v)| {
            let usage = k.strip_prefix("usage-bootstrap-")?;
            (v.0 == b"true").then(|| usage.to_string())
        })
        .collect();
    usages.sort();
    let groups = text("auth-extra-groups")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    let expires = Some(text("expiration")).filter(|e| !e.is_empty());
    Some(Listed {
        id,
        expires,
        usages,
        description: text("description"),
        groups,
    })
}

/// The cluster's bootstrap tokens, by id.
pub async fn list(client: kube::Client) -> Result<Vec<Listed>> {
    let all = secrets(client)
        .list(&ListParams::default())
        .await
        .map_err(api_error)
        .context("listing bootstrap tokens")?;
    let mut tokens: Vec<Listed> = all.items.iter().filter_map(listed).collect();
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(tokens)
}

/// The id named by a `delete` argument: an id, `<id>.<secret>` or a full join token.
pub fn token_id(arg: &str) -> Result<String> {
    let arg = arg.trim();
    if bootstrap_token::is_valid_id(arg) {
        return Ok(arg.to_string());
    }
    let credential = arg.rsplit_once("::").map_or(arg, |(_, c)| c);
    BootstrapToken::parse(credential)
        .map(|t| t.id)
        .ok_or_else(|| {
            anyhow!("invalid token: expected a token id ([a-z0-9]{{6}}) or a bootstrap token")
        })
}

/// Delete the token with `id`; a missing one is an error naming it.
pub async fn delete(client: kube::Client, id: &str) -> Result<()> {
    let name = bootstrap_token::secret_name(id);
    match secrets(client)
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            bail!("bootstrap token {id:?} not found")
        }
        Err(err) => Err(api_error(err)).with_context(|| format!("deleting bootstrap token {id:?}")),
    }
}

/// Time left, as kubectl prints ages: `23h`, `59m`, `40s`; `<forever>`, `<expired>`.
fn time_left(expires: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(expires) = expires else {
        return "<forever>".into();
    };
    let Ok(at) = DateTime::parse_from_rfc3339(expires) else {
        return "<invalid>".into();
    };
    let left = at.with_timezone(&Utc) - now;
    let secs = left.num_seconds();
    match secs {
        s if s <= 0 => "<expired>".into(),
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The `k3rs token list` table: one row per token, never a secret.
pub fn table(tokens: &[Listed], now: DateTime<Utc>) -> String {
    let none = |s: String| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s
        }
    };
    let mut rows = vec![[
        "TOKEN".to_string(),
        "TTL".into(),
        "EXPIRES".into(),
        "USAGES".into(),
        "DESCRIPTION".into(),
        "EXTRA GROUPS".into(),
    ]];
    for t in tokens {
        rows.push([
            t.id.clone(),
            time_left(t.expires.as_deref(), now),
            t.expires.clone().unwrap_or_else(|| "<never>".into()),
            none(t.usages.join(",")),
            none(t.description.clone()),
            none(t.groups.join(",")),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| match i {
                5 => cell.clone(),
                _ => format!("{cell:<width$}", width = widths[i]),
            })
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_layout_and_listing() {
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let expires = DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let secret = token_secret(&token, Some(expires), Some("for n2"));
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("bootstrap-token-abcdef")
        );
        assert_eq!(
            secret.type_.as_deref(),
            Some("bootstrap.kubernetes.io/token")
        );
        let data = secret.data.as_ref().unwrap();
        assert_eq!(data["expiration"].0, b"2030-01-02T03:04:05Z");
        assert_eq!(data["token-secret"].0, b"0123456789abcdef");

        let row = listed(&secret).unwrap();
        assert_eq!(
            row,
            Listed {
                id: "abcdef".into(),
                expires: Some("2030-01-02T03:04:05Z".into()),
                usages: vec!["authentication".into(), "signing".into()],
                description: "for n2".into(),
                groups: vec![bootstrap_token::DEFAULT_GROUP.into()],
            }
        );
        let mut other = secret.clone();
        other.type_ = Some("Opaque".into());
        assert_eq!(listed(&other), None);
    }

    #[test]
    fn delete_arguments() {
        assert_eq!(token_id("abcdef").unwrap(), "abcdef");
        assert_eq!(token_id("abcdef.0123456789abcdef").unwrap(), "abcdef");
        let full = format!("K10{}::abcdef.0123456789abcdef", "0".repeat(64));
        assert_eq!(token_id(&full).unwrap(), "abcdef");
        assert!(token_id("nope").is_err());
    }

    #[test]
    fn table_shows_time_left_and_no_secret() {
        let expires = DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let row = Listed {
            id: "abcdef".into(),
            expires: Some("2030-01-02T03:04:05Z".into()),
            usages: vec!["authentication".into(), "signing".into()],
            description: "for n2".into(),
            groups: vec![bootstrap_token::DEFAULT_GROUP.into()],
        };
        let now = expires - chrono::Duration::hours(23);
        let text = table(&[row], now);
        assert!(text.starts_with("TOKEN "), "{text}");
        assert!(text.contains("abcdef   23h"), "{text}");
        assert_eq!(
            time_left(Some("2030-01-02T03:04:05Z"), expires),
            "<expired>"
        );
        assert_eq!(time_left(None, expires), "<forever>");
    }
}
