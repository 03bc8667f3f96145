//! The one list of hop-by-hop header fields (RFC 9110 §7.6.1, plus the non-standard
//! `keep-alive` and `proxy-connection` still seen in the wild): fields that describe one
//! connection (client ⇄ us, or us ⇄ the application), never passed across. The request
//! mapping, the CGI response parser and the application side all use it.

/// Hop-by-hop field names, lower case.
pub(crate) const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (lower case, as `http::HeaderName`s are) is hop-by-hop.
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// Whether `suffix` (the part after `HTTP_` of a CGI variable: upper case, `_` for `-`)
/// names a hop-by-hop field.
#[cfg(feature = "app")]
pub(crate) fn is_hop_by_hop_cgi(suffix: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|h| {
        h.len() == suffix.len()
            && h.bytes()
                .zip(suffix)
                .all(|(a, &b)| a.to_ascii_uppercase() == if b == b'_' { b'-' } else { b })
    })
}

/// The field names a `Connection` header value lists (comma-separated tokens, lower case).
pub(crate) fn connection_tokens(value: &[u8]) -> impl Iterator<Item = String> + '_ {
    value
        .split(|&b| b == b',')
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        assert!(is_hop_by_hop("transfer-encoding"));
        assert!(!is_hop_by_hop("content-type"));
        #[cfg(feature = "app")]
        {
            assert!(is_hop_by_hop_cgi(b"TRANSFER_ENCODING"));
            assert!(is_hop_by_hop_cgi(b"KEEP_ALIVE"));
            assert!(!is_hop_by_hop_cgi(b"KEEP_ALIVES"));
            assert!(!is_hop_by_hop_cgi(b"CONTENT_TYPE"));
        }
        let t: Vec<_> = connection_tokens(b" close, X-Secret ,,Foo").collect();
        assert_eq!(t, ["close", "x-secret", "foo"]);
    }
}
