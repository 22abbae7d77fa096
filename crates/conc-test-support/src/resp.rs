//! A minimal RESP exchange for the readiness probe, so the harness needs no client library.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one probe may take to connect, write or read.
const PROBE_IO_TIMEOUT: Duration = Duration::from_millis(250);

/// The largest bulk reply the probe accepts (`INFO server` is about 1 KiB).
const MAX_BULK: usize = 1 << 20;

/// What one readiness probe found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The server answered `PONG` and reported the expected process id.
    Ready,
    /// Nothing ready yet: refused, loading, timed out, or another process owns the port.
    NotYet,
}

/// Sends `PING` and `INFO server` to `addr`; ready when the answer is `PONG` and the
/// server's `process_id` is `pid` (so a different server that took the port does not count).
pub(crate) fn probe(addr: SocketAddr, pid: u32) -> Probe {
    match exchange(addr) {
        Ok((pong, info)) if pong == "+PONG" && process_id(&info) == Some(pid) => Probe::Ready,
        _ => Probe::NotYet,
    }
}

fn exchange(addr: SocketAddr) -> io::Result<(String, String)> {
    let stream = TcpStream::connect_timeout(&addr, PROBE_IO_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")?;
    let pong = read_line(&mut reader)?;
    let info = read_bulk(&mut reader)?;
    Ok((pong, info))
}

/// Reads one CRLF-terminated line, without the terminator.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with("\r\n") {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "unterminated RESP line"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// Reads one bulk string reply (`$<len>\r\n<bytes>\r\n`); any other reply is an error.
fn read_bulk(reader: &mut impl BufRead) -> io::Result<String> {
    let header = read_line(reader)?;
    let len = header
        .strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n <= MAX_BULK)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, header.clone()))?;
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body)?;
    body.truncate(len);
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The `process_id` field of an `INFO server` reply.
fn process_id(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        let mut input: &[u8] = b"+PONG\r\n$32\r\n# Server\r\nprocess_id:4242\r\nx:1\r\n\r\n";
        assert_eq!(read_line(&mut input).unwrap(), "+PONG");
        let info = read_bulk(&mut input).unwrap();
        assert_eq!(process_id(&info), Some(4242));
    }

    #[test]
    fn rejects_errors_and_garbage() {
        let mut input: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";
        assert!(read_bulk(&mut input).is_err());
        let mut input: &[u8] = b"+PONG";
        assert!(read_line(&mut input).is_err());
        assert_eq!(process_id("# Server\r\nredis_version:7.0.0\r\n"), None);
    }

    #[test]
    fn nothing_listening_is_not_ready() {
        // Bind and drop: the port is very likely free, and a refused connect is "not yet".
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert_eq!(probe(addr, 1), Probe::NotYet);
    }
}
