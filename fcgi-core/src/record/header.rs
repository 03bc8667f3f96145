//! The fixed 8-byte record header (spec section 3.3) and the record type byte.

use bytes::BufMut;

/// The only protocol version this crate speaks (`FCGI_VERSION_1`).
pub const VERSION_1: u8 = 1;

/// Size of a record header on the wire (`FCGI_HEADER_LEN`).
pub const HEADER_LEN: usize = 8;

/// Largest content length a single record can carry (a 16-bit field).
pub const MAX_CONTENT_LEN: usize = 0xFFFF;

/// Largest content length that still fits with 8-byte alignment padding, keeping
/// content + padding within 65535 (php-fpm resets the connection above that).
pub const MAX_ALIGNED_CONTENT_LEN: usize = 65528;

/// Request id reserved for management records (`FCGI_NULL_REQUEST_ID`).
pub const NULL_REQUEST_ID: u16 = 0;

/// The type byte of a record (spec section 8). Unknown values are preserved, not rejected:
/// a management record of an unknown type must be answered with `UNKNOWN_TYPE` carrying
/// the very byte we received.
///
/// ```
/// use fcgi_core::record::RecordType;
/// assert_eq!(RecordType::from(5), RecordType::Stdin);
/// assert_eq!(RecordType::from(42), RecordType::Unknown(42));
/// assert_eq!(u8::from(RecordType::Unknown(42)), 42);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// `FCGI_BEGIN_REQUEST` (1): starts a request.
    BeginRequest,
    /// `FCGI_ABORT_REQUEST` (2): the web server aborts a request.
    AbortRequest,
    /// `FCGI_END_REQUEST` (3): the application ends a request.
    EndRequest,
    /// `FCGI_PARAMS` (4): name-value pair stream to the application.
    Params,
    /// `FCGI_STDIN` (5): request body stream to the application.
    Stdin,
    /// `FCGI_STDOUT` (6): response stream from the application.
    Stdout,
    /// `FCGI_STDERR` (7): error stream from the application.
    Stderr,
    /// `FCGI_DATA` (8): the file to filter (Filter role).
    Data,
    /// `FCGI_GET_VALUES` (9): management query.
    GetValues,
    /// `FCGI_GET_VALUES_RESULT` (10): management answer.
    GetValuesResult,
    /// `FCGI_UNKNOWN_TYPE` (11): answer to an unknown management record type.
    UnknownType,
    /// Any other type byte, kept as received.
    Unknown(u8),
}

impl RecordType {
    /// True for the types whose records form a stream terminated by an empty record.
    pub const fn is_stream(self) -> bool {
        matches!(
            self,
            Self::Params | Self::Stdin | Self::Stdout | Self::Stderr | Self::Data
        )
    }
}

impl From<u8> for RecordType {
    fn from(b: u8) -> Self {
        match b {
            1 => Self::BeginRequest,
            2 => Self::AbortRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            8 => Self::Data,
            9 => Self::GetValues,
            10 => Self::GetValuesResult,
            11 => Self::UnknownType,
            other => Self::Unknown(other),
        }
    }
}

impl From<RecordType> for u8 {
    fn from(t: RecordType) -> u8 {
        match t {
            RecordType::BeginRequest => 1,
            RecordType::AbortRequest => 2,
            RecordType::EndRequest => 3,
            RecordType::Params => 4,
            RecordType::Stdin => 5,
            RecordType::Stdout => 6,
            RecordType::Stderr => 7,
            RecordType::Data => 8,
            RecordType::GetValues => 9,
            RecordType::GetValuesResult => 10,
            RecordType::UnknownType => 11,
            RecordType::Unknown(b) => b,
        }
    }
}

/// A decoded record header. The version byte is kept as received so that a caller can
/// report it; [`Header::parse`] does not reject unknown versions (the connections do).
///
/// ```
/// use fcgi_core::record::{Header, RecordType};
/// let bytes = [1, 5, 0, 1, 0x01, 0x00, 7, 0];
/// let h = Header::parse(&bytes).unwrap();
/// assert_eq!(h.record_type, RecordType::Stdin);
/// assert_eq!((h.request_id, h.content_length, h.padding_length), (1, 256, 7));
/// let mut out = Vec::new();
/// h.encode(&mut out);
/// assert_eq!(out, bytes);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Protocol version byte (1 for FastCGI 1.0).
    pub version: u8,
    /// Record type.
    pub record_type: RecordType,
    /// Request id (0 for management records).
    pub request_id: u16,
    /// Number of content bytes that follow the header.
    pub content_length: u16,
    /// Number of padding bytes that follow the content (0..=255, any value accepted).
    pub padding_length: u8,
}

impl Header {
    /// A version-1 header.
    pub const fn new(
        record_type: RecordType,
        request_id: u16,
        content_length: u16,
        padding_length: u8,
    ) -> Self {
        Self {
            version: VERSION_1,
            record_type,
            request_id,
            content_length,
            padding_length,
        }
    }

    /// Parses the first 8 bytes of `buf`; `None` if fewer than 8 bytes are given.
    /// The reserved byte is ignored, as the spec asks.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Self::from_array(b))
    }

    /// Decodes a complete 8-byte header.
    pub fn from_array(b: &[u8; HEADER_LEN]) -> Self {
        Self {
            version: b[0],
            record_type: RecordType::from(b[1]),
            request_id: u16::from_be_bytes([b[2], b[3]]),
            content_length: u16::from_be_bytes([b[4], b[5]]),
            padding_length: b[6],
        }
    }

    /// The 8 header bytes (reserved byte zero).
    pub fn to_array(&self) -> [u8; HEADER_LEN] {
        let id = self.request_id.to_be_bytes();
        let len = self.content_length.to_be_bytes();
        [
            self.version,
            u8::from(self.record_type),
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding_length,
            0,
        ]
    }

    /// Appends the 8 header bytes to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_slice(&self.to_array());
    }

    /// Content plus padding: the bytes that follow this header.
    pub const fn body_len(&self) -> usize {
        self.content_length as usize + self.padding_length as usize
    }
}

/// How records we write are padded. Receivers accept any padding regardless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Pad content to a multiple of 8 bytes, as the spec recommends (default). Records then
    /// carry at most [`MAX_ALIGNED_CONTENT_LEN`] content bytes, so that content + padding
    /// never exceeds 65535.
    #[default]
    Align8,
    /// No padding; records carry up to [`MAX_CONTENT_LEN`] content bytes.
    None,
}

impl Padding {
    /// Padding bytes to add after `content_len` content bytes.
    /// Never makes content + padding exceed 65535: content above 65528 bytes gets none.
    pub const fn padding_for(self, content_len: usize) -> u8 {
        match self {
            Self::Align8 => {
                let pad = (8 - (content_len % 8)) % 8;
                if content_len + pad > MAX_CONTENT_LEN {
                    0
                } else {
                    pad as u8
                }
            }
            Self::None => 0,
        }
    }

    /// Largest content length of one record under this policy.
    pub const fn max_content_len(self) -> usize {
        match self {
            Self::Align8 => MAX_ALIGNED_CONTENT_LEN,
            Self::None => MAX_CONTENT_LEN,
        }
    }
}
