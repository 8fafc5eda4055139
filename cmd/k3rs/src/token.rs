//! `k3rs token create|list|delete`: bootstrap tokens for joining agents, as k3s has them.
//!
//! A token is the Secret `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token` (the kubeadm format: `token-id`, `token-secret`,
//! `expiration`, usages, extra groups, description); the supervisor accepts it until it
//! expires. These commands are ordinary API clients of the local server, authenticated
//! by the admin kubeconfig `k3rs server` writes. `create` prints the join token
//! `K10<ca-hash>::<id>.<secret>`; `list` shows ids only, never secrets.
//!
//! Also here: reading `--agent-token` for the server.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use k3rs_certs::bootstrap_token::{self, BootstrapToken};
use k3rs_certs::Token;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::Serialize;

use crate::cli::{
    ServerArgs, TokenArgs, TokenClientArgs, TokenCommand, TokenCreateArgs, TokenDeleteArgs,
    TokenListArgs,
};

pub async fn run(args: TokenArgs) -> Result<()> {
    match args.command {
        TokenCommand::Create(args) => create(&args).await,
        TokenCommand::List(args) => list(&args).await,
        TokenCommand::Delete(args) => delete(&args).await,
    }
}

/// The `--agent-token`/`--agent-token-file` of `k3rs server`, if any. Full or short form;
/// only its password matters (agents always authenticate as user `node`).
pub fn agent_token_from_args(args: &ServerArgs) -> Result<Option<Token>> {
    let text = match (&args.agent_token, &args.agent_token_file) {
        (Some(t), _) if !t.trim().is_empty() => t.clone(),
        (_, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow!("invalid --agent-token-file {file}: {e}"))?;
            if text.trim().is_empty() {
                bail!("invalid --agent-token-file {file}: the file is empty");
            }
            text
        }
        _ => return Ok(None),
    };
    let token = Token::parse(&text).map_err(|e| anyhow!("invalid --agent-token: {e}"))?;
    Ok(Some(Token {
        username: k3rs_certs::join_token::AGENT_USER.to_string(),
        ..token
    }))
}

/// `24h`, `90m`, `1h30m`, `45s` or `0` (never expires), as Go durations are written
/// (only h, m and s). `None` means no expiry.
pub fn parse_ttl(text: &str) -> Result<Option<Duration>> {
    let bad =
        || anyhow!("invalid --ttl {text:?}: expected a duration such as 24h, 90m, 1h30m or 0");
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest[digits..].chars().next() {
            Some('h') => 3600,
            Some('m') => 60,
            Some('s') => 1,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    Ok((total > 0).then(|| Duration::from_secs(total)))
}

/// The admin client and the CA PEM the kubeconfig trusts (whose hash goes in the token).
async fn client(args: &TokenClientArgs) -> Result<(kube::Client, String)> {
    let path = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| crate::server::DEFAULT_KUBECONFIG.to_string());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
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

async fn create(args: &TokenCreateArgs) -> Result<()> {
    let ttl = parse_ttl(&args.ttl)?;
    let token = match &args.token {
        Some(text) => BootstrapToken::parse(text.trim()).ok_or_else(|| {
            anyhow!("invalid --token: expected [a-z0-9]{{6}}.[a-z0-9]{{16}}, e.g. abcdef.0123456789abcdef")
        })?,
        None => BootstrapToken::generate(),
    };
    let (client, ca_pem) = client(&args.client).await?;
    let api = secrets(client);
    let name = token.secret_name();
    if api.get_opt(&name).await.map_err(api_error)?.is_some() {
        bail!("a token with id {:?} already exists", token.id);
    }
    let expires = ttl.map(|ttl| Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64));
    api.create(
        &PostParams::default(),
        &token_secret(&token, expires, args.description.as_deref()),
    )
    .await
    .map_err(api_error)
    .with_context(|| format!("creating Secret {}/{name}", bootstrap_token::NAMESPACE))?;
    println!("K10{}::{}", k3rs_certs::ca_hash(&ca_pem), token.reveal());
    Ok(())
}

/// A bootstrap token as `list` shows it: no secret.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    usages: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    groups: Vec<String>,
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

fn table(tokens: &[Listed], now: DateTime<Utc>) -> String {
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

async fn list(args: &TokenListArgs) -> Result<()> {
    if !matches!(args.output.as_str(), "text" | "json" | "yaml") {
        bail!(
            "invalid --output {:?}: expected text, json or yaml",
            args.output
        );
    }
    let (client, _) = client(&args.client).await?;
    let all = secrets(client)
        .list(&ListParams::default())
        .await
        .map_err(api_error)
        .context("listing bootstrap tokens")?;
    let mut tokens: Vec<Listed> = all.items.iter().filter_map(listed).collect();
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&tokens)?),
        "yaml" => print!("{}", serde_yaml::to_string(&tokens)?),
        _ => print!("{}", table(&tokens, Utc::now())),
    }
    Ok(())
}

/// The id named by a `delete` argument: an id, `<id>.<secret>` or a full join token.
fn token_id(arg: &str) -> Result<String> {
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

async fn delete(args: &TokenDeleteArgs) -> Result<()> {
    let ids = args
        .tokens
        .iter()
        .map(|t| token_id(t))
        .collect::<Result<Vec<_>>>()?;
    let (client, _) = client(&args.client).await?;
    let api = secrets(client);
    for id in ids {
        let name = bootstrap_token::secret_name(&id);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => println!("bootstrap token {id:?} deleted"),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                bail!("bootstrap token {id:?} not found")
            }
            Err(err) => {
                return Err(api_error(err))
                    .with_context(|| format!("deleting bootstrap token {id:?}"))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("24h").unwrap(), Some(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("1h30m").unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("45s").unwrap(), Some(Duration::from_secs(45)));
        assert_eq!(parse_ttl("0").unwrap(), None);
        assert_eq!(parse_ttl("0s").unwrap(), None);
        for bad in ["", "h", "24", "1d", "-1h", "1h30", "99999999999999999999h"] {
            let err = parse_ttl(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --ttl"), "{bad}: {err}");
        }
    }

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
        let now = expires - chrono::Duration::hours(23);
        let text = table(&[row], now);
        assert!(text.starts_with("TOKEN "), "{text}");
        assert!(text.contains("abcdef   23h"), "{text}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert_eq!(
            time_left(Some("2030-01-02T03:04:05Z"), expires),
            "<expired>"
        );
        assert_eq!(time_left(None, expires), "<forever>");

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
}
