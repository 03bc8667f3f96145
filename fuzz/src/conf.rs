//! Connection configurations decoded from a few fuzzer bytes.
//!
//! Small limits are over-represented so that the caps, the back-pressure paths and the
//! `OVERLOADED` answers are reached with short inputs. A limit of 0 is not generated for the
//! buffering caps: with `max_buffered_input == 0` or `max_buffered_output == 0` a connection
//! never consumes input, by design of the `<` comparison (see the fuzz README).

use fcgi_core::Limits;
use fcgi_core::client::ClientConfig;
use fcgi_core::record::{Padding, Role};
use fcgi_core::server::{RoleSet, ServerConfig};

const PARAMS_CAPS: [usize; 8] = [1 << 20, 0, 1, 16, 100, 700, 4096, 65536];
const INPUT_CAPS: [usize; 8] = [256 * 1024, 1, 8, 64, 512, 4096, 65536, 1 << 20];
const OUTPUT_CAPS: [usize; 8] = [1 << 20, 1, 8, 64, 512, 4096, 65536, 16];

/// Limits from three 3-bit selectors (each 0 = the default).
pub fn limits(params_sel: u8, input_sel: u8, output_sel: u8) -> Limits {
    let mut l = Limits::default();
    l.max_params_bytes = PARAMS_CAPS[usize::from(params_sel & 7)];
    l.max_buffered_input = INPUT_CAPS[usize::from(input_sel & 7)];
    l.max_buffered_output = OUTPUT_CAPS[usize::from(output_sel & 7)];
    l
}

/// The padding policy from one bit.
pub fn padding(none: bool) -> Padding {
    if none { Padding::None } else { Padding::Align8 }
}

/// A role from two bits (`Unknown` for the fourth value, carrying `extra`).
pub fn role(bits: u8, extra: u16) -> Role {
    match bits & 3 {
        0 => Role::Responder,
        1 => Role::Authorizer,
        2 => Role::Filter,
        _ => Role::Unknown(extra.max(4)),
    }
}

/// A role set from three bits (0 = Responder only, the default).
pub fn role_set(bits: u8) -> RoleSet {
    let bits = bits & 7;
    if bits == 0 {
        return RoleSet::RESPONDER;
    }
    let mut set = RoleSet::NONE;
    for (bit, role) in [
        (1, Role::Responder),
        (2, Role::Authorizer),
        (4, Role::Filter),
    ] {
        if bits & bit != 0 {
            set = set.with(role);
        }
    }
    set
}

/// A server configuration.
pub fn server_config(
    multiplex: bool,
    max_requests: u16,
    roles: RoleSet,
    limits: Limits,
    padding: Padding,
) -> ServerConfig {
    let mut c = ServerConfig::default();
    c.multiplex = multiplex;
    c.roles = roles;
    c.limits = limits;
    c.limits.max_concurrent_requests = max_requests;
    c.padding = padding;
    c
}

/// A client configuration.
pub fn client_config(max_concurrent: u16, limits: Limits, padding: Padding) -> ClientConfig {
    let mut c = ClientConfig::default();
    c.max_concurrent_requests = max_concurrent;
    c.limits = limits;
    c.padding = padding;
    c
}
