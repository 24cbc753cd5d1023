//! SSDP/UPnP (UDP 1900): the `SERVER` header of NOTIFY announcements and of M-SEARCH
//! responses, a product string such as `Linux/3.14 UPnP/1.0 Sonos/70.3`. M-SEARCH
//! requests carry a `USER-AGENT` instead and are skipped. `USN` (a UUID and device
//! type) is not read: it identifies, but does not name, the device.

use crate::http::{MAX_HEAD, header, lines};
use crate::sanitize::{Client, Emitter};
use crate::{Kind, Name, Packet};

pub(crate) fn datagram(p: &Packet<'_>, out: &mut Vec<Name>) {
    let head = p.payload.get(..MAX_HEAD).unwrap_or(p.payload);
    if !(head.starts_with(b"NOTIFY ") || head.starts_with(b"HTTP/1.")) {
        return;
    }
    let Some(server) = header(lines(head).skip(1), b"server") else {
        return;
    };
    let mut e = Emitter::new(out);
    e.push(Kind::Ssdp, server, Some(p.src), Client::source(p), None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::packet;

    fn run(payload: &[u8]) -> Vec<Name> {
        let mut out = Vec::new();
        datagram(&packet(payload, 1900, 1900, false), &mut out);
        out
    }

    #[test]
    fn notify_and_response() {
        let notify = b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\n\
            NTS: ssdp:alive\r\nServer: Linux/3.14 UPnP/1.0 Sonos/70.3\r\nUSN: uuid:x\r\n\r\n";
        let out = run(notify);
        assert_eq!(out.len(), 1);
        let n = out.first().cloned();
        assert_eq!(
            n.as_ref().map(|n| n.name.as_str()),
            Some("Linux/3.14 UPnP/1.0 Sonos/70.3")
        );
        let p = packet(&[], 0, 0, false);
        assert_eq!(n.as_ref().and_then(|n| n.addr), Some(p.src));
        assert_eq!(n.and_then(|n| n.client_mac), p.src_mac);
        let resp =
            b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nserver:Roku/9.4 UPnP/1.0\r\n\r\n";
        assert_eq!(
            run(resp).first().map(|n| n.name.as_str()),
            Some("Roku/9.4 UPnP/1.0")
        );
    }

    #[test]
    fn search_requests_and_junk_skipped() {
        let search =
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\
            USER-AGENT: Chromium/1 Linux\r\nSERVER: not-read\r\n\r\n";
        assert!(run(search).is_empty());
        assert!(run(b"\x00\x01garbage").is_empty());
        assert!(run(b"NOTIFY * HTTP/1.1\r\nNTS: ssdp:byebye\r\n\r\n").is_empty());
    }

    #[test]
    fn hostile_and_every_prefix() {
        let m =
            b"NOTIFY * HTTP/1.1\r\nSERVER: <script>\"><img onerror=x>\xe2\x80\xae\x00\xff\r\n\r\n";
        assert_eq!(
            run(m).first().map(|n| n.name.as_str()),
            Some("<script>\"><img onerror=x>\u{FFFD}")
        );
        for n in 0..=m.len() {
            let _ = run(m.get(..n).unwrap_or_default());
        }
    }
}
