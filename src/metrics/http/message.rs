//! The little HTTP/1.1 the metrics listener speaks: the request line of a
//! GET or HEAD, and a complete response with Connection: close.

/// The longest request head (request line and headers) read.
pub(super) const MAX_REQUEST_HEAD: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    Metrics,
    Livez,
    Readyz,
    Browser,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Request {
    pub path: Path,
    /// HEAD: the response carries headers only.
    pub head_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

impl Response {
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: format!("{body}\n"),
        }
    }

    /// A JSON body any page may read: it says only where and how to
    /// connect, which pages need from other origins.
    pub fn json(body: String) -> Self {
        Self {
            status: 200,
            content_type: JSON,
            body,
        }
    }

    /// The bytes to send, headers only if `head_only`.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let allow = match self.status {
            405 => "Allow: GET, HEAD\r\n",
            _ => "",
        };
        let cors = match self.content_type {
            JSON => "Access-Control-Allow-Origin: *\r\n",
            _ => "",
        };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}{cors}\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
        );
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Where a complete request head ends (after its blank line), if it has.
pub(super) fn head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Reads the request line; the headers do not matter here. Errors are the
/// response to send instead.
pub(super) fn parse(head: &[u8]) -> Result<Request, Response> {
    let bad = || Response::text(400, "bad request");
    let line = head.split(|&b| b == b'\r').next().ok_or_else(bad)?;
    let line = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Response::text(405, "only GET and HEAD")),
    };
    let path = match target.split('?').next() {
        Some("/metrics") => Path::Metrics,
        Some("/livez") => Path::Livez,
        Some("/readyz") => Path::Readyz,
        Some("/browser") => Path::Browser,
        _ => Path::Other,
    };
    Ok(Request { path, head_only })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gets_and_heads_of_known_paths_parse() {
        let get = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!((get.path, get.head_only), (Path::Metrics, false));
        let head = parse(b"HEAD /readyz HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!((head.path, head.head_only), (Path::Readyz, true));
        assert_eq!(parse(b"GET /x HTTP/1.1\r\n\r\n").unwrap().path, Path::Other);
    }

    #[test]
    fn other_methods_and_garbage_are_refused() {
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n").unwrap_err().status,
            405
        );
        assert_eq!(parse(b"GET /metrics\r\n\r\n").unwrap_err().status, 400);
        assert_eq!(parse(b"GET / HTTP/2 x\r\n\r\n").unwrap_err().status, 400);
        assert_eq!(parse(b"\xff\xfe\r\n\r\n").unwrap_err().status, 400);
    }

    #[test]
    fn the_head_ends_after_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let response = Response::text(503, "draining");
        let text = String::from_utf8(response.encode(false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("Content-Length: 9\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\ndraining\n"));
        let head = String::from_utf8(response.encode(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
    }
}
