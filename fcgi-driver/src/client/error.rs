//! What can go wrong with a request sent to a FastCGI application.

use std::io;

use fcgi_core::ProtocolStatus;

/// A request failed. Each refusal the protocol defines is its own variant, so a gateway can
/// map them (`Overloaded` → 503, `Timeout` → 504, the rest → 502).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting to the backend failed.
    #[error("cannot connect to the FastCGI backend: {0}")]
    Connect(#[source] io::Error),
    /// The connection failed while the request ran.
    #[error("FastCGI connection failed: {0}")]
    Io(#[source] io::Error),
    /// The backend broke the protocol.
    #[error("FastCGI protocol error: {0}")]
    Protocol(#[from] fcgi_core::Error),
    /// A timeout expired (which one is named).
    #[error("FastCGI {0} expired")]
    Timeout(&'static str),
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
    /// use fcgi_driver::client::{ClientError, CONNECT_TIMEOUT};
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert!(ClientError::Connect(refused).is_connect_failure());
    /// assert!(ClientError::Timeout(CONNECT_TIMEOUT).is_connect_failure());
    /// assert!(!ClientError::Timeout("read timeout").is_connect_failure());
    /// assert!(!ClientError::Truncated.is_connect_failure());
    /// ```
    pub fn is_connect_failure(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Timeout(which) => *which == super::CONNECT_TIMEOUT,
            _ => false,
        }
    }

    /// An equivalent error (io errors are not `Clone`; their kind and text are kept).
    pub(crate) fn duplicate(&self) -> Self {
        fn io_copy(e: &io::Error) -> io::Error {
            io::Error::new(e.kind(), e.to_string())
        }
        match self {
            Self::Connect(e) => Self::Connect(io_copy(e)),
            Self::Io(e) => Self::Io(io_copy(e)),
            Self::Protocol(e) => Self::Protocol(*e),
            Self::Timeout(w) => Self::Timeout(w),
            Self::Overloaded => Self::Overloaded,
            Self::CantMpxConn => Self::CantMpxConn,
            Self::UnknownRole => Self::UnknownRole,
            Self::UnknownStatus(b) => Self::UnknownStatus(*b),
            Self::Truncated => Self::Truncated,
            Self::InvalidRequest(e) => Self::InvalidRequest(*e),
        }
    }
}
