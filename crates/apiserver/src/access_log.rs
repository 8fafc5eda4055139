//! One span per API request: verb, resource, namespace, name, the authenticated user and
//! the status code, so that every line logged while serving a request says whose request
//! it was. Every request is one access-log line at debug level (`--debug`, or
//! `K3RS_LOG=k3rs_apiserver=debug`); a 5xx answer is a warning, since it means k3rs,
//! not the client, got something wrong. Bodies are never logged (they may hold Secrets).

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{field, Instrument, Span};

use crate::authz::RequestAttributes;

/// Middleware, outermost: opens the request's span and logs its outcome.
pub(crate) async fn log_request(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let attrs = RequestAttributes::from_request(req.method(), req.uri().path(), req.uri().query());
    let resource = match attrs.subresource.is_empty() {
        true => attrs.resource.clone(),
        false => format!("{}/{}", attrs.resource, attrs.subresource),
    };
    let span = tracing::info_span!(
        "request",
        verb = %attrs.verb,
        resource = field::Empty,
        namespace = field::Empty,
        name = field::Empty,
        user = field::Empty,
        code = field::Empty,
    );
    // Empty values stay out of the log line instead of printing as `resource=""`.
    for (key, value) in [
        ("resource", &resource),
        ("namespace", &attrs.namespace),
        ("name", &attrs.name),
    ] {
        if !value.is_empty() {
            span.record(key, field::display(value));
        }
    }
    // Authorization needs the same attributes: work them out once per request.
    req.extensions_mut().insert(attrs.clone());
    let response = next.run(req).instrument(span.clone()).await;
    let code = response.status().as_u16();
    span.record("code", code);
    let elapsed = started.elapsed();
    let _entered = span.enter();
    if response.status().is_server_error() {
        tracing::warn!(path = %attrs.path, ?elapsed, "request failed");
    } else {
        tracing::debug!(path = %attrs.path, ?elapsed, "request");
    }
    response
}

/// Name the caller on the current request's span, once authentication knows it.
pub(crate) fn record_user(user: &str) {
    Span::current().record("user", field::display(user));
}
