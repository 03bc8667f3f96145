//! What an application-side connection accepts, and what it advertises in `GET_VALUES`.

use crate::limits::Limits;
use crate::record::{Padding, Role};

/// A set of roles the application plays.
///
/// ```
/// use fcgi_core::server::RoleSet;
/// use fcgi_core::record::Role;
/// let roles = RoleSet::RESPONDER.with(Role::Filter);
/// assert!(roles.contains(Role::Filter) && !roles.contains(Role::Authorizer));
/// assert!(!RoleSet::ALL.contains(Role::Unknown(7)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSet(u8);

impl RoleSet {
    /// No role at all.
    pub const NONE: Self = Self(0);
    /// Responder only (the default).
    pub const RESPONDER: Self = Self(1);
    /// Authorizer only.
    pub const AUTHORIZER: Self = Self(2);
    /// Filter only.
    pub const FILTER: Self = Self(4);
    /// All three roles of FastCGI 1.0.
    pub const ALL: Self = Self(7);

    const fn bit(role: Role) -> u8 {
        match role {
            Role::Responder => 1,
            Role::Authorizer => 2,
            Role::Filter => 4,
            Role::Unknown(_) => 0,
        }
    }

    /// This set plus `role`.
    #[must_use]
    pub const fn with(self, role: Role) -> Self {
        Self(self.0 | Self::bit(role))
    }

    /// Whether `role` is in the set (unknown roles never are).
    pub const fn contains(self, role: Role) -> bool {
        let b = Self::bit(role);
        b != 0 && self.0 & b != 0
    }
}

impl Default for RoleSet {
    fn default() -> Self {
        Self::RESPONDER
    }
}

/// Configuration of a [`ServerConnection`](super::ServerConnection).
///
/// `max_conns` and `max_reqs` are what the application as a whole allows; the core only
/// advertises them (the adapter enforces them across connections). Everything else is
/// enforced by the connection itself.
///
/// ```
/// use fcgi_core::server::{ServerConfig, RoleSet};
/// let mut config = ServerConfig::default();
/// config.multiplex = false; // like php-fpm: one request at a time per connection
/// config.roles = RoleSet::ALL;
/// assert_eq!(config.concurrent_requests(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Accept several concurrent requests on one connection (`FCGI_MPXS_CONNS=1`), up to
    /// [`Limits::max_concurrent_requests`]. When off, a `BEGIN_REQUEST` while another request
    /// runs gets `CANT_MPX_CONN`. Default on.
    pub multiplex: bool,
    /// Advertised `FCGI_MAX_CONNS`: connections the application accepts. Default 1024.
    pub max_conns: u32,
    /// Advertised `FCGI_MAX_REQS`: concurrent requests the application accepts in total.
    /// Default 1024.
    pub max_reqs: u32,
    /// The roles the application plays; others get `UNKNOWN_ROLE`. Default Responder.
    pub roles: RoleSet,
    /// Input and output caps.
    pub limits: Limits,
    /// Padding of records we write. Default: 8-byte alignment.
    pub padding: Padding,
}

crate::__option_setters!(ServerConfig {
    multiplex: bool,
    max_conns: u32,
    max_reqs: u32,
    roles: RoleSet,
    limits: Limits,
    padding: Padding,
});

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            multiplex: true,
            max_conns: 1024,
            max_reqs: 1024,
            roles: RoleSet::default(),
            limits: Limits::default(),
            padding: Padding::default(),
        }
    }
}

impl ServerConfig {
    /// Concurrent requests one connection accepts: 1 without multiplexing.
    pub fn concurrent_requests(&self) -> u16 {
        if self.multiplex {
            self.limits.max_concurrent_requests.max(1)
        } else {
            1
        }
    }
}
