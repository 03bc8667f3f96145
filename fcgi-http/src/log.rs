//! Logging through `tracing` when the `tracing` feature is on; nothing otherwise. The macros
//! take `tracing`'s syntax (`target:`, fields, a message) and vanish without the feature, so
//! a program that does not log pays nothing and does not depend on `tracing`.

// Which of them a build uses depends on its features.
#![allow(unused_macros)]

/// `tracing::error!` with the feature, nothing without.
macro_rules! log_error {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::error!($($arg)*);
    }};
}

/// `tracing::warn!` with the feature, nothing without.
macro_rules! log_warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::warn!($($arg)*);
    }};
}

/// `tracing::info!` with the feature, nothing without.
macro_rules! log_info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::info!($($arg)*);
    }};
}

/// `tracing::debug!` with the feature, nothing without.
macro_rules! log_debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::debug!($($arg)*);
    }};
}

#[allow(unused_imports)]
pub(crate) use {log_debug, log_error, log_info, log_warn};
