//! Staging: the frames of one burst, built header by header (Ethernet with an optional
//! 802.1Q tag, IPv4 or IPv6, TCP/UDP/ICMP/ICMPv6, ARP, IPv4 fragments) before they get
//! timestamps.
//!
//! Invariants: lengths and checksums are correct in every header; a frame from a
//! padding sender is padded to 60 bytes; each staged frame records the source label
//! and device it counts for in the ground truth.

use std::io;

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, IcmpEchoHeader,
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpFragOffset, IpNumber, Ipv4Header,
    Ipv6Header, SingleVlanHeader, TcpHeader, TcpOptionElement, UdpHeader, VlanId, VlanPcp,
};

use crate::build_err;
use crate::cast::{Ep, Ip, ROUTER};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Staged {
    pub(crate) end: usize,
    pub(crate) delay_us: u64,
    pub(crate) key: u16,
    pub(crate) dev: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Stage {
    pub(crate) bytes: Vec<u8>,
    pub(crate) frames: Vec<Staged>,
    pub(crate) ip_id: u16,
    pub(crate) vlan_frames: u64,
    pub(crate) fragments: u64,
}

const MIN_FRAME: usize = 60;

impl Stage {
    /// The Ethernet header, with an 802.1Q tag (counted) when `vlan` is not 0.
    fn ethernet(&mut self, src: &Ep, dst: &Ep, vlan: u16, ether_type: EtherType) -> io::Result<()> {
        let b = &mut self.bytes;
        if vlan == 0 {
            b.extend_from_slice(
                &Ethernet2Header {
                    source: src.mac,
                    destination: dst.mac,
                    ether_type,
                }
                .to_bytes(),
            );
        } else {
            self.vlan_frames += 1;
            b.extend_from_slice(
                &Ethernet2Header {
                    source: src.mac,
                    destination: dst.mac,
                    ether_type: EtherType::VLAN_TAGGED_FRAME,
                }
                .to_bytes(),
            );
            b.extend_from_slice(
                &SingleVlanHeader {
                    pcp: VlanPcp::ZERO,
                    drop_eligible_indicator: false,
                    vlan_id: VlanId::try_new(vlan).map_err(build_err)?,
                    ether_type,
                }
                .to_bytes(),
            );
        }
        Ok(())
    }

    /// Writes Ethernet (with an 802.1Q tag when `vlan` is not 0), the IP header and
    /// the transport header with correct lengths and checksums, then `payload`.
    pub(crate) fn ip_frame(
        &mut self,
        src: &Ep,
        dst: &Ep,
        vlan: u16,
        l4: L4,
        payload: &[u8],
    ) -> io::Result<()> {
        let ether_type = match src.ip {
            Ip::V4(_) => EtherType::IPV4,
            Ip::V6(_) => EtherType::IPV6,
        };
        self.ethernet(src, dst, vlan, ether_type)?;
        let b = &mut self.bytes;
        let (proto, l4_len) = match &l4 {
            L4::Tcp(t) => (IpNumber::TCP, t.header_len() + payload.len()),
            L4::Udp(..) => (IpNumber::UDP, UdpHeader::LEN + payload.len()),
            L4::Icmp4(_) => (IpNumber::ICMP, 8 + payload.len()),
            L4::Icmp6(_) => (IpNumber::IPV6_ICMP, 8 + payload.len()),
        };
        let ip = match (src.ip, dst.ip) {
            (Ip::V4(s), Ip::V4(d)) => {
                self.ip_id = self.ip_id.wrapping_add(1);
                let mut ip = Ipv4Header {
                    identification: self.ip_id,
                    time_to_live: src.ttl,
                    protocol: proto,
                    source: s,
                    destination: d,
                    ..Default::default()
                };
                ip.set_payload_len(l4_len).map_err(build_err)?;
                ip.header_checksum = ip.calc_header_checksum();
                b.extend_from_slice(&ip.to_bytes());
                IpHead::V4(ip)
            }
            (Ip::V6(s), Ip::V6(d)) => {
                let ip = Ipv6Header {
                    hop_limit: src.ttl,
                    next_header: proto,
                    payload_length: u16::try_from(l4_len).map_err(build_err)?,
                    source: s,
                    destination: d,
                    ..Default::default()
                };
                b.extend_from_slice(&ip.to_bytes());
                IpHead::V6(ip)
            }
            _ => return Err(build_err("mixed IPv4/IPv6 endpoints")),
        };
        // The transport checksum covers the IP version's pseudo-header.
        match (l4, &ip) {
            (L4::Tcp(mut t), IpHead::V4(ip)) => {
                t.checksum = t.calc_checksum_ipv4(ip, payload).map_err(build_err)?;
                b.extend_from_slice(&t.to_bytes());
            }
            (L4::Tcp(mut t), IpHead::V6(ip)) => {
                t.checksum = t.calc_checksum_ipv6(ip, payload).map_err(build_err)?;
                b.extend_from_slice(&t.to_bytes());
            }
            (L4::Udp(sp, dp), IpHead::V4(ip)) => b.extend_from_slice(
                &UdpHeader::with_ipv4_checksum(sp, dp, ip, payload)
                    .map_err(build_err)?
                    .to_bytes(),
            ),
            (L4::Udp(sp, dp), IpHead::V6(ip)) => b.extend_from_slice(
                &UdpHeader::with_ipv6_checksum(sp, dp, ip, payload)
                    .map_err(build_err)?
                    .to_bytes(),
            ),
            (L4::Icmp4(ty), IpHead::V4(_)) => {
                b.extend_from_slice(&Icmpv4Header::with_checksum(ty, payload).to_bytes());
            }
            (L4::Icmp6(ty), IpHead::V6(ip)) => b.extend_from_slice(
                &Icmpv6Header::with_checksum(ty, ip.source, ip.destination, payload)
                    .map_err(build_err)?
                    .to_bytes(),
            ),
            (L4::Icmp6(_), IpHead::V4(_)) => return Err(build_err("ICMPv6 over IPv4")),
            (L4::Icmp4(_), IpHead::V6(_)) => return Err(build_err("ICMP over IPv6")),
        }
        b.extend_from_slice(payload);
        Ok(())
    }

    /// Records the frame just written (padding it if needed).
    pub(crate) fn done(&mut self, src: &Ep, delay_us: u64) {
        self.done_key(src, src.key, delay_us);
    }

    pub(crate) fn done_key(&mut self, src: &Ep, key: u16, delay_us: u64) {
        let start = self.frames.last().map_or(0, |f| f.end);
        if src.pad && self.bytes.len() - start < MIN_FRAME {
            self.bytes.resize(start + MIN_FRAME, 0);
        }
        self.frames.push(Staged {
            end: self.bytes.len(),
            delay_us,
            key,
            dev: src.dev,
        });
    }

    /// A frame left out on purpose (a planted silence): no bytes, but it takes its place
    /// in time and in the random draws, so the rest of the night stays as it would be.
    pub(crate) fn phantom(&mut self, src: &Ep, delay_us: u64) {
        if matches!(src.ip, Ip::V4(_)) {
            self.ip_id = self.ip_id.wrapping_add(1);
        }
        let end = self.frames.last().map_or(0, |f| f.end);
        self.bytes.truncate(end);
        self.frames.push(Staged {
            end,
            delay_us,
            key: src.key,
            dev: src.dev,
        });
    }

    pub(crate) fn udp(
        &mut self,
        s: &Ep,
        d: &Ep,
        ports: (u16, u16),
        vlan: u16,
        payload: &[u8],
        delay: u64,
    ) -> io::Result<()> {
        self.ip_frame(s, d, vlan, L4::Udp(ports.0, ports.1), payload)?;
        self.done(s, delay);
        Ok(())
    }

    pub(crate) fn echo(
        &mut self,
        s: &Ep,
        d: &Ep,
        reply: bool,
        e: IcmpEchoHeader,
        payload: &[u8],
        delay: u64,
    ) -> io::Result<()> {
        let l4 = match (s.ip, reply) {
            (Ip::V4(_), false) => L4::Icmp4(Icmpv4Type::EchoRequest(e)),
            (Ip::V4(_), true) => L4::Icmp4(Icmpv4Type::EchoReply(e)),
            (Ip::V6(_), false) => L4::Icmp6(Icmpv6Type::EchoRequest(e)),
            (Ip::V6(_), true) => L4::Icmp6(Icmpv6Type::EchoReply(e)),
        };
        self.ip_frame(s, d, 0, l4, payload)?;
        self.done(s, delay);
        Ok(())
    }

    pub(crate) fn icmpv6(
        &mut self,
        s: &Ep,
        d: &Ep,
        ty: u8,
        b5to8: [u8; 4],
        payload: &[u8],
        delay: u64,
    ) -> io::Result<()> {
        let l4 = L4::Icmp6(Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: 0,
            bytes5to8: b5to8,
        });
        self.ip_frame(s, d, 0, l4, payload)?;
        self.done(s, delay);
        Ok(())
    }

    /// ARP: `sender` is (MAC, IP), `target` is (MAC, IP), `eth_dst` the frame destination.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn arp(
        &mut self,
        src: &Ep,
        eth_dst: [u8; 6],
        op: ArpOperation,
        sender_ip: [u8; 4],
        target_mac: [u8; 6],
        target_ip: [u8; 4],
        mac_key: u16,
        delay: u64,
    ) -> io::Result<()> {
        let pkt = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            op,
            &src.mac,
            &sender_ip,
            &target_mac,
            &target_ip,
        )
        .map_err(build_err)?;
        self.bytes.extend_from_slice(
            &Ethernet2Header {
                source: src.mac,
                destination: eth_dst,
                ether_type: EtherType::ARP,
            }
            .to_bytes(),
        );
        pkt.write(&mut self.bytes)?;
        self.done_key(src, mac_key, delay);
        Ok(())
    }

    /// An IPv4 UDP datagram split into fragments of at most `mtu_payload` bytes
    /// (a multiple of 8) of IP payload each.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn udp_fragmented(
        &mut self,
        s: &Ep,
        d: &Ep,
        ports: (u16, u16),
        payload: &[u8],
        mtu_payload: usize,
        scratch: &mut Vec<u8>,
        delay: u64,
    ) -> io::Result<()> {
        let (Ip::V4(src), Ip::V4(dst)) = (s.ip, d.ip) else {
            return Err(build_err("fragments are IPv4 only"));
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let mut ip = Ipv4Header {
            identification: self.ip_id,
            dont_fragment: false,
            time_to_live: s.ttl,
            protocol: IpNumber::UDP,
            source: src,
            destination: dst,
            ..Default::default()
        };
        let udp =
            UdpHeader::with_ipv4_checksum(ports.0, ports.1, &ip, payload).map_err(build_err)?;
        scratch.clear();
        scratch.extend_from_slice(&udp.to_bytes());
        scratch.extend_from_slice(payload);
        let mut off = 0;
        while off < scratch.len() {
            let end = (off + mtu_payload).min(scratch.len());
            ip.more_fragments = end < scratch.len();
            ip.fragment_offset = IpFragOffset::try_new((off / 8) as u16).map_err(build_err)?;
            ip.set_payload_len(end - off).map_err(build_err)?;
            ip.header_checksum = ip.calc_header_checksum();
            Ethernet2Header {
                source: s.mac,
                destination: d.mac,
                ether_type: EtherType::IPV4,
            }
            .write(&mut self.bytes)?;
            ip.write(&mut self.bytes)?;
            self.bytes.extend_from_slice(&scratch[off..end]);
            self.done(s, if off == 0 { delay } else { 40 });
            self.fragments += 1;
            off = end;
        }
        Ok(())
    }
}

/// The IP header of the frame being built, which the transport checksum covers.
enum IpHead {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// The transport header of an IP frame (checksum filled in when written).
#[derive(Debug, Clone)]
pub(crate) enum L4 {
    Tcp(TcpHeader),
    Udp(u16, u16),
    Icmp4(Icmpv4Type),
    Icmp6(Icmpv6Type),
}

/// TCP flags as [`tcp_frame`] takes them.
pub(crate) const F_SYN: u8 = 1;
pub(crate) const F_ACK: u8 = 2;
pub(crate) const F_PSH: u8 = 4;
pub(crate) const F_FIN: u8 = 8;

/// The header fields of one TCP segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    pub(crate) src: Ep,
    pub(crate) dst: Ep,
    /// Source and destination port.
    pub(crate) ports: (u16, u16),
    pub(crate) seq: u32,
    /// Written only when `flags` has [`F_ACK`].
    pub(crate) ack: u32,
    pub(crate) flags: u8,
}

/// A TCP connection being generated (ordinary sessions and planted activities).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flow {
    pub(crate) c: Ep,
    pub(crate) s: Ep,
    /// Client and server port.
    pub(crate) ports: (u16, u16),
    /// Next sequence number to send, client and server.
    seq: (u32, u32),
    pub(crate) mss: usize,
}

impl Flow {
    /// A connection from `c` to `s` on `ports` (client, server), whose sides start at
    /// the initial sequence numbers `isn` (client, server), before its SYN.
    pub(crate) fn new(c: Ep, s: Ep, ports: (u16, u16), isn: (u32, u32), mss: usize) -> Self {
        Flow {
            c,
            s,
            ports,
            seq: isn,
            mss,
        }
    }

    /// The next segment from the client (or the server), carrying `len` bytes: at that
    /// side's next sequence number, acknowledging the other side's next one when `flags`
    /// has ACK (else 0). That side's sequence number then moves past it: `len`, and one
    /// more for a SYN or a FIN.
    pub(crate) fn next(&mut self, from_client: bool, flags: u8, len: usize) -> Seg {
        let (cport, sport) = self.ports;
        let (src, dst, ports) = if from_client {
            (self.c, self.s, (cport, sport))
        } else {
            (self.s, self.c, (sport, cport))
        };
        let (seq, other) = if from_client {
            (&mut self.seq.0, self.seq.1)
        } else {
            (&mut self.seq.1, self.seq.0)
        };
        let seg = Seg {
            src,
            dst,
            ports,
            seq: *seq,
            ack: if flags & F_ACK != 0 { other } else { 0 },
            flags,
        };
        let control = u32::from(flags & (F_SYN | F_FIN) != 0);
        // Sequence numbers wrap (RFC 9293); a segment is at most an MSS long.
        *seq = seq.wrapping_add(len as u32).wrapping_add(control);
        seg
    }
}

/// Stages one TCP segment (SYNs carry MSS, SACK-permitted and window scale 7).
pub(crate) fn tcp_frame(
    stage: &mut Stage,
    seg: &Seg,
    payload: &[u8],
    delay: u64,
) -> io::Result<()> {
    let Seg {
        src,
        dst,
        ports: (sp, dp),
        seq,
        ack,
        flags,
    } = *seg;
    // Windows as the SYNs announce them; later ones are scaled by 2^7.
    let window = match (flags & F_SYN != 0, src.dev == ROUTER) {
        (true, true) => 65_160,
        (true, false) => 64_240,
        (false, true) => 509,
        (false, false) => 502,
    };
    let mut t = TcpHeader::new(sp, dp, seq, window);
    t.syn = flags & F_SYN != 0;
    t.ack = flags & F_ACK != 0;
    t.psh = flags & F_PSH != 0;
    t.fin = flags & F_FIN != 0;
    if t.ack {
        t.acknowledgment_number = ack;
    }
    if t.syn {
        let mss = if matches!(src.ip, Ip::V6(_)) {
            1440
        } else {
            1460
        };
        t.set_options(&[
            TcpOptionElement::MaximumSegmentSize(mss),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .map_err(build_err)?;
    }
    stage.ip_frame(&src, &dst, 0, L4::Tcp(t), payload)?;
    stage.done(&src, delay);
    Ok(())
}
