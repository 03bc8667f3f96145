//! Errors, sorted by who is at fault: the bytes ([`Malformed`]), the peer's sequence of
//! records ([`Violation`]), a configured cap ([`LimitExceeded`]) or the local caller
//! ([`ApiError`]). All are small, `Copy` and comparable, so tests can match them exactly.

/// Everything that can go wrong in this crate.
///
/// A `Malformed`, `Violation` or `LimitExceeded` error returned by `handle_input` is fatal to
/// the connection: the adapter should close it. An `ApiError` leaves the connection as it was:
/// nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that do not decode.
    #[error("malformed input: {0}")]
    Malformed(#[from] Malformed),
    /// The peer sent well-formed records in an order the protocol forbids.
    #[error("protocol violation: {0}")]
    Violation(#[from] Violation),
    /// The peer sent more than a configured limit allows.
    #[error("limit exceeded: {0}")]
    Limit(#[from] LimitExceeded),
    /// The local caller used the API in a way the protocol forbids; nothing was sent.
    #[error("API misuse: {0}")]
    Api(#[from] ApiError),
}

/// Bytes that do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A record header carries a version other than 1.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A fixed-size record body has the wrong length.
    #[error("{record} body of {len} bytes (expected 8)")]
    BodyLength {
        /// Record type name.
        record: &'static str,
        /// Length received.
        len: usize,
    },
    /// A name-value block ends in the middle of a pair.
    #[error("name-value block ends inside a pair")]
    TruncatedPair,
    /// The connection ended in the middle of a record.
    #[error("connection closed in the middle of a record")]
    TruncatedRecord,
}

/// Well-formed records in an order the protocol forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// `BEGIN_REQUEST` for a request id that is already active.
    #[error("BEGIN_REQUEST for active request {0}")]
    DuplicateBegin(u16),
    /// A record that is not allowed at this point of an active request (for example
    /// `STDIN` before the `PARAMS` stream ended, or a stream record after its terminator).
    #[error("unexpected record type {record_type} for request {request_id}")]
    UnexpectedRecord {
        /// Type byte of the offending record.
        record_type: u8,
        /// Its request id.
        request_id: u16,
    },
}

/// A configured cap was exceeded by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// A name-value block (PARAMS stream or management record) is larger than allowed.
    #[error("name-value block exceeds {limit} bytes")]
    Params {
        /// The limit in bytes.
        limit: usize,
    },
}

/// The local caller misused the API. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No active request has this id.
    #[error("request {0} is not active")]
    UnknownRequest(u16),
    /// All request slots allowed by the configuration are in use.
    #[error("no free request id (limit {0} concurrent requests)")]
    NoFreeRequestId(u16),
    /// A name or value is 2^31 bytes or longer, which the wire format cannot express.
    #[error("name-value pair component of {0} bytes cannot be encoded (max 2^31-1)")]
    PairTooLong(usize),
    /// The operation does not fit the request's role or phase (for example `STDOUT`
    /// before `PARAMS` ended, a Filter writing before `STDIN` ended, `DATA` for a
    /// Responder, or `STDIN` for an Authorizer).
    #[error("operation not allowed for request {request_id} in its current role/phase")]
    WrongPhase {
        /// The request the operation was for.
        request_id: u16,
    },
    /// The transmit buffer already holds the configured maximum; write it out first.
    #[error("transmit buffer full")]
    OutputFull,
    /// The connection is closing or closed; no new request can start on it.
    #[error("connection is closing")]
    Closing,
}
