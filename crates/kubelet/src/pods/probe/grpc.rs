//! grpc probes: `grpc.health.v1.Health/Check` over plaintext HTTP/2 (upstream supports no
//! TLS here) on the pod IP, with the optional `service`; success iff the answer is
//! SERVING. Connecting and the call share one deadline, the probe's timeout.

use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Endpoint;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::check::{error_chain, join_host_port, user_agent, Outcome};

pub async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let address = join_host_port(host, port);
    let deadline = Instant::now() + timeout;
    // Go prints a duration of whole seconds as "1s"; probe timeouts are whole seconds.
    let within = format!("{}s", timeout.as_secs());

    let endpoint = match Endpoint::from_shared(format!("http://{address}"))
        .and_then(|endpoint| endpoint.user_agent(user_agent()))
    {
        Ok(endpoint) => endpoint.connect_timeout(timeout),
        Err(err) => return Outcome::Error(format!("gRPC address {address}: {err}")),
    };
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service {address:?} within {within}: context deadline exceeded"
            ))
        }
        Ok(Err(err)) => {
            return Outcome::Failure(format!(
                "error: failed to connect service at {address:?}: {}",
                error_chain(&err)
            ))
        }
        Ok(Ok(channel)) => channel,
    };

    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    let rpc_timeout = format!("timeout: health rpc did not complete within {within}");
    match tokio::time::timeout_at(deadline, HealthClient::new(channel).check(request)).await {
        Err(_) => Outcome::Failure(rpc_timeout),
        Ok(Err(status)) => Outcome::Failure(match status.code() {
            Code::Unimplemented => format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            ),
            Code::DeadlineExceeded => rpc_timeout,
            code => format!(
                "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                status.message()
            ),
        }),
        Ok(Ok(response)) => match response.into_inner().status() {
            ServingStatus::Serving => Outcome::Success,
            other => Outcome::Failure(format!(
                "service unhealthy (responded with {:?})",
                other.as_str_name()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic_health::server::HealthReporter;

    use super::*;

    /// A tonic health server on 127.0.0.1; returns its port and the reporter that sets
    /// what it answers.
    async fn health_server() -> (u16, HealthReporter) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (reporter, service) = tonic_health::server::health_reporter();
        k3rs_core::task::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (port, reporter)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn serving_succeeds_and_not_serving_fails() {
        let (port, reporter) = health_server().await;
        // The empty service name is the server as a whole, SERVING by default.
        assert_eq!(check("127.0.0.1", port, "", SECOND).await, Outcome::Success);

        reporter
            .set_service_status("db", tonic_health::ServingStatus::NotServing)
            .await;
        assert_eq!(
            check("127.0.0.1", port, "db", SECOND).await,
            Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".to_string())
        );
        reporter
            .set_service_status("db", tonic_health::ServingStatus::Serving)
            .await;
        assert_eq!(
            check("127.0.0.1", port, "db", SECOND).await,
            Outcome::Success
        );

        // tonic-health answers NotFound for a service it was never told about.
        match check("127.0.0.1", port, "unknown", SECOND).await {
            Outcome::Failure(message) => assert!(
                message.starts_with("error: health rpc probe failed: rpc error: code = NotFound"),
                "{message}"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closed_port_fails_to_connect() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        match check("127.0.0.1", port, "", SECOND).await {
            Outcome::Failure(message) => {
                assert!(
                    message.starts_with(&format!(
                        "error: failed to connect service at \"127.0.0.1:{port}\":"
                    )),
                    "{message}"
                );
                assert!(message.contains("refused"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_server_without_the_health_service_is_named_as_such() {
        // A gRPC server with no services: every method is unimplemented.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        k3rs_core::task::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::default())
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        match check("127.0.0.1", port, "", SECOND).await {
            Outcome::Failure(message) => assert!(
                message
                    .starts_with("error: this server does not implement the grpc health protocol"),
                "{message}"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
}
