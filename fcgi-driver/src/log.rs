//! Logging through `tracing` when the feature is on; nothing otherwise.

#[allow(unused_variables)]
pub(crate) fn debug(what: &str, detail: &dyn std::fmt::Debug) {
    #[cfg(feature = "tracing")]
    tracing::debug!(detail = ?detail, "{what}");
}

#[allow(unused_variables)]
pub(crate) fn info(what: &str, detail: &dyn std::fmt::Debug) {
    #[cfg(feature = "tracing")]
    tracing::info!(detail = ?detail, "{what}");
}

#[allow(unused_variables)]
pub(crate) fn warn(what: &str, detail: &dyn std::fmt::Debug) {
    #[cfg(feature = "tracing")]
    tracing::warn!(detail = ?detail, "{what}");
}

/// Runs `fut` inside a `tracing` span when the feature is on; returns it unchanged otherwise.
#[cfg(feature = "tracing")]
pub(crate) fn in_span<F: std::future::Future>(
    span: tracing::Span,
    fut: F,
) -> tracing::instrument::Instrumented<F> {
    tracing::Instrument::instrument(fut, span)
}

/// Runs `fut` inside a `tracing` span when the feature is on; returns it unchanged otherwise.
#[cfg(not(feature = "tracing"))]
pub(crate) fn in_span<F: std::future::Future>(_span: NoSpan, fut: F) -> F {
    fut
}

/// The span of one accepted connection.
#[cfg(feature = "tracing")]
pub(crate) fn connection_span(peer: &dyn std::fmt::Debug) -> tracing::Span {
    tracing::debug_span!("fcgi_connection", peer = ?peer)
}

/// The span of one accepted connection (nothing without the `tracing` feature).
#[cfg(not(feature = "tracing"))]
pub(crate) fn connection_span(_peer: &dyn std::fmt::Debug) -> NoSpan {
    NoSpan
}

/// The span of one request's handler.
#[cfg(feature = "tracing")]
pub(crate) fn request_span(id: u16, role: &dyn std::fmt::Debug) -> tracing::Span {
    tracing::debug_span!("fcgi_request", id, role = ?role)
}

/// The span of one request's handler (nothing without the `tracing` feature).
#[cfg(not(feature = "tracing"))]
pub(crate) fn request_span(_id: u16, _role: &dyn std::fmt::Debug) -> NoSpan {
    NoSpan
}

/// Stands for a span when the `tracing` feature is off.
#[cfg(not(feature = "tracing"))]
pub(crate) struct NoSpan;
