//! Fixed-size record bodies: `BEGIN_REQUEST`, `END_REQUEST`, `UNKNOWN_TYPE` (spec 4.2, 5.1,
//! 5.5), and the `Role` and `ProtocolStatus` values they carry.

use crate::error::{Error, Malformed};

/// Flag bit of `BEGIN_REQUEST`: keep the connection open after this request (`FCGI_KEEP_CONN`).
pub const KEEP_CONN: u8 = 1;

/// The role a request asks the application to play (spec section 6). Unknown values are
/// preserved so that the application can answer `UNKNOWN_ROLE`.
///
/// ```
/// use fcgi_core::record::Role;
/// assert_eq!(Role::from(3), Role::Filter);
/// assert_eq!(u16::from(Role::Unknown(9)), 9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `FCGI_RESPONDER` (1): the CGI/1.1 role.
    Responder,
    /// `FCGI_AUTHORIZER` (2): decide whether a request may proceed.
    Authorizer,
    /// `FCGI_FILTER` (3): process a data file, with a request.
    Filter,
    /// Any other role value.
    Unknown(u16),
}

impl Role {
    /// Whether a request in this role carries a `STDIN` stream (spec 6.2-6.4): Responder and
    /// Filter do; an Authorizer receives params only.
    ///
    /// ```
    /// use fcgi_core::record::Role;
    /// assert!(Role::Responder.reads_stdin());
    /// assert!(!Role::Authorizer.reads_stdin());
    /// ```
    pub fn reads_stdin(self) -> bool {
        !matches!(self, Self::Authorizer)
    }

    /// Whether a request in this role carries a `DATA` stream after `STDIN`: the Filter only
    /// (spec 6.4).
    ///
    /// ```
    /// use fcgi_core::record::Role;
    /// assert!(Role::Filter.reads_data());
    /// assert!(!Role::Responder.reads_data());
    /// ```
    pub fn reads_data(self) -> bool {
        matches!(self, Self::Filter)
    }

    /// Whether the application must read all of `STDIN` before it writes anything: the
    /// Filter (spec 6.4). Every role writes only after its params are complete.
    ///
    /// ```
    /// use fcgi_core::record::Role;
    /// assert!(Role::Filter.writes_after_stdin());
    /// assert!(!Role::Responder.writes_after_stdin());
    /// ```
    pub fn writes_after_stdin(self) -> bool {
        matches!(self, Self::Filter)
    }
}

impl From<u16> for Role {
    fn from(v: u16) -> Self {
        match v {
            1 => Self::Responder,
            2 => Self::Authorizer,
            3 => Self::Filter,
            other => Self::Unknown(other),
        }
    }
}

impl From<Role> for u16 {
    fn from(r: Role) -> u16 {
        match r {
            Role::Responder => 1,
            Role::Authorizer => 2,
            Role::Filter => 3,
            Role::Unknown(v) => v,
        }
    }
}

/// The protocol-level outcome in `END_REQUEST` (spec section 5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolStatus {
    /// `FCGI_REQUEST_COMPLETE` (0): normal end.
    RequestComplete,
    /// `FCGI_CANT_MPX_CONN` (1): the application does not multiplex and a request is running.
    CantMpxConn,
    /// `FCGI_OVERLOADED` (2): the application ran out of some resource.
    Overloaded,
    /// `FCGI_UNKNOWN_ROLE` (3): the role is not one the application plays.
    UnknownRole,
    /// Any other value, kept as received.
    Unknown(u8),
}

impl From<u8> for ProtocolStatus {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::RequestComplete,
            1 => Self::CantMpxConn,
            2 => Self::Overloaded,
            3 => Self::UnknownRole,
            other => Self::Unknown(other),
        }
    }
}

impl From<ProtocolStatus> for u8 {
    fn from(s: ProtocolStatus) -> u8 {
        match s {
            ProtocolStatus::RequestComplete => 0,
            ProtocolStatus::CantMpxConn => 1,
            ProtocolStatus::Overloaded => 2,
            ProtocolStatus::UnknownRole => 3,
            ProtocolStatus::Unknown(v) => v,
        }
    }
}

fn fixed8(record: &'static str, content: &[u8]) -> Result<[u8; 8], Error> {
    content.try_into().map_err(|_| {
        Error::Malformed(Malformed::BodyLength {
            record,
            len: content.len(),
        })
    })
}

/// Body of `BEGIN_REQUEST`: role, flags, 5 reserved bytes.
///
/// ```
/// use fcgi_core::record::{BeginRequestBody, Role};
/// let b = BeginRequestBody { role: Role::Responder, keep_conn: true };
/// assert_eq!(b.to_array(), [0, 1, 1, 0, 0, 0, 0, 0]);
/// assert_eq!(BeginRequestBody::parse(&b.to_array()).unwrap(), b);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginRequestBody {
    /// Requested role.
    pub role: Role,
    /// `FCGI_KEEP_CONN`: the web server keeps the connection open after this request.
    pub keep_conn: bool,
}

impl BeginRequestBody {
    /// Parses exactly 8 content bytes. Unknown flag bits and reserved bytes are ignored.
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let b = fixed8("BEGIN_REQUEST", content)?;
        Ok(Self {
            role: Role::from(u16::from_be_bytes([b[0], b[1]])),
            keep_conn: b[2] & KEEP_CONN != 0,
        })
    }

    /// The 8 body bytes.
    pub fn to_array(&self) -> [u8; 8] {
        let r = u16::from(self.role).to_be_bytes();
        [
            r[0],
            r[1],
            if self.keep_conn { KEEP_CONN } else { 0 },
            0,
            0,
            0,
            0,
            0,
        ]
    }
}

/// Body of `END_REQUEST`: application status, protocol status, 3 reserved bytes.
///
/// ```
/// use fcgi_core::record::{EndRequestBody, ProtocolStatus};
/// let b = EndRequestBody { app_status: 256, protocol_status: ProtocolStatus::Overloaded };
/// assert_eq!(b.to_array(), [0, 0, 1, 0, 2, 0, 0, 0]);
/// assert_eq!(EndRequestBody::parse(&b.to_array()).unwrap(), b);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRequestBody {
    /// What a CGI program would have exited with.
    pub app_status: u32,
    /// Protocol-level outcome.
    pub protocol_status: ProtocolStatus,
}

impl EndRequestBody {
    /// Parses exactly 8 content bytes.
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let b = fixed8("END_REQUEST", content)?;
        Ok(Self {
            app_status: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            protocol_status: ProtocolStatus::from(b[4]),
        })
    }

    /// The 8 body bytes.
    pub fn to_array(&self) -> [u8; 8] {
        let s = self.app_status.to_be_bytes();
        [
            s[0],
            s[1],
            s[2],
            s[3],
            u8::from(self.protocol_status),
            0,
            0,
            0,
        ]
    }
}

/// Body of `UNKNOWN_TYPE`: the unknown type byte and 7 reserved bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownTypeBody {
    /// The management record type the application did not understand.
    pub record_type: u8,
}

impl UnknownTypeBody {
    /// Parses exactly 8 content bytes.
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let b = fixed8("UNKNOWN_TYPE", content)?;
        Ok(Self { record_type: b[0] })
    }

    /// The 8 body bytes.
    pub fn to_array(&self) -> [u8; 8] {
        [self.record_type, 0, 0, 0, 0, 0, 0, 0]
    }
}
