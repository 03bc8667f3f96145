//! What a web-server-side connection reports to its caller.

use bytes::Bytes;

use crate::params::Params;
use crate::record::ProtocolStatus;

/// An event of a [`ClientConnection`](super::ClientConnection), in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A piece of the response (`STDOUT`).
    Stdout {
        /// Request id.
        id: u16,
        /// Response bytes, not copied from the input buffer.
        data: Bytes,
    },
    /// A piece of the error stream (`STDERR`), interleaved freely with `Stdout`.
    Stderr {
        /// Request id.
        id: u16,
        /// Error-stream bytes.
        data: Bytes,
    },
    /// The request ended; its id is free again.
    EndRequest {
        /// Request id.
        id: u16,
        /// The application's exit-code-like status.
        app_status: u32,
        /// The protocol-level outcome (`OVERLOADED`, `CANT_MPX_CONN`, ...).
        protocol_status: ProtocolStatus,
    },
    /// The connection ended before this request's `END_REQUEST`: the response is
    /// incomplete and must not be taken for a success.
    Truncated {
        /// Request id.
        id: u16,
    },
    /// The application sent more of a stream after ending it with an empty record: the
    /// bytes are not part of the response and were dropped (reported for logs).
    AfterStreamEnd {
        /// Request id.
        id: u16,
        /// `STDERR` (else `STDOUT`).
        stderr: bool,
        /// Bytes dropped.
        len: usize,
    },
    /// Answer to a [`get_values`](super::ClientConnection::get_values) query.
    Values(Params),
    /// The application did not understand a management record we sent.
    UnknownType {
        /// The type byte it reported.
        record_type: u8,
    },
}
