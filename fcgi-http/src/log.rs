//! Logging through `tracing` when this crate's `tracing` feature is on; nothing otherwise.
//! The macros take `tracing`'s syntax (`target:`, fields, a message) and vanish without the
//! feature, so a program that does not log pays nothing and does not depend on `tracing`.
//! They are exported (hidden) for fcgi-tokio's and fcgi-smol's `http` modules, so the rule
//! is written once: whether they log is this crate's feature, which the adapters' `tracing`
//! feature turns on.

#[cfg(feature = "tracing")]
#[doc(hidden)]
pub use tracing as __tracing;

/// Its input with the `tracing` feature, nothing without.
#[cfg(feature = "tracing")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_tracing {
    ($($t:tt)*) => { $($t)* };
}

/// Its input with the `tracing` feature, nothing without.
#[cfg(not(feature = "tracing"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_tracing {
    ($($t:tt)*) => {};
}

/// `tracing::error!` with the feature, nothing without.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error {
    ($($arg:tt)*) => {{ $crate::__if_tracing! { $crate::log::__tracing::error!($($arg)*); } }};
}

/// `tracing::warn!` with the feature, nothing without.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn {
    ($($arg:tt)*) => {{ $crate::__if_tracing! { $crate::log::__tracing::warn!($($arg)*); } }};
}

/// `tracing::info!` with the feature, nothing without.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info {
    ($($arg:tt)*) => {{ $crate::__if_tracing! { $crate::log::__tracing::info!($($arg)*); } }};
}

/// `tracing::debug!` with the feature, nothing without.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug {
    ($($arg:tt)*) => {{ $crate::__if_tracing! { $crate::log::__tracing::debug!($($arg)*); } }};
}

/// Whether an event at INFO for `target`... is enabled: `false` without the feature. (For
/// work done only to log, such as formatting an access-log line.)
#[doc(hidden)]
#[macro_export]
macro_rules! __info_enabled {
    (target: $target:expr) => {{
        #[allow(unused_mut)]
        let mut enabled = false;
        $crate::__if_tracing! {
            enabled = $crate::log::__tracing::enabled!(
                target: $target,
                $crate::log::__tracing::Level::INFO
            );
        }
        enabled
    }};
}
