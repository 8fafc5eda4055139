//! `k3rs token create|list|delete`: the command line of [`k3rs_agent::bootstrap_tokens`].
//! `create` prints the join token `K10<ca-hash>::<id>.<secret>`; `list` shows ids only,
//! never secrets.
//!
//! Also here: reading `--agent-token` for the server.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use chrono::Utc;
use k3rs_agent::bootstrap_tokens;
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
        _ => print!("{}", bootstrap_tokens::table(&tokens, Utc::now())),
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
}
