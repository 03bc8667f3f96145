//! What can go wrong with a request sent to a FastCGI application.

use std::io;

use fcgi_core::ProtocolStatus;

use super::Backend;

/// Which timeout of [`ClientOptions`](super::ClientOptions) expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Opening a connection (`connect_timeout`).
    Connect,
    /// Waiting for a free connection of the pool (`pool_timeout`).
    Pool,
    /// Silence from the application while a request runs (`read_timeout`).
    Read,
    /// The application not reading what we send (`write_timeout`).
    Write,
    /// The whole request, from `send` to the response's end (`total_timeout`).
    Total,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect timeout",
            Self::Pool => "pool timeout",
            Self::Read => "read timeout",
            Self::Write => "write timeout",
            Self::Total => "total timeout",
        })
    }
}

fn backend_name(backend: Option<&Backend>) -> String {
    backend.map_or_else(
        || "the FastCGI backend".to_owned(),
        |b| format!("the FastCGI backend {b}"),
    )
}

/// A request failed. Each refusal the protocol defines is its own variant, so a gateway can
/// map them (`Overloaded` → 503, `Timeout` → 504, the rest → 502).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting to the backend failed.
    #[error("cannot connect to {}: {source}", backend_name(backend.as_ref()))]
    Connect {
        /// The backend, when the connector names one ([`Connector::backend`](super::Connector::backend)).
        backend: Option<Backend>,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The connection failed while the request ran.
    #[error("FastCGI connection failed: {0}")]
    Io(#[source] io::Error),
    /// The backend broke the protocol.
    #[error("FastCGI protocol error: {0}")]
    Protocol(#[from] fcgi_core::Error),
    /// A timeout expired.
    #[error("FastCGI {0} expired")]
    Timeout(TimeoutKind),
    /// `END_REQUEST` with `OVERLOADED`: the application is out of some resource.
    #[error("the FastCGI application is overloaded")]
    Overloaded,
    /// `END_REQUEST` with `CANT_MPX_CONN`: the application does not multiplex.
    #[error("the FastCGI application cannot multiplex requests on a connection")]
    CantMpxConn,
    /// `END_REQUEST` with `UNKNOWN_ROLE`: the application does not play this role.
    #[error("the FastCGI application does not play this role")]
    UnknownRole,
    /// `END_REQUEST` with a protocol status this crate does not know.
    #[error("unknown FastCGI protocol status {0}")]
    UnknownStatus(u8),
    /// The connection ended before `END_REQUEST`: the response is incomplete.
    #[error("the FastCGI response was truncated (connection closed before END_REQUEST)")]
    Truncated,
    /// The request could not be sent as asked (for example a name-value pair too long).
    #[error("invalid request: {0}")]
    InvalidRequest(fcgi_core::Error),
}

impl ClientError {
    /// The error for a protocol status other than `REQUEST_COMPLETE`.
    pub fn from_status(status: ProtocolStatus) -> Option<Self> {
        match status {
            ProtocolStatus::RequestComplete => None,
            ProtocolStatus::Overloaded => Some(Self::Overloaded),
            ProtocolStatus::CantMpxConn => Some(Self::CantMpxConn),
            ProtocolStatus::UnknownRole => Some(Self::UnknownRole),
            ProtocolStatus::Unknown(b) => Some(Self::UnknownStatus(b)),
        }
    }

    /// Whether no connection to the backend could be opened (refused, unreachable, or the
    /// connect timeout): the request never reached the application, and the backend looks
    /// down.
    ///
    /// ```
    /// use fcgi_driver::client::{ClientError, TimeoutKind};
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let backend = "tcp:127.0.0.1:9000".parse().ok();
    /// let e = ClientError::Connect { backend, source: refused };
    /// assert!(e.is_connect_failure());
    /// assert!(e.to_string().starts_with("cannot connect to the FastCGI backend tcp:127.0.0.1:9000"));
    /// assert!(ClientError::Timeout(TimeoutKind::Connect).is_connect_failure());
    /// assert!(!ClientError::Timeout(TimeoutKind::Read).is_connect_failure());
    /// assert!(!ClientError::Truncated.is_connect_failure());
    /// ```
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout(TimeoutKind::Connect)
        )
    }

    /// An equivalent error (io errors are not `Clone`; their kind and text are kept).
    pub(crate) fn duplicate(&self) -> Self {
        fn io_copy(e: &io::Error) -> io::Error {
            io::Error::new(e.kind(), e.to_string())
        }
        match self {
            Self::Connect { backend, source } => Self::Connect {
                backend: backend.clone(),
                source: io_copy(source),
            },
            Self::Io(e) => Self::Io(io_copy(e)),
            Self::Protocol(e) => Self::Protocol(*e),
            Self::Timeout(w) => Self::Timeout(*w),
            Self::Overloaded => Self::Overloaded,
            Self::CantMpxConn => Self::CantMpxConn,
            Self::UnknownRole => Self::UnknownRole,
            Self::UnknownStatus(b) => Self::UnknownStatus(*b),
            Self::Truncated => Self::Truncated,
            Self::InvalidRequest(e) => Self::InvalidRequest(*e),
        }
    }
}
