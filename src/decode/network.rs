//! Network layer: ARP/RARP, and IPv4 and IPv6 (with extension headers and AH read
//! through etherparse's header slices). The outermost IP header gives `ip_version` and
//! `ttl`; every IP header overrides Source/Destination, so the innermost wins. Fragments
//! are decoded per frame: only a first fragment goes on to the transport layer.

use super::{Addr, Cx, IpHint};

impl Cx<'_> {
    pub(super) fn arp(&mut self, off: usize, rarp: bool) {
        self.r.protocol = if rarp { "RARP" } else { "ARP" };
        let (Some(ptype), Some(hlen), Some(plen), Some(op)) = (
            self.u16_at(off + 2),
            self.u8_at(off + 4),
            self.u8_at(off + 5),
            self.u16_at(off + 6),
        ) else {
            self.cut("ARP", 8, off);
            return;
        };
        self.r.arp_op = Some(op);
        self.r.protocol = match op {
            3 | 4 => "RARP",
            8 | 9 => "InARP",
            _ if rarp => "RARP",
            _ => "ARP",
        };
        let (hl, pl) = (usize::from(hlen), usize::from(plen));
        let sha = off + 8;
        let spa = sha + hl;
        let tha = spa + pl;
        let tpa = tha + hl;
        if hl == 6 {
            self.r.arp_sender_mac = self.mac_at(sha);
            self.r.arp_target_mac = self.mac_at(tha);
        }
        if pl == 4 && ptype == 0x0800 {
            self.r.arp_sender_ip = self.v4_at(spa);
            self.r.arp_target_ip = self.v4_at(tpa);
        }
        if self.avail(off) < 8 + 2 * (hl + pl) {
            self.cut("ARP", 8 + 2 * (hl + pl), off);
        }
    }

    pub(super) fn ip(&mut self, off: usize, end: usize, hint: IpHint) {
        let Some(b0) = self.u8_at(off) else {
            self.r.protocol = if hint == IpHint::V6 { "IPv6" } else { "IPv4" };
            self.cut("IP", 20, off);
            return;
        };
        match (b0 >> 4, hint) {
            (6, _) => self.ipv6(off, end),
            (4, IpHint::V4 | IpHint::Any) => self.ipv4(off, end),
            (v, IpHint::V6) => {
                self.r.protocol = "IPv6";
                self.error(|| format!("bogus IPv6 version ({v}, must be 6)"));
            }
            (v, _) => {
                if hint == IpHint::V4 {
                    self.r.protocol = "IPv4";
                }
                self.error(|| format!("bogus IP version ({v})"));
            }
        }
    }

    fn ipv4(&mut self, off: usize, end: usize) {
        if !self.enter() {
            return;
        }
        self.r.protocol = "IPv4";
        let b0 = self.u8_at(off).unwrap_or(0x45);
        let hlen = usize::from(b0 & 0x0f) * 4;
        if hlen < 20 {
            self.error(|| {
                format!("IPv4 header: bogus header length ({hlen}, must be at least 20)")
            });
            return;
        }
        let Some(total) = self.u16_at(off + 2) else {
            self.cut("IPv4", hlen, off);
            return;
        };
        let total = usize::from(total);
        let rep = end.saturating_sub(off);
        let ip_end = if total == 0 {
            // TSO: tshark takes the reported length.
            end
        } else if total < hlen {
            self.error(|| {
                format!("IPv4 header: bogus total length ({total}, less than header length {hlen})")
            });
            return;
        } else if total > rep {
            end
        } else {
            off + total
        };
        let outer = self.r.ip_version.is_none();
        if outer {
            self.r.ip_version = Some(4);
        }
        let frag = self.u16_at(off + 6);
        if let Some(ttl) = self.u8_at(off + 8)
            && outer
        {
            self.r.ttl = Some(ttl);
        }
        let proto = self.u8_at(off + 9);
        let (src, dst) = (self.v4_at(off + 12), self.v4_at(off + 16));
        if let Some(s) = src {
            self.r.src = Some(Addr::V4(s));
        }
        if let Some(d) = dst {
            self.r.dst = Some(Addr::V4(d));
        }
        self.r.ip_proto = proto;
        if self.avail(off) < hlen {
            self.cut("IPv4", hlen, off);
            return;
        }
        let (Some(frag), Some(proto)) = (frag, proto) else {
            return;
        };
        let more = frag & 0x2000 != 0;
        let offset = frag & 0x1fff;
        if more || offset != 0 {
            self.r.fragment = true;
        }
        if offset != 0 {
            // Not the first fragment: nothing above IP.
            return;
        }
        self.transport(proto, off + hlen, ip_end, more);
    }

    fn ipv6(&mut self, off: usize, end: usize) {
        use etherparse::{IpAuthHeaderSlice, Ipv6FragmentHeaderSlice, Ipv6RawExtHeaderSlice};
        if !self.enter() {
            return;
        }
        self.r.protocol = "IPv6";
        let outer = self.r.ip_version.is_none();
        if outer {
            self.r.ip_version = Some(6);
        }
        if let Some(h) = self.u8_at(off + 7)
            && outer
        {
            self.r.ttl = Some(h);
        }
        if let Some(s) = self.v6_at(off + 8) {
            self.r.src = Some(Addr::V6(s));
        }
        if let Some(d) = self.v6_at(off + 24) {
            self.r.dst = Some(Addr::V6(d));
        }
        let (Some(plen), Some(mut next)) = (self.u16_at(off + 4), self.u8_at(off + 6)) else {
            self.cut("IPv6", 40, off);
            return;
        };
        self.r.ip_proto = Some(next);
        if self.avail(off) < 40 {
            self.cut("IPv6", 40, off);
            return;
        }
        let ip_end = if plen == 0 {
            end
        } else {
            end.min(off + 40 + usize::from(plen))
        };
        // Extension headers, with etherparse's header slices; stop as tshark does after a
        // fragment header of a non-first fragment.
        let mut o = off + 40;
        let mut more_frags = false;
        loop {
            let rest = self
                .d
                .get(o..self.d.len().min(ip_end).max(o))
                .unwrap_or(&[]);
            let (len, nh) = match next {
                0 | 43 | 60 => match Ipv6RawExtHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.slice().len(), h.next_header().0),
                    Err(_) => {
                        self.r.ip_proto = Some(next);
                        self.cut("IPv6 extension", 8, o);
                        return;
                    }
                },
                44 => match Ipv6FragmentHeaderSlice::from_slice(rest) {
                    Ok(h) => {
                        self.r.fragment = true;
                        let first = h.fragment_offset().value() == 0;
                        more_frags = h.more_fragments();
                        if !first {
                            self.r.ip_proto = Some(h.next_header().0);
                            return;
                        }
                        (h.slice().len(), h.next_header().0)
                    }
                    Err(_) => {
                        self.r.ip_proto = Some(next);
                        self.cut("IPv6 fragment", 8, o);
                        return;
                    }
                },
                51 => match IpAuthHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.slice().len(), h.next_header().0),
                    Err(_) => {
                        self.r.ip_proto = Some(next);
                        self.cut("IPv6 authentication", 12, o);
                        return;
                    }
                },
                _ => break,
            };
            o += len;
            next = nh;
            self.r.ip_proto = Some(next);
        }
        self.transport(next, o, ip_end, more_frags);
    }
}
