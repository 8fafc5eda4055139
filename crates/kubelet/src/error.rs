//! The kubelet's error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container runtime: {0}")]
    Runtime(String),
    #[error("CRI call {call} failed: {status}")]
    Cri {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn cri(call: &'static str, status: tonic::Status) -> Error {
        Error::Cri {
            call,
            status: Box::new(status),
        }
    }
}
