//! The behavioural suite of the runtime adapters: the same scenarios, run against
//! fcgi-tokio, fcgi-smol on smol and fcgi-smol on async-std.
//!
//! A scenario is a plain function `scenario::<H>()` that builds a fresh [`Harness`] (an
//! executor with worker threads), starts our server and/or client on it over real loopback
//! TCP or Unix sockets — optionally through the fault-injecting [`mock::Mock`] transport —
//! and panics on failure. [`behaviour_suite!`](crate::behaviour_suite) turns every scenario
//! into a `#[test]` for one harness type, so an adapter's test file is its harness plus one
//! macro call.
//!
//! Rules the scenarios keep: every wait is bounded ([`util::GUARD`]) and fails with a
//! message; no assertion depends on elapsed time; cancellation is observed through state
//! (the test application's [`util::Probe`] counts handlers whose future was dropped).

pub mod client;
pub mod endurance;
pub mod fixture;
pub mod loopback;
pub mod mock;
pub mod pressure;
pub mod server;
pub mod util;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use fcgi_driver::client::Connector;
use fcgi_driver::runtime::{Listener, Runtime, Transport};

pub use client::*;
pub use endurance::*;
pub use loopback::*;
pub use pressure::*;
pub use server::*;

/// What a runtime adapter provides to run the suite.
///
/// Contract:
/// - [`new`](Self::new) starts a fresh executor with at least two worker threads; tasks
///   spawned through [`runtime`](Self::runtime) run there, and keep running between (and
///   outside) [`block_on`](Self::block_on) calls, until the harness is dropped.
/// - `block_on` runs a future to completion on the calling thread. The scenarios sometimes
///   do blocking socket IO (with timeouts) on that thread, between or inside `block_on`
///   calls, so spawned tasks must never depend on it to make progress.
/// - The socket functions are called inside `block_on`.
///
/// For tokio this is a multi-thread runtime with two workers; for smol an `Executor` run by
/// two threads; for async-std its global executor.
pub trait Harness: Sized + 'static {
    /// The adapter's runtime (spawner and timers).
    type Rt: Runtime;
    /// The adapter's connected stream (TCP or Unix).
    type Io: Transport;
    /// The adapter's listener (TCP or Unix).
    type Listener: Listener<Io = Self::Io>;
    /// The adapter's connector (TCP or Unix).
    type Connector: Connector<Io = Self::Io>;

    /// A fresh executor.
    fn new() -> Self;
    /// A fresh executor that runs tasks only on the thread calling
    /// [`block_on`](Self::block_on), and only while it waits there (like tokio's
    /// current-thread runtime): while the future given to `block_on` runs without yielding,
    /// no spawned task makes progress. Tasks spawned through [`runtime`](Self::runtime)
    /// from inside `block_on` stay on that executor. Scenarios use it where they must keep
    /// the connection tasks from reacting to a peer event before they act on it; the default
    /// is [`new`](Self::new), for an adapter that cannot provide one (those scenarios then
    /// fail their assertion instead of passing vacuously).
    fn new_single_threaded() -> Self {
        Self::new()
    }
    /// The runtime handle the server and client use.
    fn runtime(&self) -> Self::Rt;
    /// Runs `future` to completion on the calling thread.
    fn block_on<F: Future>(&self, future: F) -> F::Output;
    /// Listens on `127.0.0.1:0`; returns the listener and its address.
    fn bind_tcp(&self) -> impl Future<Output = io::Result<(Self::Listener, SocketAddr)>>;
    /// Listens on a Unix socket at `path`.
    fn bind_unix(&self, path: &Path) -> impl Future<Output = io::Result<Self::Listener>>;
    /// A connector to a TCP address.
    fn tcp_connector(&self, addr: SocketAddr) -> Self::Connector;
    /// A connector to any backend address (a name is resolved on each connect).
    fn connector(&self, backend: fcgi_driver::client::Backend) -> Self::Connector;
    /// A connector to a Unix socket path.
    fn unix_connector(&self, path: &Path) -> Self::Connector;
    /// `TCP_NODELAY` of a stream (`None` for a Unix socket).
    fn nodelay(io: &Self::Io) -> Option<bool>;
}

/// Generates one `#[test]` per behavioural scenario for a [`Harness`] type.
///
/// ```text
/// struct TokioHarness { /* ... */ }
/// impl fcgi_testkit::behaviour::Harness for TokioHarness { /* ... */ }
/// fcgi_testkit::behaviour_suite!(TokioHarness);
/// ```
#[macro_export]
macro_rules! behaviour_suite {
    ($harness:ty) => {
        $crate::behaviour_suite!(@tests $harness;
            // Server.
            server_abort_multiplexed,
            server_requests_beside_a_running_handler,
            server_reads_once_per_wakeup,
            server_abort_non_multiplexed,
            server_graceful_shutdown,
            server_shutdown_deadline,
            server_max_connections,
            server_max_requests,
            server_per_connection_mux_limit,
            server_cant_mpx_conn,
            server_unknown_role,
            server_params_over_limit,
            server_stdin_cap,
            echo_keepalive_without_multiplexing,
            echo_multiplexed_unix,
            echo_large_bodies_both_ways,
            echo_params_byte_exact,
            client_backend_by_name,
            client_connect_error,
            server_read_timeout,
            server_keepalive_timeout,
            server_write_timeout,
            server_max_requests_per_connection,
            server_back_pressure,
            server_coalesces_small_response,
            server_handler_panic,
            tcp_nodelay,
            roles_end_to_end,
            mock_streams_give_identical_results,
            server_early_eof_mid_request,
            // Client and pool.
            pool_max_connections,
            pool_timeout,
            client_idle_timeout,
            client_max_requests_per_connection,
            client_retry_once,
            client_drop_response_multiplexed,
            client_drop_response_non_multiplexed,
            client_truncated_response,
            client_full_duplex,
            client_read_timeout,
            client_total_timeout,
            client_keep_alive_off,
            client_request_id_reuse,
            client_stalled_upload_feeder_ends_with_its_request,
            client_cancelled_connect_frees_its_slot,
            server_response_outliving_its_request,
            // Under pressure.
            server_lingering_close_keeps_the_response,
            server_first_request_timeout,
            server_idle_flood_does_not_starve_real_clients,
            server_slowloris_and_abort_storm,
            server_eviction_spares_a_response_on_its_way,
            server_request_params_timeout,
        );
    };
    (@tests $harness:ty; $($name:ident),* $(,)?) => {
        $crate::behaviour_suite!(@each $harness; $($name),*);
    };
    (@each $harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::behaviour::$name::<$harness>();
            }
        )*
    };
}

/// Generates the endurance tests ([`endurance`]) for a [`Harness`] type. They measure the
/// process's resident memory, so an adapter puts them in a test binary of their own (other
/// tests running beside them would move it), where they run one at a time.
///
/// ```text
/// fcgi_testkit::endurance_suite!(TokioHarness);
/// ```
#[macro_export]
macro_rules! endurance_suite {
    ($harness:ty) => {
        $crate::behaviour_suite!(@each $harness;
            server_short_connections_leave_nothing,
            client_pool_closed_connections_leave_nothing,
        );
    };
}
