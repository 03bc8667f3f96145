//! What an application-side connection reports to the application.

use bytes::Bytes;

use crate::params::Params;
use crate::record::{ProtocolStatus, Role};

/// Why the connection refused or ended a request on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Another request runs and multiplexing is off (`CANT_MPX_CONN`).
    CantMpxConn,
    /// The per-connection request limit is reached (`OVERLOADED`).
    TooManyRequests,
    /// The role is not in [`ServerConfig::roles`](super::ServerConfig::roles) (`UNKNOWN_ROLE`).
    UnknownRole,
    /// The `PARAMS` stream exceeded [`Limits::max_params_bytes`](crate::Limits::max_params_bytes)
    /// (`OVERLOADED`; the rest of the request is ignored).
    ParamsTooLarge,
    /// The connection is shutting down (`OVERLOADED`).
    ShuttingDown,
}

impl Rejection {
    /// The protocol status sent in the `END_REQUEST`.
    pub fn protocol_status(self) -> ProtocolStatus {
        match self {
            Self::CantMpxConn => ProtocolStatus::CantMpxConn,
            Self::UnknownRole => ProtocolStatus::UnknownRole,
            Self::TooManyRequests | Self::ParamsTooLarge | Self::ShuttingDown => {
                ProtocolStatus::Overloaded
            }
        }
    }
}

/// An event of a [`ServerConnection`](super::ServerConnection), in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A request was accepted. Its params follow in [`Event::Params`].
    BeginRequest {
        /// Request id.
        id: u16,
        /// Role asked for (always one of the configured roles).
        role: Role,
        /// Whether the web server keeps the connection after this request.
        keep_conn: bool,
    },
    /// The `PARAMS` stream is complete. The application may now write output
    /// (a Filter only after [`Event::StdinEnd`]).
    Params {
        /// Request id.
        id: u16,
        /// The request's CGI variables.
        params: Params,
    },
    /// A piece of the request body.
    Stdin {
        /// Request id.
        id: u16,
        /// Body bytes, not copied from the input buffer.
        data: Bytes,
    },
    /// The request body is complete.
    StdinEnd {
        /// Request id.
        id: u16,
    },
    /// A piece of the Filter data file.
    Data {
        /// Request id.
        id: u16,
        /// Data bytes, not copied from the input buffer.
        data: Bytes,
    },
    /// The Filter data file is complete.
    DataEnd {
        /// Request id.
        id: u16,
    },
    /// The web server aborted the request, or the connection closed under it. The
    /// application should stop and call [`end_request`](super::ServerConnection::end_request).
    Abort {
        /// Request id.
        id: u16,
    },
    /// The connection answered a `BEGIN_REQUEST` (or ended a request) on its own; the id is
    /// inactive again. Reported for logs and metrics only.
    Rejected {
        /// Request id.
        id: u16,
        /// Why.
        reason: Rejection,
    },
}

impl Event {
    /// The request the event is about.
    pub fn request_id(&self) -> u16 {
        match self {
            Self::BeginRequest { id, .. }
            | Self::Params { id, .. }
            | Self::Stdin { id, .. }
            | Self::StdinEnd { id }
            | Self::Data { id, .. }
            | Self::DataEnd { id }
            | Self::Abort { id }
            | Self::Rejected { id, .. } => *id,
        }
    }
}
