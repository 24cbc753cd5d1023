//! HTTP/1.x Host header of a request that starts a TCP segment.

use crate::sanitize::{Client, Emitter};
use crate::{Kind, Name, Packet};

/// Header bytes searched: a request's head is read only within this segment and only
/// this far.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Header lines searched.
const MAX_LINES: usize = 100;

/// Longest method token taken for one (`UNSUBSCRIBE`, `PROPPATCH`, `MKCALENDAR`, ...).
const MAX_METHOD: usize = 20;

/// True when `head` starts with a method token (upper-case letters, `-`, `_`) and a
/// space: the eight of RFC 9110 and the extensions home devices use over TCP (UPnP's
/// NOTIFY, SUBSCRIBE, UNSUBSCRIBE; WebDAV's PROPFIND), as tshark takes any token before
/// ` HTTP/1.x` for a request.
fn starts_with_method(head: &[u8]) -> bool {
    let n = head
        .iter()
        .take(MAX_METHOD + 1)
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-' || **b == b'_')
        .count();
    (1..=MAX_METHOD).contains(&n) && head.get(n) == Some(&b' ')
}

pub(crate) fn segment(p: &Packet<'_>, out: &mut Vec<Name>) {
    let head = p.payload.get(..MAX_HEAD).unwrap_or(p.payload);
    if !starts_with_method(head) {
        return;
    }
    let mut lines = lines(head);
    let Some(request) = lines.next() else { return };
    if !request.windows(b" HTTP/1.".len()).any(|w| w == b" HTTP/1.") {
        return;
    }
    let Some(host) = header(lines, b"host") else {
        return;
    };
    let mut e = Emitter::new(out);
    e.push(
        Kind::HttpHost,
        strip_port(host),
        Some(p.dst),
        Client::source(p),
        None,
    );
}

/// The lines of `head` (CRLF or LF), at most [`MAX_LINES`]; a line cut by the end of the
/// data is still given.
pub(crate) fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take(MAX_LINES)
}

/// The value of the first header called `name` (ASCII case-insensitive) among `lines`,
/// up to the blank line that ends the head; white space around it trimmed.
pub(crate) fn header<'a>(lines: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
    for line in lines {
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = line.split_at(colon);
        if key.trim_ascii().eq_ignore_ascii_case(name) {
            return Some(value.get(1..).unwrap_or_default().trim_ascii());
        }
    }
    None
}

/// `host[:port]` without the port; `[v6]:port` and `[v6]` without brackets or port.
fn strip_port(host: &[u8]) -> &[u8] {
    if let Some(rest) = host.strip_prefix(b"[") {
        return match rest.iter().position(|&b| b == b']') {
            Some(end) => rest.get(..end).unwrap_or(rest),
            None => rest,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        // One colon followed by digits (or nothing): a port. Several colons: a bare
        // IPv6 address, left as it is.
        Some(i)
            if host.iter().filter(|&&b| b == b':').count() == 1
                && host
                    .get(i + 1..)
                    .is_some_and(|p| p.iter().all(u8::is_ascii_digit)) =>
        {
            host.get(..i).unwrap_or(host)
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::packet;

    fn run(payload: &[u8]) -> Vec<Name> {
        let mut out = Vec::new();
        segment(&packet(payload, 50000, 80, true), &mut out);
        out
    }

    fn host(payload: &[u8]) -> Option<String> {
        run(payload).first().map(|n| n.name.clone())
    }

    #[test]
    fn host_of_requests() {
        let req = b"GET /index.html HTTP/1.1\r\nUser-Agent: x\r\nHOST:  Example.com:8080 \r\n\r\n";
        let out = run(req);
        assert_eq!(out.len(), 1);
        let n = out.first().cloned();
        assert_eq!(n.as_ref().map(|n| n.name.as_str()), Some("Example.com"));
        assert_eq!(n.as_ref().map(|n| n.kind), Some(Kind::HttpHost));
        let p = packet(&[], 0, 0, true);
        assert_eq!(n.as_ref().and_then(|n| n.addr), Some(p.dst));
        assert_eq!(n.as_ref().and_then(|n| n.client_ip), Some(p.src));
        assert_eq!(n.and_then(|n| n.client_mac), p.src_mac);
        assert_eq!(
            host(b"POST /a HTTP/1.0\nhost: [2001:db8::1]:80\n\n").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            host(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n").as_deref(),
            Some("h")
        );
        assert_eq!(
            host(b"HEAD / HTTP/1.1\r\nHost: 2001:db8::2\r\n").as_deref(),
            Some("2001:db8::2")
        );
        // UPnP's GENA requests over TCP are HTTP/1.1 requests too.
        assert_eq!(
            host(b"SUBSCRIBE /evt HTTP/1.1\r\nHOST: 192.168.0.13:49152\r\n\r\n").as_deref(),
            Some("192.168.0.13")
        );
        assert_eq!(
            host(b"NOTIFY /cb HTTP/1.1\r\nHost: tv\r\n\r\n").as_deref(),
            Some("tv")
        );
    }

    #[test]
    fn not_requests() {
        assert!(run(b"HTTP/1.1 200 OK\r\nHost: x\r\n\r\n").is_empty());
        assert!(run(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").is_empty());
        assert!(run(b"get / HTTP/1.1\r\nHost: x\r\n\r\n").is_empty());
        assert!(run(b"GET / HTTP/1.1\r\nX: y\r\n\r\nHost: body\r\n").is_empty());
        assert!(run(b"GET1 / HTTP/1.1\r\nHost: x\r\n").is_empty());
        assert!(run(b" GET / HTTP/1.1\r\nHost: x\r\n").is_empty());
        assert!(run(b"ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: x\r\n").is_empty());
        assert!(run(b"GET / HTTP/1.1\r\nHost: \r\n").is_empty());
    }

    #[test]
    fn hostile_and_cut() {
        let req = b"GET / HTTP/1.1\r\nHost: <script>\xe2\x80\xae\x00\xff\r\n\r\n";
        assert_eq!(host(req).as_deref(), Some("<script>\u{FFFD}"));
        for n in 0..=req.len() {
            let _ = run(req.get(..n).unwrap_or_default());
        }
        // A Host past the searched head is not found.
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b"X-Pad: 1\r\n".as_slice(), 200).flatten());
        big.extend_from_slice(b"Host: late\r\n\r\n");
        assert!(run(&big).is_empty());
        let long = [b"GET / HTTP/1.1\r\nHost: ".as_slice(), &[b'a'; 10_000]].concat();
        assert_eq!(host(&long).map(|h| h.len()), Some(63));
    }
}
