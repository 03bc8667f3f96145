//! The record layer (spec sections 3 and 8): headers, fixed bodies, streaming decoding.
//!
//! Stateless codecs; the connection state machines in [`server`](crate::server) and
//! [`client`](crate::client) are built on them.

mod body;
mod decoder;
mod header;

pub use body::{
    BeginRequestBody, EndRequestBody, KEEP_CONN, ProtocolStatus, Role, UnknownTypeBody,
};
pub(crate) use decoder::RawFragment;
pub use decoder::{Decoder, Fragment, Record, RecordReader};
pub use header::{
    HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN, MAX_CONTENT_LEN, NULL_REQUEST_ID, Padding,
    RecordType, VERSION_1,
};
