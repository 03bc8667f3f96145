//! A strict reading of the echo application's Responder answer (`fcgi_driver::echo`):
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
    /// The params, in the order the web server sent them.
    pub params: Vec<(String, String)>,
    /// The request body (`STDIN`) as the application received it.
    pub stdin: Vec<u8>,
}

impl EchoReply {
    /// Parses `body`, requiring exactly the documented layout: anything missing, out of
    /// order, or after the `stdin-length` bytes is an error.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut rest = body;
        let mut line = || -> Result<String, String> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| "missing line end".to_owned())?;
            let text = String::from_utf8(rest[..end].to_vec())
                .map_err(|_| "a line is not UTF-8".to_owned())?;
            rest = &rest[end + 1..];
            Ok(text)
        };
        let role = line()?
            .strip_prefix("role: ")
            .ok_or("first line is not `role: `")?
            .to_owned();
        let request_id = line()?
            .strip_prefix("request-id: ")
            .and_then(|s| s.parse().ok())
            .ok_or("second line is not `request-id: N`")?;
        let mut params = Vec::new();
        let stdin_length: usize = loop {
            let l = line()?;
            if let Some(pair) = l.strip_prefix("param: ") {
                let (name, value) = pair.split_once('=').ok_or("param line without `=`")?;
                params.push((name.to_owned(), value.to_owned()));
            } else if let Some(n) = l.strip_prefix("stdin-length: ") {
                break n.parse().map_err(|_| format!("bad stdin-length {n:?}"))?;
            } else {
                return Err(format!("unexpected line {l:?}"));
            }
        };
        if !line()?.is_empty() {
            return Err("no blank line after stdin-length".into());
        }
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

    /// The value of the first param named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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
