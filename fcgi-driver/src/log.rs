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
