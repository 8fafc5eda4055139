//! httpGet probes: an HTTP/1.1 GET on a fresh connection (upstream disables keep-alive),
//! success iff the final status is 200..400. Redirects are followed only while they stay
//! on the probed host, at most 10; a redirect elsewhere ends the probe as a success with
//! a warning, as upstream. HTTPS skips certificate verification (`tls`).

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT,
};
use http::uri::PathAndQuery;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::rt::{Read, Write};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::HTTPGetAction;

use super::check::{error_chain, user_agent, Outcome};
use super::url::Url;
use super::{tcp, tls};

/// Upstream reads at most this much of a probe response.
const MAX_BODY: usize = 10 * 1024;
/// Go's HTTP client gives up after this many redirects.
const MAX_REDIRECTS: usize = 10;

/// Where and how to probe, resolved from an `HTTPGetAction`.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    url: Url,
    /// The declared `httpHeaders` plus upstream's defaults, without `Host`.
    headers: HeaderMap,
    /// A declared `Host` header replaces the URL's authority in the request.
    host_header: Option<HeaderValue>,
}

impl HttpTarget {
    pub fn new(action: &HTTPGetAction, host: String, port: u16) -> Result<HttpTarget, String> {
        let https = match action.scheme.as_deref().unwrap_or("HTTP") {
            s if s.eq_ignore_ascii_case("http") => false,
            s if s.eq_ignore_ascii_case("https") => true,
            other => return Err(format!("unsupported httpGet scheme {other:?}")),
        };
        let path = action.path.as_deref().unwrap_or("/");
        // Go's URL formatting puts the slash in front of a relative path.
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let path_and_query = PathAndQuery::try_from(path.as_str())
            .map_err(|err| format!("invalid httpGet path {path:?}: {err}"))?
            .to_string();

        let mut headers = HeaderMap::new();
        let mut host_header = None;
        for header in action.http_headers.iter().flatten() {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| format!("invalid httpGet header name {:?}", header.name))?;
            let value = HeaderValue::from_str(&header.value)
                .map_err(|_| format!("invalid value for httpGet header {:?}", header.name))?;
            if name == HOST {
                host_header.get_or_insert(value);
            } else {
                headers.append(name, value);
            }
        }
        if !headers.contains_key(USER_AGENT) {
            let agent = HeaderValue::from_str(&user_agent())
                .map_err(|_| "invalid probe User-Agent".to_string())?;
            headers.insert(USER_AGENT, agent);
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        Ok(HttpTarget {
            url: Url {
                https,
                host,
                port,
                path_and_query,
            },
            headers,
            host_header,
        })
    }
}

pub async fn check(target: &HttpTarget, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, follow(target, timeout)).await {
        Ok(outcome) => outcome,
        // Go's client timeout covers the dial, redirects and the body alike.
        Err(_) => Outcome::Failure(format!(
            "Get \"{}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            target.url
        )),
    }
}

async fn follow(target: &HttpTarget, timeout: Duration) -> Outcome {
    let mut url = target.url.clone();
    let mut host_header = target.host_header.clone();
    let mut redirects = 0;
    loop {
        let response = match fetch(&url, &target.headers, host_header.as_ref(), timeout).await {
            Ok(response) => response,
            Err(message) => return Outcome::Failure(format!("Get \"{url}\": {message}")),
        };
        if let Some(location) = response.redirect_location() {
            let Some((next, relative)) = url.resolve(location) else {
                return Outcome::Failure(format!(
                    "Get \"{url}\": failed to parse Location header {location:?}"
                ));
            };
            // Another host is not followed: its answer says nothing about this container.
            if next.host.eq_ignore_ascii_case(&target.url.host) {
                if redirects == MAX_REDIRECTS {
                    return Outcome::Failure(format!(
                        "Get \"{next}\": stopped after {MAX_REDIRECTS} redirects"
                    ));
                }
                redirects += 1;
                // As Go: a declared Host survives only a redirect within the same URL.
                if !relative {
                    host_header = None;
                }
                url = next;
                continue;
            }
        }
        return judge(response.status, &response.body);
    }
}

/// Upstream's verdict on the final response.
fn judge(status: StatusCode, body: &str) -> Outcome {
    let code = status.as_u16();
    if (200..400).contains(&code) {
        if code >= 300 {
            return Outcome::Warning(format!("Probe terminated redirects, Response body: {body}"));
        }
        return Outcome::Success;
    }
    // Upstream keeps the body out of this message (it may hold secrets).
    Outcome::Failure(format!("HTTP probe failed with statuscode: {code}"))
}

/// What a probe keeps of one response.
struct Fetched {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Fetched {
    /// The statuses Go's client follows.
    fn redirect_location(&self) -> Option<&str> {
        match self.status.as_u16() {
            301 | 302 | 303 | 307 | 308 => self.location.as_deref(),
            _ => None,
        }
    }
}

async fn fetch(
    url: &Url,
    headers: &HeaderMap,
    host_header: Option<&HeaderValue>,
    timeout: Duration,
) -> Result<Fetched, String> {
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(url.path_and_query.as_str());
    let request_headers = builder
        .headers_mut()
        .ok_or_else(|| "invalid request".to_string())?;
    request_headers.extend(headers.clone());
    let host = match host_header {
        Some(value) => value.clone(),
        None => HeaderValue::from_str(&url.authority())
            .map_err(|_| format!("invalid host {:?}", url.host))?,
    };
    request_headers.insert(HOST, host);
    request_headers.insert(CONNECTION, HeaderValue::from_static("close"));
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|err| format!("invalid request: {err}"))?;

    let stream = tcp::dial(&url.host, url.port, timeout).await?;
    if url.https {
        exchange(
            TokioIo::new(tls::connect(stream, &url.host).await?),
            request,
        )
        .await
    } else {
        exchange(TokioIo::new(stream), request).await
    }
}

/// One request on one connection, driving the connection in this task so that a probe
/// timeout (which drops this future) closes it too.
async fn exchange<IO>(io: IO, request: Request<Empty<Bytes>>) -> Result<Fetched, String>
where
    IO: Read + Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|err| error_chain(&err))?;
    let response = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| error_chain(&err))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = read_at_most(response.into_body(), MAX_BODY).await?;
        Ok(Fetched {
            status,
            location,
            body,
        })
    };
    tokio::pin!(response);
    tokio::select! {
        result = &mut response => result,
        // The connection can end before the response future notices (the server closed
        // right after answering); what it delivered is buffered, so finish reading it.
        _ = connection => response.await,
    }
}

async fn read_at_most(mut body: hyper::body::Incoming, limit: usize) -> Result<String, String> {
    let mut bytes = Vec::new();
    // Past the limit the rest is not read: upstream truncates without failing.
    while bytes.len() < limit {
        match body.frame().await {
            None => break,
            Some(Err(err)) => return Err(error_chain(&err)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = limit - bytes.len();
                    bytes.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use http::Response;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use k8s_openapi::api::core::v1::HTTPHeader;
    use tokio::net::TcpListener;

    use super::*;

    type Handler =
        Arc<dyn Fn(&Request<hyper::body::Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

    /// Serve HTTP/1.1 on 127.0.0.1 (over TLS with a self-signed certificate if `tls`),
    /// answering every request with `handler`; returns the port. The server lives as
    /// long as the test's runtime.
    async fn serve(tls: bool, handler: Handler) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls.then(self_signed_acceptor);
        k3rs_core::task::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let handler = handler.clone();
                let acceptor = acceptor.clone();
                k3rs_core::task::spawn(async move {
                    let service = service_fn(move |request| {
                        let response = handler(&request);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        port
    }

    fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["not-this-host.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Full<Bytes>> {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    }

    fn target(scheme: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> HttpTarget {
        let action = HTTPGetAction {
            scheme: Some(scheme.to_string()),
            path: Some(path.to_string()),
            http_headers: Some(
                headers
                    .iter()
                    .map(|(name, value)| HTTPHeader {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                    .collect(),
            ),
            ..HTTPGetAction::default()
        };
        HttpTarget::new(&action, "127.0.0.1".to_string(), port).unwrap()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn fails_on_500_then_succeeds_on_200() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let port = serve(
            false,
            Arc::new(move |_| {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    respond(500, &[], "secret details")
                } else {
                    respond(200, &[], "ok")
                }
            }),
        )
        .await;
        let probe = target("HTTP", port, "/healthz", &[]);
        assert_eq!(
            check(&probe, SECOND).await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".to_string())
        );
        assert_eq!(check(&probe, SECOND).await, Outcome::Success);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn sends_upstreams_headers_and_the_declared_ones() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let port = serve(
            false,
            Arc::new(move |request| {
                let header = |name: &str| {
                    request
                        .headers()
                        .get_all(name)
                        .iter()
                        .map(|v| v.to_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                record.lock().unwrap().push(vec![
                    request.uri().to_string(),
                    header("host"),
                    header("user-agent"),
                    header("accept"),
                    header("connection"),
                    header("x-custom"),
                ]);
                respond(204, &[], "")
            }),
        )
        .await;
        let plain = target("HTTP", port, "ready?verbose=1", &[]);
        assert_eq!(check(&plain, SECOND).await, Outcome::Success);
        let custom = target(
            "http",
            port,
            "/",
            &[
                ("Host", "app.example"),
                ("X-Custom", "a"),
                ("X-Custom", "b"),
                ("Accept", "text/plain"),
            ],
        );
        assert_eq!(check(&custom, SECOND).await, Outcome::Success);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            [
                "/ready?verbose=1".to_string(),
                format!("127.0.0.1:{port}"),
                user_agent(),
                "*/*".to_string(),
                "close".to_string(),
                String::new(),
            ]
        );
        assert_eq!(seen[1][1], "app.example");
        assert_eq!(seen[1][3], "text/plain");
        assert_eq!(seen[1][5], "a,b");
    }

    #[tokio::test]
    async fn follows_redirects_on_the_same_host_only() {
        let port = serve(
            false,
            Arc::new(|request| match request.uri().path() {
                "/old" => respond(302, &[("location", "new")], ""),
                "/new" => respond(301, &[("location", "/final?x=1")], ""),
                "/final" => respond(500, &[], ""),
                "/away" => respond(302, &[("location", "http://elsewhere.example/")], "moved"),
                "/loop" => respond(307, &[("location", "/loop")], ""),
                _ => respond(404, &[], ""),
            }),
        )
        .await;
        assert_eq!(
            check(&target("HTTP", port, "/old", &[]), SECOND).await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".to_string())
        );
        assert_eq!(
            check(&target("HTTP", port, "/away", &[]), SECOND).await,
            Outcome::Warning("Probe terminated redirects, Response body: moved".to_string())
        );
        assert_eq!(
            check(&target("HTTP", port, "/loop", &[]), SECOND).await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/loop\": stopped after 10 redirects"
            ))
        );
    }

    #[tokio::test]
    async fn https_skips_certificate_verification() {
        let port = serve(true, Arc::new(|_| respond(200, &[], "ok"))).await;
        assert_eq!(
            check(&target("HTTPS", port, "/", &[]), SECOND).await,
            Outcome::Success
        );
    }

    #[tokio::test]
    async fn connection_errors_and_timeouts_read_like_upstream() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert_eq!(
            check(&target("HTTP", closed, "/healthz", &[]), SECOND).await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{closed}/healthz\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );

        // Accepts connections and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let _keep = k3rs_core::task::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        assert_eq!(
            check(&target("HTTP", port, "/", &[]), Duration::from_millis(300)).await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ))
        );
    }

    #[test]
    fn targets_validate_their_spec() {
        let bad_scheme = HTTPGetAction {
            scheme: Some("GOPHER".to_string()),
            ..HTTPGetAction::default()
        };
        assert!(HttpTarget::new(&bad_scheme, "10.0.0.1".into(), 80).is_err());
        let bad_header = HTTPGetAction {
            http_headers: Some(vec![HTTPHeader {
                name: "bad name".to_string(),
                value: "v".to_string(),
            }]),
            ..HTTPGetAction::default()
        };
        assert!(HttpTarget::new(&bad_header, "10.0.0.1".into(), 80).is_err());
        let default = HttpTarget::new(&HTTPGetAction::default(), "fd00::5".into(), 80).unwrap();
        assert_eq!(default.url.to_string(), "http://[fd00::5]:80/");
    }
}
