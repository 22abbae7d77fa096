//! A small blocking HTTP/1.1 client for loopback servers under test: the
//! WebDriver protocol to chromedriver, and scrapes of a test's own endpoints.
//!
//! It speaks plain HTTP (no TLS), one request per connection
//! (`Connection: close`), and reads `Content-Length`, chunked and
//! read-to-close bodies: what a loopback test needs, and nothing that would pull
//! an HTTP stack into every test build.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let response = conc_test_support::http::get("http://127.0.0.1:9090/metrics", Duration::from_secs(5))?;
//! assert_eq!(response.status, 200);
//! # Ok::<(), conc_test_support::HarnessError>(())
//! ```

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::HarnessError;

/// A response: its status and its body as text (lossy UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// `GET url`.
///
/// # Errors
///
/// [`HarnessError::Http`] when the URL is not `http://host:port/...` or the
/// server cannot be reached or answers something that is not HTTP.
pub fn get(url: &str, timeout: Duration) -> Result<HttpResponse, HarnessError> {
    request("GET", url, None, timeout)
}

/// `method url` with an optional JSON `body`.
///
/// # Errors
///
/// As [`get`].
pub fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<HttpResponse, HarnessError> {
    let fail = |reason: String| HarnessError::Http { url: url.to_owned(), reason };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs are supported".into()))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| fail(format!("bad address `{authority}`: {e}")))?
        .next()
        .ok_or_else(|| fail(format!("`{authority}` resolves to no address")))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(format!("connect: {e}")))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| fail(e.to_string()))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| fail(e.to_string()))?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Accept: */*\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| fail(format!("send: {e}")))?;
    let raw = receive(&mut stream).map_err(|e| fail(format!("receive: {e}")))?;
    parse(&raw).map_err(fail)
}

/// Reads one response: up to its `Content-Length`, to the last chunk, or to
/// the close (some servers keep the connection open despite `Connection:
/// close`, so the length decides where a response ends).
fn receive(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buffer = [0_u8; 16 * 1024];
    let mut head_end = None;
    loop {
        if head_end.is_none() {
            head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        }
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|line| {
                line.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok())
            });
            let chunked = head.contains("transfer-encoding: chunked")
                || head.contains("transfer-encoding:chunked");
            match length {
                Some(length) if raw.len() >= end + length => return Ok(raw),
                None if chunked && raw[end..].ends_with(b"0\r\n\r\n") => return Ok(raw),
                _ => {}
            }
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buffer[..read]);
    }
}

/// Splits a whole response into its status and decoded body.
fn parse(raw: &[u8]) -> Result<HttpResponse, String> {
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the answer has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: `{status_line}`"))?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let payload = &raw[split + 4..];
    let body = if chunked { dechunk(payload)? } else { payload.to_vec() };
    Ok(HttpResponse { status, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").ok_or("a chunk has no size line")?;
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("a chunk is cut short")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("a chunk has no end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let plain = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (200, "hi"));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n\
                        3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        let chunked = parse(chunked).unwrap();
        assert_eq!((chunked.status, chunked.body.as_str()), (404, "abcde"));
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn refuses_other_schemes_by_name() {
        let error = get("https://127.0.0.1/", Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("https://127.0.0.1/"), "{error}");
    }
}
