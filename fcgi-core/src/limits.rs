//! Every cap the core enforces, in one place.

/// Caps on what a connection accepts and holds. All sizes are in bytes.
///
/// ```
/// let mut limits = fcgi_core::Limits::default();
/// limits.max_params_bytes = 64 * 1024;
/// assert_eq!(limits.max_buffered_input, 256 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest name-value block accepted, counted in wire bytes (length prefixes included):
    /// the whole `PARAMS` stream of one request, or one `GET_VALUES(_RESULT)` record.
    /// A request over this cap is ended with `OVERLOADED` on the server side; a declared pair
    /// length beyond it is refused before anything is allocated. Default 1 MiB.
    pub max_params_bytes: usize,
    /// Application side, when multiplexing: requests the web server may have active at once
    /// on one connection; beyond it a new request gets `OVERLOADED`. (The web-server side
    /// decides how many it opens with `ClientConfig::max_concurrent_requests`.) Default 64.
    pub max_concurrent_requests: u16,
    /// Unconsumed input the connection may hold as queued events (stream payload bytes,
    /// plus a fixed cost per event). Once reached, `handle_input` stops consuming input until
    /// events are polled: this is the back-pressure signal for the adapter. Default 256 KiB.
    pub max_buffered_input: usize,
    /// Bytes the transmit queue may hold. Once reached, stream sends return
    /// [`ApiError::OutputFull`](crate::ApiError::OutputFull), and on the application side
    /// `handle_input` stops consuming input (so a peer that never reads cannot grow our queue
    /// with answers to its management records). Default 1 MiB.
    pub max_buffered_output: usize,
}

crate::__option_setters!(Limits {
    max_params_bytes: usize,
    max_concurrent_requests: u16,
    max_buffered_input: usize,
    max_buffered_output: usize,
});

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_params_bytes: 1024 * 1024,
            max_concurrent_requests: 64,
            max_buffered_input: 256 * 1024,
            max_buffered_output: 1024 * 1024,
        }
    }
}

/// Accounting cost of one queued event beyond its payload, so that a flood of tiny records
/// cannot grow the event queue without bound.
pub(crate) const EVENT_COST: usize = 64;
