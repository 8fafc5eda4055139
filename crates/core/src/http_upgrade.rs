//! Recognising HTTP/1.1 upgrade requests (SPDY and WebSocket streams for exec, attach and
//! port-forward), shared by the API server's kubelet proxy and the kubelet's own proxy to
//! the runtime. Header inspection only; the connections are each side's business.

use http::header::{self, HeaderMap, HeaderName};

/// Whether a comma-separated header (`Connection: keep-alive, Upgrade`) lists `token`,
/// case-insensitively, in any of its occurrences.
pub fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// Whether the request asks to switch protocols at all.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "upgrade") && headers.contains_key(header::UPGRADE)
}

/// Whether the requested protocol is WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn upgrade_tokens_in_lists_and_any_case() {
        let mut h = HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(!is_upgrade(&h), "no Upgrade header");
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_upgrade(&h));
        assert!(is_websocket(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(is_upgrade(&h) && !is_websocket(&h));
    }
}
