//! Unit tests of the decoder, the presentation helpers and the sequence tracker.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use hex_literal::hex;

use super::*;

fn meta(wire_len: usize) -> FrameMeta {
    FrameMeta {
        frame: 1,
        ts_ns: 0,
        interface: 0,
        wire_len: u32::try_from(wire_len).unwrap(),
    }
}

/// Decodes a fully captured frame.
fn dec(link: LinkType, data: &[u8]) -> PacketRecord {
    decode(meta(data.len()), data, link)
}

fn v4(a: [u8; 4]) -> Option<Addr> {
    Some(Addr::V4(Ipv4Addr::from(a)))
}

fn v6(s: &str) -> Option<Addr> {
    Some(Addr::V6(s.parse::<Ipv6Addr>().unwrap()))
}

fn mac(m: [u8; 6]) -> Option<Addr> {
    Some(Addr::Mac(m))
}

const M1: [u8; 6] = hex!("001122334455");
const M2: [u8; 6] = hex!("66778899aabb");

// Ethernet 66:77:88:99:aa:bb -> 00:11:22:33:44:55, IPv4 192.168.1.2 -> 192.168.1.1 ttl 64,
// TCP 51234 -> 80 SYN seq 1000 win 64240, no payload.
const ETH_TCP_SYN: [u8; 54] = hex!(
    "001122334455 66778899aabb 0800"
    "4500 0028 1c46 4000 4006 0000 c0a80102 c0a80101"
    "c822 0050 000003e8 00000000 5002 faf0 0000 0000"
);

// IPv4 192.168.1.2 -> 192.168.1.1 ttl 64, ICMP echo request id 1 seq 1, 4 bytes data.
const IP_ICMP_ECHO_REQ: [u8; 32] = hex!(
    "4500 0020 0001 0000 4001 0000 c0a80102 c0a80101"
    "0800 0000 0001 0001 61626364"
);

// The reply: 192.168.1.1 -> 192.168.1.2 ttl 63.
const IP_ICMP_ECHO_REPLY: [u8; 32] = hex!(
    "4500 0020 0002 0000 3f01 0000 c0a80101 c0a80102"
    "0000 0000 0001 0001 61626364"
);

// Router 10.0.0.254 -> 192.168.1.2 ttl 64: time exceeded quoting
// 192.168.1.2 -> 8.8.8.8 ttl 1 UDP 40000 -> 33434.
const IP_ICMP_TTL_EXCEEDED: [u8; 56] = hex!(
    "4500 0038 0003 0000 4001 0000 0a0000fe c0a80102"
    "0b00 0000 00000000"
    "4500 0024 0004 0000 0111 0000 c0a80102 08080808"
    "9c40 829a 0010 0000"
);

// ARP request: who has 192.168.1.1? tell 192.168.1.2 (66:77:88:99:aa:bb), broadcast.
const ETH_ARP_REQ: [u8; 42] = hex!(
    "ffffffffffff 66778899aabb 0806"
    "0001 0800 06 04 0001 66778899aabb c0a80102 000000000000 c0a80101"
);

// ARP reply: 192.168.1.1 is at 00:11:22:33:44:55.
const ETH_ARP_REPLY: [u8; 42] = hex!(
    "66778899aabb 001122334455 0806"
    "0001 0800 06 04 0002 001122334455 c0a80101 66778899aabb c0a80102"
);

// QinQ: 802.1ad tag vlan 100, 802.1Q tag vlan 200, IPv4 10.1.1.1 -> 10.2.2.2 ttl 32,
// UDP 53 -> 51234, 1 byte payload.
const ETH_QINQ_UDP: [u8; 51] = hex!(
    "001122334455 66778899aabb 88a8 0064 8100 00c8 0800"
    "4500 001d 0005 0000 2011 0000 0a010101 0a020202"
    "0035 c822 0009 0000 ff"
);

// IPv6 fe80::1 -> ff02::1 hlim 255: hop-by-hop, fragment (offset 0, more), UDP 546 -> 547
// length 16 (8 bytes of data, this fragment carries all of them).
const IP6_HBH_FRAG_UDP: [u8; 72] = hex!(
    "6000 0000 0020 00 ff"
    "fe800000000000000000000000000001 ff020000000000000000000000000001"
    "2c00 0104 00000000"
    "1100 0001 00000001"
    "0222 0223 0010 0000"
    "0102030405060708"
);

// The same datagram's second fragment (offset 8, last): no transport header.
const IP6_FRAG_LATER: [u8; 56] = hex!(
    "6000 0000 0010 2c 40"
    "fe800000000000000000000000000001 ff020000000000000000000000000001"
    "1100 0008 00000001"
    "0102030405060708"
);

// IPv6 2001:db8::1 -> 2001:db8::2 hlim 64, ICMPv6 echo request id 0x1234 seq 7.
const IP6_ICMPV6_ECHO: [u8; 48] = hex!(
    "6000 0000 0008 3a 40"
    "20010db8000000000000000000000001 20010db8000000000000000000000002"
    "8000 0000 1234 0007"
);

// IPv4 10.0.0.1 -> 10.0.0.2 ttl 60 proto 4 carrying 192.168.0.1 -> 192.168.0.2 ttl 9,
// UDP 1000 -> 2000, no data.
const IP_IPIP_UDP: [u8; 48] = hex!(
    "4500 0030 0006 0000 3c04 0000 0a000001 0a000002"
    "4500 001c 0007 0000 0911 0000 c0a80001 c0a80002"
    "03e8 07d0 0008 0000"
);

// 6in4: IPv4 198.51.100.1 -> 192.0.2.1 ttl 50 proto 41, IPv6 2001:db8::1 -> 2001:db8::2
// hlim 7, TCP 443 -> 50000 ACK.
const IP_6IN4_TCP: [u8; 80] = hex!(
    "4500 0050 0008 0000 3229 0000 c6336401 c0000201"
    "6000 0000 0014 06 07"
    "20010db8000000000000000000000001 20010db8000000000000000000000002"
    "01bb c350 00000064 000000c8 5010 0100 0000 0000"
);

fn eth(payload: &[u8], ether_type: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&M1);
    v.extend_from_slice(&M2);
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn with_header(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn ethernet_tcp_syn() {
    let r = dec(LinkType::ETHERNET, &ETH_TCP_SYN);
    assert_eq!(r.protocol, "TCP");
    assert_eq!(r.src_mac, Some(M2));
    assert_eq!(r.dst_mac, Some(M1));
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.ip_version, Some(4));
    assert_eq!((r.src, r.dst), (v4([192, 168, 1, 2]), v4([192, 168, 1, 1])));
    assert_eq!(r.ttl, Some(64));
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!((r.src_port, r.dst_port), (Some(51234), Some(80)));
    assert_eq!(r.tcp_flags, Some(0x02));
    assert_eq!(r.tcp_seq, Some(1000));
    assert_eq!(r.tcp_ack, Some(0));
    assert_eq!(r.tcp_window, Some(64240));
    assert_eq!(r.payload_len, Some(0));
    assert_eq!(r.cap_len, 54);
    assert!(!r.truncated && !r.fragment);
    assert_eq!(r.decode_error, None);
    assert_eq!(info(&r, Some(0)), "51234 → 80 [SYN] Seq=0 Win=64240 Len=0");
}

#[test]
fn tcp_cut_in_the_header() {
    // Captured up to 10 bytes into the TCP header (snaplen 44), 54 on the wire.
    let r = decode(meta(54), &ETH_TCP_SYN[..44], LinkType::ETHERNET);
    assert_eq!(r.protocol, "TCP");
    assert_eq!((r.src, r.dst), (v4([192, 168, 1, 2]), v4([192, 168, 1, 1])));
    assert_eq!((r.src_port, r.dst_port), (Some(51234), Some(80)));
    assert_eq!(r.tcp_seq, Some(1000));
    assert_eq!(r.tcp_ack, None);
    assert_eq!(r.tcp_flags, None);
    assert_eq!(r.tcp_window, None);
    assert!(r.truncated);
    assert_eq!((r.wire_len, r.cap_len), (54, 44));
    assert!(r.decode_error.as_deref().unwrap().contains("TCP"));
    // tshark shows no tcp.seq when the header is cut before the window.
    assert_eq!(TcpSeqTracker::new().relative(&r), None);

    // Snaplen-cut after a complete header: lengths come from the IP header.
    let mut f = ETH_TCP_SYN.to_vec();
    f[16..18].copy_from_slice(&140u16.to_be_bytes()); // total length 140: 100 bytes of data
    let r = decode(meta(154), &f, LinkType::ETHERNET);
    assert_eq!(r.payload_len, Some(100));
    assert!(r.truncated);
    assert_eq!(r.decode_error, None);
}

#[test]
fn runt_ethernet() {
    let r = dec(LinkType::ETHERNET, &hex!("0011223344"));
    assert_eq!(r.protocol, "Ethernet");
    assert!(r.truncated);
    assert_eq!(
        r.decode_error.as_deref(),
        Some("frame too short for Ethernet (5 bytes)")
    );
    assert_eq!((r.src, r.dst, r.src_mac), (None, None, None));
    let r = dec(LinkType::ETHERNET, &[]);
    assert_eq!(
        r.decode_error.as_deref(),
        Some("frame too short for Ethernet (0 bytes)")
    );
}

#[test]
fn qinq_outer_vlan() {
    let r = dec(LinkType::ETHERNET, &ETH_QINQ_UDP);
    assert_eq!(r.vlan, Some(100));
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(r.protocol, "UDP");
    assert_eq!((r.src, r.dst), (v4([10, 1, 1, 1]), v4([10, 2, 2, 2])));
    assert_eq!(r.ttl, Some(32));
    assert_eq!((r.src_port, r.dst_port), (Some(53), Some(51234)));
    assert_eq!(r.payload_len, Some(1));
    assert_eq!(info(&r, None), "53 → 51234 Len=1");

    // Single tag.
    let f = eth(&with_header(&hex!("002a 0800"), &ETH_TCP_SYN[14..]), 0x8100);
    let r = dec(LinkType::ETHERNET, &f);
    assert_eq!(r.vlan, Some(42));
    assert_eq!(r.protocol, "TCP");
    assert_eq!(r.src_port, Some(51234));

    // A tag cut short.
    let r = dec(LinkType::ETHERNET, &eth(&hex!("00"), 0x8100));
    assert!(r.truncated);
    assert_eq!(r.vlan, None);
}

#[test]
fn ipv6_hop_by_hop_and_fragment() {
    let r = dec(LinkType::IPV6, &IP6_HBH_FRAG_UDP);
    assert_eq!(r.ip_version, Some(6));
    assert_eq!((r.src, r.dst), (v6("fe80::1"), v6("ff02::1")));
    assert_eq!(r.ttl, Some(255));
    assert_eq!(r.ip_proto, Some(17));
    assert_eq!(r.protocol, "UDP");
    assert!(r.fragment);
    // First fragment: its transport header is read.
    assert_eq!((r.src_port, r.dst_port), (Some(546), Some(547)));
    assert_eq!(r.payload_len, Some(8));
    assert_eq!(r.decode_error, None);

    let r = dec(LinkType::IPV6, &IP6_FRAG_LATER);
    assert!(r.fragment);
    assert_eq!(r.ip_proto, Some(17));
    assert_eq!(r.protocol, "IPv6");
    assert_eq!((r.src_port, r.dst_port), (None, None));
    assert_eq!(info(&r, None), "Fragmented IP protocol (proto=UDP 17)");

    // Extension header cut short.
    let r = decode(meta(72), &IP6_HBH_FRAG_UDP[..44], LinkType::IPV6);
    assert!(r.truncated);
    assert_eq!(r.ip_proto, Some(0));
    assert_eq!(r.src, v6("fe80::1"));
}

#[test]
fn ipv4_fragments() {
    // First fragment (MF) of a TCP segment: ports, but no segment length.
    let mut f = ETH_TCP_SYN.to_vec();
    f[20] = 0x20; // MF, offset 0
    let r = dec(LinkType::ETHERNET, &f);
    assert!(r.fragment);
    assert_eq!(r.src_port, Some(51234));
    assert_eq!(r.payload_len, None);
    // tshark shows the absolute number (no analysis of fragments).
    assert_eq!(TcpSeqTracker::new().relative(&r), Some(1000));
    // A later fragment: nothing above IP.
    f[20] = 0x00;
    f[21] = 0x03; // offset 24
    let r = dec(LinkType::ETHERNET, &f);
    assert!(r.fragment);
    assert_eq!(r.protocol, "IPv4");
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!((r.src_port, r.tcp_seq), (None, None));
    assert_eq!(r.ttl, Some(64));
}

#[test]
fn icmp_echo_request_and_reply() {
    let r = dec(LinkType::RAW, &IP_ICMP_ECHO_REQ);
    assert_eq!(r.protocol, "ICMP");
    assert_eq!((r.icmp_type, r.icmp_code), (Some(8), Some(0)));
    assert_eq!((r.icmp_id, r.icmp_seq), (Some(1), Some(1)));
    assert_eq!(r.ether_type, Some(0x0800));
    assert_eq!(
        info(&r, None),
        "Echo (ping) request  id=0x0001, seq=1/256, ttl=64"
    );
    let r = dec(LinkType::RAW, &IP_ICMP_ECHO_REPLY);
    assert_eq!(r.icmp_type, Some(0));
    assert_eq!(r.ttl, Some(63));
    assert_eq!(
        info(&r, None),
        "Echo (ping) reply    id=0x0001, seq=1/256, ttl=63"
    );
}

#[test]
fn icmp_error_keeps_outer_header() {
    let r = dec(LinkType::IPV4, &IP_ICMP_TTL_EXCEEDED);
    assert_eq!(r.protocol, "ICMP");
    assert_eq!((r.src, r.dst), (v4([10, 0, 0, 254]), v4([192, 168, 1, 2])));
    // tshark's first ip.ttl: the outer header's, not the quoted one's (1).
    assert_eq!(r.ttl, Some(64));
    assert_eq!((r.icmp_type, r.icmp_code), (Some(11), Some(0)));
    assert_eq!((r.src_port, r.dst_port, r.icmp_id), (None, None, None));
    assert_eq!(r.ip_proto, Some(1));
    assert_eq!(
        info(&r, None),
        "Time-to-live exceeded (Time to live exceeded in transit)"
    );
}

#[test]
fn icmpv6_echo() {
    let r = dec(LinkType::RAW, &IP6_ICMPV6_ECHO);
    assert_eq!(r.protocol, "ICMPv6");
    assert_eq!(r.icmp_type, Some(128));
    assert_eq!((r.icmp_id, r.icmp_seq), (Some(0x1234), Some(7)));
    assert_eq!(r.src, v6("2001:db8::1"));
    assert_eq!(r.ether_type, Some(0x86dd));
}

#[test]
fn arp_request_and_reply() {
    let r = dec(LinkType::ETHERNET, &ETH_ARP_REQ);
    assert_eq!(r.protocol, "ARP");
    assert_eq!(r.arp_op, Some(1));
    assert_eq!(r.arp_sender_ip, Some(Ipv4Addr::new(192, 168, 1, 2)));
    assert_eq!(r.arp_target_ip, Some(Ipv4Addr::new(192, 168, 1, 1)));
    assert_eq!(r.arp_sender_mac, Some(M2));
    assert_eq!(r.arp_target_mac, Some([0; 6]));
    // Source/Destination columns: the Ethernet addresses.
    assert_eq!((r.src, r.dst), (mac(M2), mac([0xff; 6])));
    assert_eq!((r.ip_version, r.ttl), (None, None));
    assert_eq!(info(&r, None), "Who has 192.168.1.1? Tell 192.168.1.2");

    let r = dec(LinkType::ETHERNET, &ETH_ARP_REPLY);
    assert_eq!(r.arp_op, Some(2));
    assert_eq!(r.arp_sender_mac, Some(M1));
    assert_eq!(info(&r, None), "192.168.1.1 is at 00:11:22:33:44:55");

    // Cut after the sender hardware address.
    let r = decode(meta(42), &ETH_ARP_REQ[..28], LinkType::ETHERNET);
    assert_eq!(r.arp_op, Some(1));
    assert_eq!(r.arp_sender_mac, Some(M2));
    assert_eq!(r.arp_sender_ip, None);
    assert!(r.truncated);
}

#[test]
fn tunnels_show_innermost_addresses() {
    let r = dec(LinkType::RAW, &IP_IPIP_UDP);
    assert_eq!((r.src, r.dst), (v4([192, 168, 0, 1]), v4([192, 168, 0, 2])));
    assert_eq!(r.ttl, Some(60));
    assert_eq!(r.ip_version, Some(4));
    assert_eq!(r.protocol, "UDP");
    assert_eq!((r.src_port, r.dst_port), (Some(1000), Some(2000)));

    let r = dec(LinkType::RAW, &IP_6IN4_TCP);
    assert_eq!((r.src, r.dst), (v6("2001:db8::1"), v6("2001:db8::2")));
    assert_eq!((r.ip_version, r.ttl), (Some(4), Some(50)));
    assert_eq!(r.ip_proto, Some(6));
    assert_eq!(r.protocol, "TCP");
    assert_eq!(
        (r.src_port, r.tcp_seq, r.tcp_ack),
        (Some(443), Some(100), Some(200))
    );
    assert_eq!(r.payload_len, Some(0));

    // GRE (PPTP style, version 1 with key and sequence) carrying PPP/IPv4.
    let gre = hex!("3001 880b 0028 0001 00000001 ff03 0021");
    let inner = &IP_ICMP_ECHO_REQ;
    let mut ip = hex!("4500 0000 0009 0000 402f 0000 0a000001 0a000002").to_vec();
    let total = u16::try_from(20 + gre.len() + inner.len()).unwrap();
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&gre);
    ip.extend_from_slice(inner);
    let r = dec(LinkType::RAW, &ip);
    assert_eq!(r.protocol, "ICMP");
    assert_eq!((r.src, r.dst), (v4([192, 168, 1, 2]), v4([192, 168, 1, 1])));
    assert_eq!(r.ttl, Some(64));
}

// Teredo: IPv4 192.0.2.1 -> 198.51.100.1 ttl 128, UDP 50000 -> 3544 (length 77), Teredo
// authentication indicator (no id, no value, nonce, confirmation 0) and origin indication,
// then IPv6 fe80::1 -> ff02::2 hlim 255, ICMPv6 router solicitation.
const IP_TEREDO_RS: [u8; 97] = hex!(
    "4500 0061 000a 0000 8011 0000 c0000201 c6336401"
    "c350 0dd8 004d 0000"
    "0001 00 00 0102030405060708 00"
    "0000 f227 3f57 fdfe"
    "6000 0000 0008 3a ff"
    "fe800000000000000000000000000001 ff020000000000000000000000000002"
    "8500 0000 0000 0000"
);

/// IPv4 192.0.2.1 -> 198.51.100.1 ttl 128 carrying a UDP datagram with these ports and
/// payload (lengths filled in).
fn ip_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = hex!("4500 0000 000b 0000 8011 0000 c0000201 c6336401").to_vec();
    let udp_len = u16::try_from(8 + payload.len()).unwrap();
    ip[2..4].copy_from_slice(&(udp_len + 20).to_be_bytes());
    ip.extend_from_slice(&sport.to_be_bytes());
    ip.extend_from_slice(&dport.to_be_bytes());
    ip.extend_from_slice(&udp_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(payload);
    ip
}

#[test]
fn teredo_shows_the_inner_ipv6_packet() {
    let r = dec(LinkType::RAW, &IP_TEREDO_RS);
    assert_eq!((r.src, r.dst), (v6("fe80::1"), v6("ff02::2")));
    assert_eq!(
        (r.ip_version, r.ttl, r.ip_proto),
        (Some(4), Some(128), Some(58))
    );
    assert_eq!((r.protocol, r.icmp_type), ("ICMPv6", Some(133)));
    // ICMPv6 has no ports: the tunnel's UDP ports and length are not the inner packet's.
    assert_eq!((r.src_port, r.dst_port, r.payload_len), (None, None, None));
    assert!(!r.truncated && r.decode_error.is_none());

    // No Teredo headers, the server's port as the source, UDP inside: the inner ports.
    let r = dec(LinkType::RAW, &ip_udp(3544, 60000, &IP6_ICMPV6_ECHO));
    assert_eq!((r.src, r.protocol), (v6("2001:db8::1"), "ICMPv6"));
    assert_eq!((r.icmp_id, r.icmp_seq), (Some(0x1234), Some(7)));
    let r = dec(LinkType::RAW, &ip_udp(60000, 3544, &IP6_HBH_FRAG_UDP));
    assert_eq!(
        (r.protocol, r.src, r.fragment),
        ("UDP", v6("fe80::1"), true)
    );
    assert_eq!((r.src_port, r.dst_port), (Some(0x0222), Some(0x0223)));

    // A well-known port is tried first by tshark (DNS here), and a payload that is not
    // IPv6 stays plain UDP: the outer addresses and ports.
    for (s, d, payload) in [
        (53, 3544, &IP6_ICMPV6_ECHO[..]),
        (1023, 3544, &IP6_ICMPV6_ECHO[..]),
        (60000, 3544, &IP_ICMP_ECHO_REQ[..]),
        (60000, 3544, &[][..]),
        (60000, 3544, &hex!("0001 ff ff 00")[..]),
    ] {
        let r = dec(LinkType::RAW, &ip_udp(s, d, payload));
        assert_eq!((r.protocol, r.src), ("UDP", v4([192, 0, 2, 1])), "{s} {d}");
        assert_eq!((r.src_port, r.dst_port), (Some(s), Some(d)));
        assert!(r.decode_error.is_none());
    }
    // Port 0 is ignored by tshark's port lookup; a client's port can be below 3544.
    for s in [0, 1024, 3543, 3544] {
        let r = dec(LinkType::RAW, &ip_udp(s, 3544, &IP6_ICMPV6_ECHO));
        assert_eq!((r.protocol, r.src_port), ("ICMPv6", None), "{s}");
    }

    // The inner packet cut by the capture: what was captured of it.
    let cut = &IP_TEREDO_RS[..IP_TEREDO_RS.len() - 6];
    let r = decode(meta(IP_TEREDO_RS.len()), cut, LinkType::RAW);
    assert_eq!((r.protocol, r.icmp_type), ("ICMPv6", Some(133)));
    assert_eq!((r.src, r.dst), (v6("fe80::1"), v6("ff02::2")));
    assert!(r.truncated);
    // Cut before the IPv6 version: plain UDP, as the payload cannot be told apart.
    let r = decode(meta(97), &IP_TEREDO_RS[..49], LinkType::RAW);
    assert_eq!((r.protocol, r.dst_port), ("UDP", Some(3544)));
}

/// Every link type: (link, frame, protocol, src, dst, ether_type, error).
#[test]
fn link_types() {
    type Row = (
        LinkType,
        Vec<u8>,
        &'static str,
        Option<Addr>,
        Option<Addr>,
        Option<u16>,
        Option<&'static str>,
    );
    let ip = IP_ICMP_ECHO_REQ.to_vec();
    let a = v4([192, 168, 1, 2]);
    let b = v4([192, 168, 1, 1]);
    let ip6 = IP6_ICMPV6_ECHO.to_vec();
    let (a6, b6) = (v6("2001:db8::1"), v6("2001:db8::2"));
    let rows: Vec<Row> = vec![
        // SLL: outgoing, ARPHRD_ETHER, 6-byte address, IPv4.
        (
            LinkType::LINUX_SLL,
            with_header(&hex!("0004 0001 0006 66778899aabb 0000 0800"), &ip),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        // SLL ARP: Source is the SLL address, no Destination.
        (
            LinkType::LINUX_SLL,
            with_header(
                &hex!("0000 0001 0006 66778899aabb 0000 0806"),
                &ETH_ARP_REQ[14..],
            ),
            "ARP",
            mac(M2),
            None,
            Some(0x0806),
            None,
        ),
        // SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
        (
            LinkType::LINUX_SLL2,
            with_header(
                &hex!("86dd 0000 00000002 0001 04 06 66778899aabb0000"),
                &ip6,
            ),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        // NULL, little-endian AF_INET.
        (
            LinkType::NULL,
            with_header(&hex!("02000000"), &ip),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        // NULL, big-endian AF_INET6 (FreeBSD 28).
        (
            LinkType::NULL,
            with_header(&hex!("0000001c"), &ip6),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        // NULL, Darwin AF_INET6 30, little-endian.
        (
            LinkType::NULL,
            with_header(&hex!("1e000000"), &ip6),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        // LOOP: always big-endian.
        (
            LinkType::LOOP,
            with_header(&hex!("00000002"), &ip),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        (
            LinkType::LOOP,
            with_header(&hex!("00000018"), &ip6),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        (
            LinkType::NULL,
            with_header(&hex!("07000000"), &ip),
            "NULL",
            None,
            None,
            None,
            Some("unknown loopback address family 7"),
        ),
        // Raw IP in all its numbers.
        (LinkType::RAW, ip.clone(), "ICMP", a, b, Some(0x0800), None),
        (
            LinkType::RAW_BSD12,
            ip.clone(),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        (
            LinkType::RAW_BSD14,
            ip6.clone(),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        (LinkType::IPV4, ip.clone(), "ICMP", a, b, Some(0x0800), None),
        // LINKTYPE_IPV4 holding IPv6: tshark's "ip" dissector hands it to IPv6.
        (
            LinkType::IPV4,
            ip6.clone(),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        (
            LinkType::IPV6,
            ip6.clone(),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        // LINKTYPE_IPV6 holding IPv4: bogus, as in tshark.
        (
            LinkType::IPV6,
            ip.clone(),
            "IPv6",
            None,
            None,
            None,
            Some("bogus IPv6 version (4, must be 6)"),
        ),
        (
            LinkType::RAW,
            hex!("0102030405").to_vec(),
            "Raw",
            None,
            None,
            None,
            Some("bogus IP version (0)"),
        ),
        // PPP with address/control, and without (protocol field compressed).
        (
            LinkType::PPP,
            with_header(&hex!("ff03 0021"), &ip),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        (
            LinkType::PPP,
            with_header(&hex!("0057"), &ip6),
            "ICMPv6",
            a6,
            b6,
            Some(0x86dd),
            None,
        ),
        (
            LinkType::PPP,
            with_header(&hex!("21"), &ip),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        (
            LinkType::PPP,
            hex!("ff03 c021 01010004").to_vec(),
            "PPP LCP",
            None,
            None,
            None,
            None,
        ),
        // NFLOG: AF_INET, TLVs little-endian: prefix (type 10), payload (type 9).
        (
            LinkType::NFLOG,
            with_header(&hex!("02 00 0000  0800 0a00 61620000  2400 0900"), &ip),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        // Radiotap (8-byte header) + 802.11 QoS data ToDS + LLC/SNAP + IPv4.
        (
            LinkType::IEEE802_11_RADIOTAP,
            with_header(
                &hex!(
                    "00 00 0800 00000000"
                    "8801 0000 001122334455 66778899aabb 0a0b0c0d0e0f 0000 0000"
                    "aaaa03 000000 0800"
                ),
                &ip,
            ),
            "ICMP",
            a,
            b,
            Some(0x0800),
            None,
        ),
        // Ethernet 802.3 + LLC/SNAP + ARP.
        (
            LinkType::ETHERNET,
            eth(
                &with_header(&hex!("aaaa03 000000 0806"), &ETH_ARP_REQ[14..]),
                36,
            ),
            "ARP",
            mac(M2),
            mac(M1),
            Some(0x0806),
            None,
        ),
        // Ethernet 802.3 + STP.
        (
            LinkType::ETHERNET,
            eth(&hex!("424203 0000 00 00"), 7),
            "STP",
            mac(M2),
            mac(M1),
            None,
            None,
        ),
        // MPLS (one label) + IPv4.
        (
            LinkType::ETHERNET,
            eth(&with_header(&hex!("00010140"), &ip), 0x8847),
            "ICMP",
            a,
            b,
            Some(0x8847),
            None,
        ),
        // PPPoE session + PPP IPv6.
        (
            LinkType::ETHERNET,
            eth(&with_header(&hex!("1100 0001 0032 0057"), &ip6), 0x8864),
            "ICMPv6",
            a6,
            b6,
            Some(0x8864),
            None,
        ),
        // Unknown ethertype.
        (
            LinkType::ETHERNET,
            eth(&hex!("0000"), 0x88b5),
            "Ethernet",
            mac(M2),
            mac(M1),
            Some(0x88b5),
            None,
        ),
        // Unsupported link type: frame-level fields only.
        (
            LinkType(147),
            ip.clone(),
            "Undecoded",
            None,
            None,
            None,
            Some("unsupported link type 147"),
        ),
    ];
    for (i, (link, frame, proto, src, dst, et, err)) in rows.into_iter().enumerate() {
        let r = dec(link, &frame);
        let ctx = format!("row {i} ({link:?})");
        assert_eq!(r.protocol, proto, "{ctx}");
        assert_eq!((r.src, r.dst), (src, dst), "{ctx}");
        assert_eq!(r.ether_type, et, "{ctx}");
        assert_eq!(r.decode_error.as_deref(), err, "{ctx}");
        assert_eq!(r.link, link, "{ctx}");
        assert_eq!(r.wire_len as usize, frame.len(), "{ctx}");
    }
}

#[test]
fn frame_fields_and_truncation() {
    let m = FrameMeta {
        frame: 7,
        ts_ns: -5,
        interface: 3,
        wire_len: 1514,
    };
    let r = decode(m, &ETH_TCP_SYN, LinkType::ETHERNET);
    assert_eq!(
        (r.frame, r.ts_ns, r.interface, r.wire_len, r.cap_len),
        (7, -5, 3, 1514, 54)
    );
    assert!(r.truncated);
    // Odd files: captured longer than on the wire.
    let r = decode(meta(10), &ETH_TCP_SYN, LinkType::ETHERNET);
    assert!(!r.truncated);
    assert_eq!(r.src_port, Some(51234));
}

#[test]
fn never_panics_on_prefixes_and_garbage() {
    let frames: [&[u8]; 9] = [
        &ETH_TCP_SYN,
        &IP_TEREDO_RS,
        &ETH_QINQ_UDP,
        &ETH_ARP_REQ,
        &IP6_HBH_FRAG_UDP,
        &IP_IPIP_UDP,
        &IP_6IN4_TCP,
        &IP_ICMP_TTL_EXCEEDED,
        &[0xff; 64],
    ];
    let links = [
        0u32, 1, 9, 10, 12, 14, 50, 101, 108, 113, 127, 228, 229, 239, 242, 276,
    ];
    let mut t = TcpSeqTracker::new();
    for f in frames {
        for cut in 0..=f.len() {
            for &l in &links {
                for wire in [0, cut, f.len(), usize::MAX >> 40] {
                    let r = decode(meta(wire), &f[..cut], LinkType(l));
                    let rel = t.relative(&r);
                    let _ = info_with_ack(&r, rel, t.last_relative_ack());
                }
            }
        }
    }
}

#[test]
fn addr_display() {
    let cases: [(Addr, &str); 12] = [
        (Addr::V4(Ipv4Addr::new(192, 168, 1, 2)), "192.168.1.2"),
        (Addr::Mac(hex!("00112233aabb")), "00:11:22:33:aa:bb"),
        (v6("fe80::1").unwrap(), "fe80::1"),
        (v6("::").unwrap(), "::"),
        (v6("::1").unwrap(), "::1"),
        (v6("2001:db8:0:0:1:0:0:1").unwrap(), "2001:db8::1:0:0:1"),
        (v6("2001:db8:0:1:1:1:1:1").unwrap(), "2001:db8:0:1:1:1:1:1"),
        (v6("2001:db8::").unwrap(), "2001:db8::"),
        (v6("ff02::1:ff00:1").unwrap(), "ff02::1:ff00:1"),
        (v6("::ffff:192.0.2.1").unwrap(), "::ffff:192.0.2.1"),
        (v6("::192.0.2.1").unwrap(), "::192.0.2.1"),
        (v6("2001:DB8::ABCD").unwrap(), "2001:db8::abcd"),
    ];
    for (a, s) in cases {
        assert_eq!(a.to_string(), s);
    }
}

#[test]
fn info_texts() {
    let r = dec(LinkType::ETHERNET, &ETH_ARP_REQ);
    let mut g = r.clone();
    g.arp_target_ip = g.arp_sender_ip;
    assert_eq!(info(&g, None), "Gratuitous ARP for 192.168.1.2 (Request)");
    g.arp_sender_ip = Some(Ipv4Addr::UNSPECIFIED);
    g.arp_target_ip = Some(Ipv4Addr::new(10, 0, 0, 9));
    assert_eq!(info(&g, None), "Who has 10.0.0.9? (ARP Probe)");

    let mut r = dec(LinkType::RAW, &IP_6IN4_TCP);
    assert_eq!(
        info_with_ack(&r, Some(1), Some(1)),
        "443 → 50000 [ACK] Seq=1 Ack=1 Win=256 Len=0"
    );
    assert_eq!(info(&r, None), "443 → 50000 [ACK] Seq=100 Win=256 Len=0");
    r.tcp_flags = Some(0);
    assert!(info(&r, Some(1)).contains("[<None>]"));
    r.tcp_flags = Some(0x19);
    assert!(info(&r, Some(1)).contains("[FIN, PSH, ACK]"));

    let r = dec(LinkType(147), &[1, 2, 3]);
    assert_eq!(info(&r, None), "unsupported link type 147");
}

// ---------------------------------------------------------------- TcpSeqTracker

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// A raw-IP TCP segment.
#[allow(clippy::too_many_arguments)]
fn seg(
    src: [u8; 4],
    dst: [u8; 4],
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    len: usize,
) -> PacketRecord {
    let total = 40 + len;
    let mut f = Vec::with_capacity(total);
    f.extend_from_slice(&hex!("4500"));
    f.extend_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
    f.extend_from_slice(&hex!("0000 4000 4006 0000"));
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags]);
    f.extend_from_slice(&hex!("ffff 0000 0000"));
    f.resize(total, 0x61);
    dec(LinkType::RAW, &f)
}

#[test]
fn tcp_relative_handshake_then_data() {
    let mut t = TcpSeqTracker::new();
    // The client's numbers wrap past 2^32 during the exchange.
    let (ci, si) = (u32::MAX - 5, 77u32);
    let steps = [
        (seg(C, S, 40000, 80, ci, 0, SYN, 0), Some(0), None),
        (
            seg(S, C, 80, 40000, si, ci.wrapping_add(1), SYN | ACK, 0),
            Some(0),
            Some(1),
        ),
        (
            seg(C, S, 40000, 80, ci.wrapping_add(1), si + 1, ACK, 0),
            Some(1),
            Some(1),
        ),
        (
            seg(C, S, 40000, 80, ci.wrapping_add(1), si + 1, PSH | ACK, 100),
            Some(1),
            Some(1),
        ),
        (
            seg(S, C, 80, 40000, si + 1, ci.wrapping_add(101), ACK, 20),
            Some(1),
            Some(101),
        ),
        (
            seg(C, S, 40000, 80, ci.wrapping_add(101), si + 21, FIN | ACK, 0),
            Some(101),
            Some(21),
        ),
    ];
    for (i, (rec, seq, ack)) in steps.iter().enumerate() {
        assert_eq!(t.relative(rec), *seq, "step {i}");
        assert_eq!(t.last_relative_ack(), *ack, "step {i} ack");
    }
    // Not TCP: None.
    assert_eq!(t.relative(&dec(LinkType::RAW, &IP_ICMP_ECHO_REQ)), None);
    assert_eq!(t.last_relative_ack(), None);
}

#[test]
fn tcp_relative_mid_flow() {
    let mut t = TcpSeqTracker::new();
    // First seen: server data with ACK. Its base is seq − 1; the client's is ack − 1.
    assert_eq!(
        t.relative(&seg(S, C, 443, 50000, 5000, 9000, PSH | ACK, 10)),
        Some(1)
    );
    assert_eq!(t.last_relative_ack(), Some(1));
    // The client's first segment: already has a base from the server's ack.
    assert_eq!(
        t.relative(&seg(C, S, 50000, 443, 9000, 5010, ACK, 0)),
        Some(1)
    );
    assert_eq!(t.last_relative_ack(), Some(11));
    // A client segment behind the assumed base wraps (as tshark shows it).
    assert_eq!(
        t.relative(&seg(C, S, 50000, 443, 8990, 5010, ACK, 0)),
        Some(u32::MAX - 8)
    );

    // First seen without ACK and not SYN (e.g. a bare RST): base seq − 1, no ack base.
    let mut t = TcpSeqTracker::new();
    assert_eq!(t.relative(&seg(C, S, 1, 2, 100, 0, RST, 0)), Some(1));
    assert_eq!(t.relative(&seg(S, C, 2, 1, 700, 0, RST, 0)), Some(1));
}

#[test]
fn tcp_relative_port_reuse_and_retransmitted_syn() {
    let mut t = TcpSeqTracker::new();
    assert_eq!(t.relative(&seg(C, S, 1234, 80, 1000, 0, SYN, 0)), Some(0));
    // Retransmitted SYN, same ISN: same conversation.
    assert_eq!(t.relative(&seg(C, S, 1234, 80, 1000, 0, SYN, 0)), Some(0));
    assert_eq!(
        t.relative(&seg(S, C, 80, 1234, 50, 1001, SYN | ACK, 0)),
        Some(0)
    );
    assert_eq!(t.relative(&seg(C, S, 1234, 80, 1001, 51, ACK, 5)), Some(1));
    // New SYN with another ISN on the same ports: a new conversation, both bases reset.
    assert_eq!(t.relative(&seg(C, S, 1234, 80, 9000, 0, SYN, 0)), Some(0));
    assert_eq!(
        t.relative(&seg(S, C, 80, 1234, 7000, 9001, SYN | ACK, 0)),
        Some(0)
    );
    assert_eq!(t.last_relative_ack(), Some(1));
    // Other ports: another conversation.
    assert_eq!(t.relative(&seg(C, S, 1235, 80, 1, 0, SYN, 0)), Some(0));
}

#[test]
fn tcp_relative_same_endpoints() {
    // Source and destination equal (loopback to itself): one direction, as tshark.
    let mut t = TcpSeqTracker::new();
    assert_eq!(t.relative(&seg(C, C, 5000, 5000, 10, 0, SYN, 0)), Some(0));
    assert_eq!(
        t.relative(&seg(C, C, 5000, 5000, 10, 11, SYN | ACK, 0)),
        Some(0)
    );
    assert_eq!(t.relative(&seg(C, C, 5000, 5000, 11, 11, ACK, 0)), Some(1));
}

#[test]
fn tcp_relative_short_segment_is_absolute() {
    // IP total length shorter than the TCP header: tshark cannot analyse; absolute seq.
    let mut r = seg(C, S, 1, 2, 12345, 0, SYN, 0);
    r.payload_len = None;
    assert_eq!(TcpSeqTracker::new().relative(&r), Some(12345));
    // Decoded the same way from bytes.
    let mut f = ETH_TCP_SYN.to_vec();
    f[16..18].copy_from_slice(&30u16.to_be_bytes()); // 20 + 10: header longer than segment
    let r = dec(LinkType::ETHERNET, &f);
    assert_eq!(r.payload_len, None);
    assert_eq!(TcpSeqTracker::new().relative(&r), Some(1000));
}

#[test]
fn tcp_tracker_memory_is_bounded_but_active_conversations_keep_their_bases() {
    let mut t = TcpSeqTracker::new();
    // A long-lived conversation: its SYN sets the base, then it keeps talking while
    // three generations' worth of one-packet conversations pass by.
    assert_eq!(t.relative(&seg(C, S, 40000, 443, 5000, 0, SYN, 0)), Some(0));
    let mut port_scan = 0u32;
    for round in 0..3 * TcpSeqTracker::GENERATION_LEN / 1000 {
        for i in 0..1000u32 {
            port_scan += 1;
            let src = (0x0a01_0000 + port_scan).to_be_bytes();
            assert_eq!(
                t.relative(&seg(src, S, 1024, 80, 77 + i, 0, SYN, 0)),
                Some(0)
            );
        }
        let seq = 5001 + u32::try_from(round).unwrap();
        let rel = t.relative(&seg(C, S, 40000, 443, seq, 1, ACK, 1));
        assert_eq!(rel, Some(seq - 5000), "round {round}");
    }
    assert!(
        t.conversations() <= 2 * TcpSeqTracker::GENERATION_LEN,
        "{}",
        t.conversations()
    );
    // A conversation silent since long ago restarts mid-flow (relative 1), as documented.
    let first = (0x0a01_0000u32 + 1).to_be_bytes();
    assert_eq!(
        t.relative(&seg(first, S, 1024, 80, 900, 0, ACK, 0)),
        Some(1)
    );
}
