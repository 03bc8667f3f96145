//! A strict reading of the echo application's Responder answer (`fcgi_echo`):
//!
//! ```text
//! role: responder
//! request-id: ID
//! param: NAME=VALUE        (one line per param, in received order)
//! stdin-length: N
//!
//! <N stdin bytes>
//! ```

/// The CGI header block every echo Responder answer starts with (on the FastCGI side,
/// before a web server turns it into an HTTP response).
pub const CGI_HEAD: &[u8] = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";

/// The parsed body of an echo Responder answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoReply {
    /// The `role:` line.
    pub role: String,
    /// The FastCGI request id the web server used.
    pub request_id: u16,
    /// The params, in the order the web server sent them, byte for byte.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// The request body (`STDIN`) as the application received it.
    pub stdin: Vec<u8>,
}

impl EchoReply {
    /// Parses `body`, requiring exactly the documented layout: anything missing, out of
    /// order, or after the `stdin-length` bytes is an error.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut lines = Lines(body);
        let role = lines
            .text()?
            .strip_prefix("role: ")
            .ok_or("first line is not `role: `")?
            .to_owned();
        let request_id = lines
            .text()?
            .strip_prefix("request-id: ")
            .and_then(|s| s.parse().ok())
            .ok_or("second line is not `request-id: N`")?;
        let mut params = Vec::new();
        let stdin_length: usize = loop {
            let l = lines.raw()?;
            if let Some(pair) = l.strip_prefix(b"param: ") {
                let eq = pair
                    .iter()
                    .position(|&b| b == b'=')
                    .ok_or("param line without `=`")?;
                params.push((pair[..eq].to_vec(), pair[eq + 1..].to_vec()));
            } else if let Some(n) = l.strip_prefix(b"stdin-length: ") {
                let n = String::from_utf8_lossy(n);
                break n.parse().map_err(|_| format!("bad stdin-length {n:?}"))?;
            } else {
                return Err(format!("unexpected line {:?}", String::from_utf8_lossy(l)));
            }
        };
        if !lines.raw()?.is_empty() {
            return Err("no blank line after stdin-length".into());
        }
        let rest = lines.0;
        if rest.len() != stdin_length {
            return Err(format!(
                "stdin-length {stdin_length} but {} bytes follow",
                rest.len()
            ));
        }
        Ok(Self {
            role,
            request_id,
            params,
            stdin: rest.to_vec(),
        })
    }

    /// The value of the first param named `name`, as bytes.
    pub fn param_bytes(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The value of the first param named `name`.
    /// (`None` also when its value is not UTF-8: see [`param_bytes`](Self::param_bytes)).
    pub fn param(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.param_bytes(name)?).ok()
    }

    /// Asserts that param `name` was sent with exactly `value`.
    #[track_caller]
    pub fn assert_param(&self, name: &str, value: &str) {
        assert_eq!(
            self.param(name),
            Some(value),
            "param {name}; all params: {:#?}",
            self.params
        );
    }

    /// Asserts that no param named `name` was sent.
    #[track_caller]
    pub fn assert_no_param(&self, name: &str) {
        assert_eq!(self.param(name), None, "param {name} should be absent");
    }
}

/// The lines of an echo answer, consumed from the front.
struct Lines<'a>(&'a [u8]);

impl<'a> Lines<'a> {
    fn raw(&mut self) -> Result<&'a [u8], String> {
        let end = self
            .0
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| "missing line end".to_owned())?;
        let l = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Ok(l)
    }

    fn text(&mut self) -> Result<String, String> {
        String::from_utf8(self.raw()?.to_vec()).map_err(|_| "a line is not UTF-8".to_owned())
    }
}

/// Splits a CGI answer (what `cgi-fcgi` prints) into its header block and body, requiring
/// the echo application's exact header block.
pub fn strip_cgi_head(raw: &[u8]) -> Result<&[u8], String> {
    raw.strip_prefix(CGI_HEAD).ok_or_else(|| {
        format!(
            "answer does not start with the echo CGI head: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_layout() {
        let body = b"role: responder\nrequest-id: 7\nparam: A=1\nparam: B=x=y\nparam: C=\n\
                     stdin-length: 3\n\nab\n";
        let r = EchoReply::parse(body).unwrap();
        assert_eq!(r.role, "responder");
        assert_eq!(r.request_id, 7);
        assert_eq!(r.param("B"), Some("x=y"));
        assert_eq!(r.param("C"), Some(""));
        assert_eq!(r.params.len(), 3);
        assert_eq!(r.stdin, b"ab\n");
    }

    #[test]
    fn keeps_param_bytes_that_are_not_utf8() {
        let body = b"role: responder\nrequest-id: 1\nparam: X=\xff\xfe\nstdin-length: 0\n\n";
        let r = EchoReply::parse(body).unwrap();
        assert_eq!(r.param_bytes("X"), Some(&b"\xff\xfe"[..]));
        assert_eq!(r.param("X"), None);
    }

    #[test]
    fn rejects_deviations() {
        let ok = b"role: responder\nrequest-id: 1\nstdin-length: 0\n\n";
        assert!(EchoReply::parse(ok).is_ok());
        for bad in [
            &b"role: responder\nrequest-id: 1\nstdin-length: 0\n\nextra"[..],
            b"role: responder\nrequest-id: 1\nstdin-length: 2\n\nx",
            b"request-id: 1\nrole: responder\nstdin-length: 0\n\n",
            b"role: responder\nrequest-id: one\nstdin-length: 0\n\n",
            b"role: responder\nrequest-id: 1\nparam: NOEQUALS\nstdin-length: 0\n\n",
            b"role: responder\nrequest-id: 1\nstdin-length: 0\n",
        ] {
            assert!(
                EchoReply::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
