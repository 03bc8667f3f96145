//! A `#![no_std]` crate using fcgi-core without its default `std` feature. It defines its own
//! `#[panic_handler]`: if `std` were anywhere in the dependency graph, the build would fail
//! with "found duplicate lang item `panic_impl`". `.ci/run` builds it.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use bytes::BytesMut;
use fcgi_core::server::{ServerConfig, ServerConnection};

/// Feeds bytes to a server connection and returns how many events came out.
pub fn events_for(input: &[u8]) -> usize {
    let mut conn = ServerConnection::new(ServerConfig::default());
    let mut buf = BytesMut::from(input);
    let _ = conn.handle_input(&mut buf);
    let mut n = 0;
    while conn.poll_event().is_some() {
        n += 1;
    }
    n
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
