//! The http(s) URLs an httpGet probe requests, and where a redirect's `Location` leads
//! from one (absolute, scheme-relative, absolute-path, relative or query-only), which is
//! all of RFC 3986 reference resolution a probe needs: dot segments are kept as sent.

use std::fmt;

use http::uri::PathAndQuery;

use super::check::join_host_port;

/// The parts of an http(s) URL a probe uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Without brackets, even for IPv6.
    pub host: String,
    pub port: u16,
    /// Origin form: starts with `/`.
    pub path_and_query: String,
}

impl Url {
    pub fn authority(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query)
    }

    /// The URL a `Location` header points to, and whether it was relative (same scheme
    /// and authority). `None` if it is not an http(s) URL.
    pub fn resolve(&self, location: &str) -> Option<(Url, bool)> {
        // The fragment never goes to the server.
        let location = location.trim().split('#').next().unwrap_or_default();
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.https { "https" } else { "http" };
            return Url::parse_absolute(&format!("{scheme}://{rest}")).map(|url| (url, false));
        }
        if !location.starts_with('/') && location.contains("://") {
            return Url::parse_absolute(location).map(|url| (url, false));
        }
        let path_and_query = if location.is_empty() {
            self.path_and_query.clone()
        } else if location.starts_with('/') {
            location.to_string()
        } else if location.starts_with('?') {
            format!("{}{location}", self.path())
        } else {
            // Relative to the current path's directory.
            let path = self.path();
            let directory = &path[..path.rfind('/').map_or(0, |at| at + 1)];
            format!("{directory}{location}")
        };
        let path_and_query = PathAndQuery::try_from(path_and_query.as_str())
            .ok()?
            .to_string();
        Some((
            Url {
                path_and_query,
                ..self.clone()
            },
            true,
        ))
    }

    fn parse_absolute(text: &str) -> Option<Url> {
        let uri: http::Uri = text.parse().ok()?;
        let https = match uri.scheme_str()? {
            s if s.eq_ignore_ascii_case("http") => false,
            s if s.eq_ignore_ascii_case("https") => true,
            _ => return None,
        };
        let authority = uri.authority()?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = match uri.path_and_query().map(PathAndQuery::as_str) {
            None | Some("") => "/".to_string(),
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_string(),
        };
        Some(Url {
            https,
            host,
            port,
            path_and_query,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path_and_query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_current_url() {
        let current = Url {
            https: false,
            host: "10.0.0.1".to_string(),
            port: 8080,
            path_and_query: "/app/health?x=1".to_string(),
        };
        let resolve = |location: &str| {
            current
                .resolve(location)
                .map(|(url, relative)| (url.to_string(), relative))
        };
        assert_eq!(
            resolve("/other"),
            Some(("http://10.0.0.1:8080/other".into(), true))
        );
        assert_eq!(
            resolve("ready"),
            Some(("http://10.0.0.1:8080/app/ready".into(), true))
        );
        assert_eq!(
            resolve("?y=2"),
            Some(("http://10.0.0.1:8080/app/health?y=2".into(), true))
        );
        assert_eq!(
            resolve("https://10.0.0.1/secure#top"),
            Some(("https://10.0.0.1:443/secure".into(), false))
        );
        assert_eq!(
            resolve("//[fd00::1]:9000"),
            Some(("http://[fd00::1]:9000/".into(), false))
        );
        assert_eq!(resolve("ftp://10.0.0.1/file"), None);
    }
}
