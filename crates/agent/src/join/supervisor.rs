//! The agent's side of the supervisor endpoints: authenticated requests over the pinned
//! connection, and answers turned into one-line reasons that say whether retrying can
//! help ([`Stop`]).

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use k3rs_certs::join_token::{Credential, AGENT_USER};

use super::transport::{Failure, Pinned};
use super::Stop;

/// An authenticated supervisor client.
#[derive(Clone)]
pub struct Supervisor {
    pinned: Pinned,
    authorization: HeaderValue,
}

impl Supervisor {
    /// Agents send `node:<password>` whatever user the token names (as k3s agents do), or
    /// the bootstrap token as a bearer token.
    pub fn new(pinned: Pinned, credential: &Credential) -> Result<Supervisor, Stop> {
        let value = match credential {
            Credential::Password(password) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{AGENT_USER}:{password}"))
            ),
            Credential::Bootstrap(token) => format!("Bearer {}", token.reveal()),
        };
        let mut authorization = HeaderValue::from_str(&value).map_err(|_| {
            Stop::Fatal(anyhow::anyhow!(
                "invalid --token: it cannot be sent in an HTTP header"
            ))
        })?;
        authorization.set_sensitive(true);
        Ok(Supervisor {
            pinned,
            authorization,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Bytes, Stop> {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Bytes, Stop> {
        self.send(Method::POST, path, headers, body).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Bytes, Stop> {
        let mut all = vec![(http::header::AUTHORIZATION, self.authorization.clone())];
        all.extend(headers.iter().cloned());
        let reply = self
            .pinned
            .request(method.clone(), path, &all, body)
            .await
            .map_err(Stop::from)?;
        match reply.status {
            s if s.is_success() => Ok(reply.body),
            StatusCode::UNAUTHORIZED => Err(Stop::Retry(anyhow::anyhow!(
                "the server refused the token (401)"
            ))),
            s => Err(Stop::Retry(anyhow::anyhow!(
                "{method} {path}: the server answered {} ({})",
                s.as_u16(),
                reply.message()
            ))),
        }
    }
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Stop {
        match failure {
            Failure::Untrusted(why) => Stop::Fatal(anyhow::anyhow!(why)),
            Failure::Unreachable(why) => {
                Stop::Retry(anyhow::anyhow!("cannot reach the server: {why}"))
            }
        }
    }
}
