//! The overlay's error type: one line each, naming the flag, file or device at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that cannot work, with the flag or annotation that set it.
    #[error("{0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context} {}: {source}", path.display())]
    File {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: {context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("ethtool: {0}")]
    Ethtool(String),
    #[error("nft: {0}")]
    Nftables(String),
    #[error("API: {context}: {source}")]
    Api {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// host-gw needs every node on one L2 segment; these nodes are not.
    #[error("--flannel-backend host-gw: {0}")]
    HostGw(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn file(
        context: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Error {
        Error::File {
            context,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Error {
        Error::Netlink {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn api(context: impl Into<String>, source: kube::Error) -> Error {
        Error::Api {
            context: context.into(),
            source,
        }
    }
}
