//! `k3rs token create|list|delete`: the command line of [`k3rs_agent::bootstrap_tokens`].
//! `create` prints the join token `K10<ca-hash>::<id>.<secret>`; `list` shows ids only,
//! never secrets.
//!
//! Also here: reading `--agent-token` for the server.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use k3rs_agent::bootstrap_tokens::{self, Listed};
use k3rs_certs::bootstrap_token::BootstrapToken;
use k3rs_certs::Token;

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
    let Some(text) = crate::agent_flags::secret(
        "agent-token",
        args.agent_token.as_deref(),
        args.agent_token_file.as_deref(),
    )?
    else {
        return Ok(None);
    };
    let token = Token::parse(&text).map_err(|e| anyhow!("invalid --agent-token: {e}"))?;
    Ok(Some(Token {
        username: k3rs_certs::join_token::AGENT_USER.to_string(),
        ..token
    }))
}

/// `--ttl`: how long a token stays valid; `None` means it never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(pub Option<Duration>);

/// `24h`, `90m`, `1h30m`, `45s` or `0` (never expires), as Go durations are written.
pub fn parse_ttl(text: &str) -> Result<Ttl, String> {
    match crate::parse::duration(text) {
        Ok(ttl) => Ok(Ttl((!ttl.is_zero()).then_some(ttl))),
        Err(_) => Err("expected a duration such as 24h, 90m, 1h30m or 0".into()),
    }
}

fn kubeconfig(args: &TokenClientArgs) -> String {
    args.kubeconfig
        .clone()
        .unwrap_or_else(|| k3rs_agent::DEFAULT_KUBECONFIG.to_string())
}

async fn create(args: &TokenCreateArgs) -> Result<()> {
    let Ttl(ttl) = args.ttl;
    let token = match &args.token {
        Some(text) => BootstrapToken::parse(text.trim()).ok_or_else(|| {
            anyhow!("invalid --token: expected [a-z0-9]{{6}}.[a-z0-9]{{16}}, e.g. abcdef.0123456789abcdef")
        })?,
        None => BootstrapToken::generate(),
    };
    let (client, ca_pem) = bootstrap_tokens::admin_client(&kubeconfig(&args.client)).await?;
    let expires = ttl.map(|ttl| Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64));
    bootstrap_tokens::create(client, &token, expires, args.description.as_deref()).await?;
    println!("K10{}::{}", k3rs_certs::ca_hash(&ca_pem), token.reveal());
    Ok(())
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
    let (client, _) = bootstrap_tokens::admin_client(&kubeconfig(&args.client)).await?;
    let tokens = bootstrap_tokens::list(client).await?;
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&tokens)?),
        "yaml" => print!("{}", serde_yaml::to_string(&tokens)?),
        _ => print!("{}", table(&tokens, Utc::now())),
    }
    Ok(())
}

async fn delete(args: &TokenDeleteArgs) -> Result<()> {
    let ids = args
        .tokens
        .iter()
        .map(|t| bootstrap_tokens::token_id(t))
        .collect::<Result<Vec<_>>>()?;
    let (client, _) = bootstrap_tokens::admin_client(&kubeconfig(&args.client)).await?;
    for id in ids {
        bootstrap_tokens::delete(client.clone(), &id).await?;
        println!("bootstrap token {id:?} deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("24h"), Ok(Ttl(Some(Duration::from_secs(86400)))));
        assert_eq!(parse_ttl("1h30m"), Ok(Ttl(Some(Duration::from_secs(5400)))));
        assert_eq!(parse_ttl("45s"), Ok(Ttl(Some(Duration::from_secs(45)))));
        assert_eq!(parse_ttl("0"), Ok(Ttl(None)));
        assert_eq!(parse_ttl("0s"), Ok(Ttl(None)));
        for bad in ["", "h", "1d", "-1h", "1h30", "99999999999999999999h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
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
            groups: vec![k3rs_certs::bootstrap_token::DEFAULT_GROUP.into()],
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
