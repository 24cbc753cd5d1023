//! The names a home network carries, planted at fixed points of the night with their
//! ground truth ([`crate::PlantedName`]): DHCP host names, vendor classes and client ids
//! at (re)joins (one device comes back with a new randomised MAC but its client id),
//! mDNS/DNS-SD announcements, NetBIOS name registration, LLMNR, SSDP NOTIFY, and DNS
//! lookups (with CNAME chains) followed by a connection to the answer: TLS with a
//! server name (one ClientHello over two segments), QUIC v1 Initials with a server name
//! (one ClientHello over two Initials), HTTP with a Host header. Two devices reach one
//! CDN address under different names. With [`crate::NightSpec::hostile_names`], a device
//! plants [`crate::hostile_names`] in all of these.
//!
//! Invariants: each event is one burst, staged when its window fraction has come (at
//! most one per burst, after any due join); a device's events fall while it is awake;
//! remote addresses are documentation ranges and names are example-style.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cast::{
    ANNA, BEN, BROADCAST_MAC, Dev, Ep, Fam, HOSTILE, Ip, LAPTOP, PI, PRINTER, S_CHAT, S_GAMES,
    S_HOSTILE, S_PRINTER_FW, S_STREAM, S_THERMO, S_VENDOR_CDN, SERVERS, TABLET, THERMO, TV,
    link_local, mac_text, to_ipv4_group, to_ipv6_group,
};
use crate::hello::{Hello, pooled_client_hello, records, server_hello};
use crate::night::Gen;
use crate::payload::{Rdata, Rr, dns_packet, netbios_name};
use crate::quic::{Initial, ack_frame, crypto_frame, initial_keys, seal};
use crate::{MacChange, NameKind, PlantedDevice, PlantedName, hostile_names};

mod hostile;
mod visits;

/// What makes a planted name the same as another: kind, name, target, MAC, client, address.
pub(crate) type NameKey = (
    NameKind,
    Vec<u8>,
    Option<Vec<u8>>,
    [u8; 6],
    Option<IpAddr>,
    Option<IpAddr>,
);

/// How a device reaches a name once it is resolved.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// TLS over TCP 443; `pq` adds a post-quantum key share (a two-segment ClientHello).
    Tls { pq: bool },
    /// QUIC v1 to UDP 443; `pq` makes the ClientHello span two Initials.
    Quic { pq: bool },
    /// HTTP/1.1 to TCP 80.
    Http,
}

/// A lookup and a connection: the name asked for, the CNAME it leads to, the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Visit {
    qname: &'static str,
    cname: Option<&'static str>,
    server: usize,
    /// Connect over IPv6 when the device and the server have it.
    v6: bool,
    via: Via,
}

impl Visit {
    /// A visit to `server` by its own name (its [`SERVERS`] row), reached `via`, over
    /// IPv4 and with no CNAME.
    const fn new(server: usize, via: Via) -> Self {
        Self {
            qname: SERVERS[server].0,
            cname: None,
            server,
            v6: false,
            via,
        }
    }

    /// The device asks for `qname` instead, answered with a CNAME to the server's name.
    const fn asked_as(self, qname: &'static str) -> Self {
        Self {
            qname,
            cname: Some(SERVERS[self.server].0),
            ..self
        }
    }

    /// Connect over IPv6 when the device and the server have it.
    const fn over_v6(self) -> Self {
        Self { v6: true, ..self }
    }
}

const TV_TELEMETRY: Visit =
    Visit::new(S_VENDOR_CDN, Via::Tls { pq: false }).asked_as("telemetry.tvvendor-example.com");
const VENDOR_WWW: Visit =
    Visit::new(S_VENDOR_CDN, Via::Tls { pq: true }).asked_as("www.example-vendor.com");
const STREAM: Visit = Visit::new(S_STREAM, Via::Quic { pq: true }).over_v6();
const CHAT: Visit = Visit::new(S_CHAT, Via::Quic { pq: false });
const PRINTER_FW: Visit = Visit::new(S_PRINTER_FW, Via::Http);
const GAMES: Visit = Visit::new(S_GAMES, Via::Tls { pq: false }).over_v6();
const THERMO_CLOUD: Visit = Visit::new(S_THERMO, Via::Tls { pq: false });

/// One step of the hostile device, for hostile name number `.0`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostileStep {
    Dhcp,
    Mdns,
    /// Lookups answered with the name, then TLS with it as the server name.
    DnsTls,
    Quic,
    Http,
}

/// One burst of names traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// DHCP DISCOVER/OFFER/REQUEST/ACK of a device that is already on the network.
    Dhcp(usize),
    /// The device leaves and comes back with a new randomised MAC (same client id).
    NewMac(usize),
    /// mDNS announcement over IPv4 (false) or IPv6 (true).
    Mdns(usize, bool),
    /// NetBIOS name registration (broadcast).
    Nbns(usize),
    /// LLMNR: the first asks for the second's name, which answers.
    Llmnr(usize, usize),
    /// SSDP NOTIFY (alive) for the root device and a media renderer.
    Ssdp(usize),
    Visit(usize, Visit),
    Hostile(usize, HostileStep),
}

/// The night's names events by window fraction, in order.
pub(crate) fn schedule(hostile: bool) -> Vec<(f64, Event)> {
    use Event as E;
    let mut ev: Vec<(f64, Event)> = vec![
        (0.004, E::Dhcp(PI)),
        (0.006, E::Mdns(PI, false)),
        (0.0065, E::Mdns(PI, true)),
        (0.010, E::Dhcp(ANNA)),
        (0.012, E::Visit(ANNA, STREAM)),
        (0.015, E::Dhcp(TV)),
        (0.016, E::Mdns(TV, false)),
        (0.017, E::Ssdp(TV)),
        (0.018, E::Visit(TV, TV_TELEMETRY)),
        (0.020, E::Dhcp(LAPTOP)),
        (0.021, E::Nbns(LAPTOP)),
        (0.022, E::Mdns(LAPTOP, false)),
        (0.023, E::Llmnr(LAPTOP, PRINTER)),
        (0.024, E::Visit(LAPTOP, VENDOR_WWW)),
        (0.030, E::Dhcp(PRINTER)),
        (0.031, E::Mdns(PRINTER, false)),
        (0.0315, E::Mdns(PRINTER, true)),
        (0.033, E::Visit(PRINTER, PRINTER_FW)),
        (0.040, E::Dhcp(TABLET)),
        (0.045, E::Visit(TABLET, GAMES)),
        (0.050, E::Dhcp(THERMO)),
        (0.052, E::Visit(THERMO, THERMO_CLOUD)),
        // Ben's phone joins at 0.07 (kind.rs).
        (0.080, E::Visit(BEN, CHAT)),
        (0.150, E::Visit(TV, TV_TELEMETRY)),
        (0.550, E::NewMac(TABLET)),
        (0.552, E::Mdns(TABLET, false)),
        (0.555, E::Visit(TABLET, GAMES)),
        // The smart plug joins at 0.82 (kind.rs); the laptop wakes at 0.93.
        (0.935, E::Dhcp(LAPTOP)),
        (0.936, E::Nbns(LAPTOP)),
        (0.940, E::Visit(LAPTOP, VENDOR_WWW)),
        (0.950, E::Visit(ANNA, STREAM)),
    ];
    if hostile {
        let mut at = 0.30;
        for i in 0..hostile_names().len() {
            let mut steps = vec![HostileStep::Dhcp, HostileStep::Mdns, HostileStep::DnsTls];
            if i == 0 || i == 2 {
                steps.push(HostileStep::Quic);
            }
            if i == 0 || i == 4 {
                steps.push(HostileStep::Http);
            }
            for s in steps {
                ev.push((at, E::Hostile(i, s)));
                at += 0.002;
            }
        }
    }
    ev.sort_by(|a, b| a.0.total_cmp(&b.0));
    ev
}

/// The TXT strings and service of a device's DNS-SD announcement.
pub(crate) fn service_of(
    d: usize,
) -> Option<(&'static str, &'static str, u16, &'static [&'static str])> {
    match d {
        TV => Some((
            "_googlecast._tcp.local",
            "Kitchen TV",
            8009,
            &[
                "id=4c1e9a0b2f3d4e5f60718293a4b5c6d7",
                "md=Chromecast",
                "fn=Kitchen TV",
                "ve=05",
                "st=0",
            ],
        )),
        PRINTER => Some((
            "_ipp._tcp.local",
            "Office Printer",
            631,
            &[
                "txtvers=1",
                "qtotal=1",
                "rp=ipp/print",
                "ty=Office Laser Printer",
                "note=Office",
            ],
        )),
        _ => None,
    }
}

/// The identities of the devices that sent frames (every device but the router).
pub(crate) fn planted_devices(devs: &[Dev], hosts: &[(IpAddr, [u8; 6])]) -> Vec<PlantedDevice> {
    let mut out = Vec::new();
    for (d, dev) in devs.iter().enumerate().skip(1) {
        let mut addrs: Vec<IpAddr> = Vec::new();
        for (a, m) in hosts {
            if dev.macs.contains(m) && !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        if addrs.is_empty() {
            continue;
        }
        out.push(PlantedDevice {
            host_name: dev.host.clone(),
            vendor_class: (!dev.vendor.is_empty()).then(|| dev.vendor.clone()),
            client_id: dev.client_id.clone(),
            macs: dev.macs.clone(),
            addrs,
            private_mac: dev.macs.first().is_some_and(|m| m[0] & 0x02 != 0),
            hostile: d == HOSTILE,
        });
    }
    out
}

impl<W: Write> Gen<W> {
    /// Records a name carried by the frame staged last, sent by or for `by`.
    pub(crate) fn plant(
        &mut self,
        kind: NameKind,
        name: &[u8],
        target: Option<&[u8]>,
        by: &Ep,
        addr: Option<Ip>,
        ttl: Option<u32>,
    ) {
        let frame = self.truth.frames + self.stage.frames.len() as u64;
        self.plant_at(frame, kind, name, target, by, addr, ttl);
    }

    /// As [`Gen::plant`], carried by frame number `frame`; true when the name is new.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn plant_at(
        &mut self,
        frame: u64,
        kind: NameKind,
        name: &[u8],
        target: Option<&[u8]>,
        by: &Ep,
        addr: Option<Ip>,
        ttl: Option<u32>,
    ) -> bool {
        let client = match by.ip {
            Ip::V4(a) if a == [0; 4] => None,
            Ip::V6(a) if a == [0; 16] => None,
            ip => Some(ip.addr()),
        };
        let key = (
            kind,
            name.to_vec(),
            target.map(<[u8]>::to_vec),
            by.mac,
            client,
            addr.map(Ip::addr),
        );
        if let Some(&i) = self.name_index.get(&key)
            && let Some(p) = self.truth.names.get_mut(i)
        {
            p.count += 1;
            return false;
        }
        self.name_index.insert(key, self.truth.names.len());
        self.truth.names.push(PlantedName {
            kind,
            name: name.to_vec(),
            target: target.map(<[u8]>::to_vec),
            mac: by.mac,
            client,
            addr: addr.map(Ip::addr),
            ttl,
            hostile: by.dev == HOSTILE,
            first_frame: frame,
            first_ts_ns: 0,
            count: 1,
        });
        true
    }

    /// Records a name carried by a planted frame already written as number `frame` at
    /// `ns`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn plant_written(
        &mut self,
        frame: u64,
        ns: i64,
        kind: NameKind,
        name: &[u8],
        by: &Ep,
        addr: Option<Ip>,
        ttl: Option<u32>,
    ) {
        if self.plant_at(frame, kind, name, None, by, addr, ttl)
            && let Some(p) = self.truth.names.last_mut()
        {
            p.first_ts_ns = ns;
        }
    }

    pub(crate) fn named_event(&mut self, e: Event) -> io::Result<()> {
        match e {
            Event::Dhcp(d) => {
                let dev = self.cast.devs[d].clone();
                self.dhcp_exchange(d, &dev)
            }
            Event::NewMac(d) => self.new_mac(d),
            Event::Mdns(d, v6) => self.announce(d, v6),
            Event::Nbns(d) => self.nbns_register(d),
            Event::Llmnr(a, b) => self.llmnr(a, b),
            Event::Ssdp(d) => self.ssdp_notify(d),
            Event::Visit(d, v) => self.visit(d, v),
            Event::Hostile(i, step) => self.hostile(i, step),
        }
    }

    /// A new source label (tshark Source column text) for frames counted under it.
    pub(crate) fn new_label(&mut self, text: String) -> u16 {
        self.cast.labels.push(text);
        self.counts.push(0);
        (self.cast.labels.len() - 1) as u16
    }

    /// Device `d` drops off and rejoins with a new locally administered MAC (and the
    /// link-local address that follows from it), keeping its IPv4 address, host name and
    /// client id; its earlier (address, MAC) pairs stay in `hosts`.
    fn new_mac(&mut self, d: usize) -> io::Result<()> {
        let old = self.cast.devs[d].mac;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.rng.next().to_le_bytes()[..6]);
        mac[0] = (mac[0] & 0xfc) | 0x02;
        if self.dev_seen.get(d).copied().unwrap_or(false) {
            let dev = &self.cast.devs[d];
            self.retired_hosts
                .push((IpAddr::V4(Ipv4Addr::from(dev.v4)), old));
            for a in dev.ula.iter().chain(dev.ll.iter()) {
                self.retired_hosts
                    .push((IpAddr::V6(Ipv6Addr::from(*a)), old));
            }
        }
        if let Some(s) = self.dev_seen.get_mut(d) {
            *s = false;
        }
        let k_mac = self.new_label(mac_text(&mac));
        let dev = &mut self.cast.devs[d];
        dev.mac = mac;
        dev.macs.push(mac);
        dev.k_mac = k_mac;
        if dev.ll.is_some() {
            let ll = link_local(mac);
            self.cast.devs[d].ll = Some(ll);
            self.cast.devs[d].k_ll = self.new_label(Ipv6Addr::from(ll).to_string());
        }
        let dev = &self.cast.devs[d];
        self.truth.mac_changes.push(MacChange {
            old_mac: old,
            new_mac: mac,
            client_id: dev.client_id.clone(),
            host_name: dev.host.clone(),
            frame: self.truth.frames + 1,
        });
        self.join(d)
    }

    /// `ep` sending to the mDNS group (224.0.0.251 or ff02::fb) with TTL 255.
    fn mdns_group(ep: Ep) -> (Ep, Ep) {
        let me = Ep { ttl: 255, ..ep };
        let group = match me.ip {
            Ip::V6(_) => to_ipv6_group(me, 0xfb),
            Ip::V4(_) => to_ipv4_group(me, [224, 0, 0, 251]),
        };
        (me, group)
    }

    /// An unsolicited mDNS response: `<host>.local` A/AAAA records and, for the TV and
    /// the printer, a DNS-SD service instance (PTR, SRV, TXT).
    fn announce(&mut self, d: usize, v6: bool) -> io::Result<()> {
        let (me, group) = Self::mdns_group(self.ep(d, if v6 { Fam::Ll } else { Fam::V4 }));
        if v6 && matches!(me.ip, Ip::V4(_)) {
            return Ok(());
        }
        let dev = self.cast.devs[d].clone();
        let mut host = dev.host.clone();
        host.extend_from_slice(b".local");
        let mut addrs = vec![Ip::V4(dev.v4)];
        addrs.extend(dev.ula.iter().chain(dev.ll.iter()).map(|a| Ip::V6(*a)));
        let svc = service_of(d);
        let txt: Vec<&[u8]> =
            svc.map_or(Vec::new(), |s| s.3.iter().map(|t| t.as_bytes()).collect());
        let (service, instance) = match svc {
            Some((service, inst, ..)) => (service.as_bytes(), format!("{inst}.{service}")),
            None => (&b""[..], String::new()),
        };
        let mut rrs = Vec::new();
        if let Some((_, _, port, _)) = svc {
            rrs.push(Rr {
                name: service,
                class: 1,
                ttl: 4500,
                data: Rdata::Name(12, instance.as_bytes()),
            });
            rrs.push(Rr {
                name: instance.as_bytes(),
                class: 0x8001,
                ttl: 120,
                data: Rdata::Srv(port, &host),
            });
            rrs.push(Rr {
                name: instance.as_bytes(),
                class: 0x8001,
                ttl: 4500,
                data: Rdata::Txt(&txt),
            });
        }
        for a in &addrs {
            rrs.push(Rr {
                name: &host,
                class: 0x8001,
                ttl: 120,
                data: Rdata::Addr(*a),
            });
        }
        self.scratch.clear();
        dns_packet(&mut self.scratch, 0, 0x8400, &[], &rrs);
        self.stage
            .udp(&me, &group, (5353, 5353), 0, &self.scratch, 0)?;
        for a in &addrs {
            self.plant(NameKind::MdnsHost, &host, None, &me, Some(*a), Some(120));
        }
        if svc.is_some() {
            let inst = instance.clone();
            self.plant(
                NameKind::MdnsService,
                inst.as_bytes(),
                None,
                &me,
                Some(me.ip),
                Some(4500),
            );
            for t in &txt {
                let (kind, v) = if let Some(v) = t.strip_prefix(b"fn=") {
                    (NameKind::MdnsFriendlyName, v)
                } else if let Some(v) = t.strip_prefix(b"md=").or_else(|| t.strip_prefix(b"ty=")) {
                    (NameKind::MdnsModel, v)
                } else {
                    continue;
                };
                self.plant(kind, v, None, &me, Some(me.ip), Some(4500));
            }
        }
        Ok(())
    }

    /// NetBIOS name registration broadcasts: the host name (workstation and server
    /// service) and the workgroup.
    fn nbns_register(&mut self, d: usize) -> io::Result<()> {
        let me = self.ep(d, Fam::V4);
        let Ip::V4(v4) = me.ip else {
            return Ok(());
        };
        let bcast = Ep {
            mac: BROADCAST_MAC,
            ip: Ip::V4([v4[0], v4[1], v4[2], 255]),
            ..me
        };
        let host = String::from_utf8_lossy(&self.cast.devs[d].host).into_owned();
        for (i, (name, suffix, group)) in [
            (host.as_str(), 0x00u8, false),
            ("WORKGROUP", 0x00, true),
            (host.as_str(), 0x20, false),
        ]
        .into_iter()
        .enumerate()
        {
            let enc = netbios_name(name, suffix);
            let id = self.rng.u16();
            self.scratch.clear();
            dns_packet(
                &mut self.scratch,
                id,
                0x2910,
                &[(&enc, 0x20)],
                &[Rr {
                    name: &enc,
                    class: 1,
                    ttl: 300_000,
                    data: Rdata::Nb(if group { 0x8000 } else { 0 }, v4),
                }],
            );
            // The record is an additional one (ARCOUNT), not an answer.
            self.scratch[6..8].copy_from_slice(&[0, 0]);
            self.scratch[10..12].copy_from_slice(&[0, 1]);
            let delay = if i == 0 { 0 } else { self.delay(500, 3_000) };
            self.stage
                .udp(&me, &bcast, (137, 137), 0, &self.scratch, delay)?;
            if !group {
                self.plant(
                    NameKind::Nbns,
                    name.as_bytes(),
                    None,
                    &me,
                    Some(me.ip),
                    Some(300_000),
                );
            }
        }
        Ok(())
    }

    /// `asker` asks 224.0.0.252 for `answerer`'s host name; `answerer` replies.
    fn llmnr(&mut self, asker: usize, answerer: usize) -> io::Result<()> {
        let a = Ep {
            ttl: 1,
            ..self.ep(asker, Fam::V4)
        };
        let group = to_ipv4_group(a, [224, 0, 0, 252]);
        let r = self.ep(answerer, Fam::V4);
        let name = self.cast.devs[answerer].host.clone();
        let id = self.rng.u16();
        let port = self.port(asker);
        self.scratch.clear();
        dns_packet(&mut self.scratch, id, 0, &[(&name, 1)], &[]);
        self.stage
            .udp(&a, &group, (port, 5355), 0, &self.scratch, 0)?;
        self.scratch.clear();
        dns_packet(
            &mut self.scratch,
            id,
            0x8000,
            &[(&name, 1)],
            &[Rr {
                name: &name,
                class: 1,
                ttl: 30,
                data: Rdata::Addr(r.ip),
            }],
        );
        let delay = self.delay(300, 5_000);
        self.stage
            .udp(&r, &a, (5355, port), 0, &self.scratch, delay)?;
        self.plant(NameKind::Llmnr, &name, None, &r, Some(r.ip), Some(30));
        Ok(())
    }

    /// SSDP NOTIFY ssdp:alive for the root device and a media renderer.
    fn ssdp_notify(&mut self, d: usize) -> io::Result<()> {
        let me = Ep {
            ttl: 4,
            ..self.ep(d, Fam::V4)
        };
        let group = to_ipv4_group(me, [239, 255, 255, 250]);
        let ip = Ipv4Addr::from(self.cast.devs[d].v4);
        let server = "Linux/5.4 UPnP/1.0 tvvendor-example-TV/2.1";
        let uuid = "uuid:4d696e69-444c-164e-9d41-388c501e4040";
        for (i, nt) in [
            "upnp:rootdevice",
            "urn:schemas-upnp-org:device:MediaRenderer:1",
        ]
        .into_iter()
        .enumerate()
        {
            let usn = format!("{uuid}::{nt}");
            self.scratch.clear();
            let _ = write!(
                self.scratch,
                "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n\
                 LOCATION: http://{ip}:8008/ssdp/device-desc.xml\r\nNT: {nt}\r\nNTS: ssdp:alive\r\n\
                 SERVER: {server}\r\nUSN: {usn}\r\n\r\n"
            );
            let delay = if i == 0 { 0 } else { self.delay(100, 2_000) };
            self.stage
                .udp(&me, &group, (1900, 1900), 0, &self.scratch, delay)?;
            self.plant(
                NameKind::SsdpServer,
                server.as_bytes(),
                None,
                &me,
                Some(me.ip),
                None,
            );
            self.plant(
                NameKind::SsdpUsn,
                usn.as_bytes(),
                None,
                &me,
                Some(me.ip),
                None,
            );
        }
        Ok(())
    }
}
