use super::*;

fn cands(items: &[(Kind, &str)]) -> Candidates {
    let mut c = Candidates::new();
    for (k, n) in items {
        c.entry(*k).or_default().push((*n).to_string());
    }
    c
}

#[test]
fn precedence() {
    let all = cands(&[
        (Kind::Ssdp, "Linux/5.10 UPnP/1.0 Kodi/20"),
        (Kind::Llmnr, "LAPTOP-LLMNR"),
        (Kind::Nbns, "LAPTOP-NB"),
        (Kind::MdnsService, "Kitchen TV service"),
        (Kind::Mdns, "kitchen-tv.local"),
        (Kind::MdnsFriendly, "Kitchen TV"),
        (Kind::Dhcpv6Fqdn, "tv6.example.lan."),
        (Kind::DhcpFqdn, "tv.example.lan"),
        (Kind::DhcpHostname, "samsung-tv"),
    ]);
    let name = |label: Option<&str>, c: &Candidates| pick_name(label, c);
    assert_eq!(
        name(Some("kitchen"), &all),
        Some(("kitchen".into(), "label".into()))
    );
    // Drop the best source one at a time: the next one takes over.
    let order = [
        (Kind::DhcpHostname, "samsung-tv"),
        (Kind::DhcpFqdn, "tv.example.lan"),
        (Kind::Dhcpv6Fqdn, "tv6.example.lan"),
        (Kind::MdnsFriendly, "Kitchen TV"),
        (Kind::Mdns, "kitchen-tv"),
        (Kind::MdnsService, "Kitchen TV service"),
        (Kind::Nbns, "LAPTOP-NB"),
        (Kind::Llmnr, "LAPTOP-LLMNR"),
        (Kind::Ssdp, "Linux/5.10 UPnP/1.0 Kodi/20"),
    ];
    let mut c = all.clone();
    for (kind, want) in order {
        assert_eq!(
            name(None, &c),
            Some((want.to_string(), kind.as_str().to_string())),
            "{kind:?}"
        );
        c.remove(&kind);
    }
    assert_eq!(name(None, &c), None);
    // A junk name is skipped, not taken: the next source names it.
    let c = cands(&[
        (Kind::DhcpHostname, "localhost"),
        (Kind::DhcpFqdn, "12345"),
        (Kind::Mdns, "Android-3f2a9c1b.local"),
    ]);
    assert_eq!(
        name(None, &c),
        Some(("Android-3f2a9c1b".into(), "mdns".into()))
    );
    assert_eq!(
        name(Some("  "), &c).map(|n| n.1),
        Some("mdns".into()),
        "an empty label is no label"
    );
}

#[test]
fn junk() {
    for j in [
        "",
        "  ",
        "localhost",
        "LocalHost",
        "localhost.localdomain",
        "LOCALHOST.",
        "0",
        "12345678",
        "192.168.1.5",
        "fe80::1",
        "(none)",
        "unknown",
        "_googlecast",
        "---",
        "...",
    ] {
        assert!(is_junk(j), "{j:?} is junk");
    }
    for ok in [
        "android-3f2a9c1b5e7d",
        "ESP_3A2B1C",
        "iPhone",
        "kitchen-tv",
        "DESKTOP-4F2K9QX",
        "123abc",
        "Küchen-TV",
        "localhostess",
    ] {
        assert!(!is_junk(ok), "{ok:?} is a name");
    }
}

#[test]
fn model_and_shapes() {
    let c = cands(&[
        (Kind::DhcpVendor, "android-dhcp-14"),
        (Kind::MdnsModel, "Chromecast"),
    ]);
    assert_eq!(pick_model(&c).as_deref(), Some("Chromecast"));
    let c = cands(&[(Kind::DhcpVendor, "MSFT 5.0")]);
    assert_eq!(pick_model(&c).as_deref(), Some("MSFT 5.0"));
    assert_eq!(clean("a\u{202e}b\u{0}c\n"), "abc");
    assert_eq!(clean(&"é".repeat(200)).len(), 252, "cut at a char boundary");
}

fn rec(mac: &str, ip: &str, packets: u64, names: &[(Kind, &str)]) -> Record {
    Record {
        macs: vec![(mac.into(), packets)],
        ips: vec![ip.into()],
        first_ns: 10,
        last_ns: 20,
        packets,
        bytes: packets * 100,
        names: cands(names),
        ..Record::default()
    }
}

#[test]
fn randomised_macs_are_linked_by_client_id_or_host_name() {
    let phone_home = rec(
        "00:1b:a9:00:00:01",
        "192.168.1.40",
        5,
        &[
            (Kind::DhcpClientId, "01aabbccddeeff"),
            (Kind::DhcpHostname, "Pixel-7"),
        ],
    );
    let phone_private = rec(
        "da:a1:19:00:00:01",
        "192.168.1.41",
        50,
        &[(Kind::DhcpClientId, "01AABBCCDDEEFF")],
    );
    let laptop_private = rec(
        "ea:00:00:00:00:02",
        "192.168.1.42",
        7,
        &[(Kind::DhcpHostname, "thinkpad")],
    );
    let laptop_private2 = rec(
        "f2:00:00:00:00:03",
        "fe80::2",
        9,
        &[(Kind::DhcpHostname, "ThinkPad")],
    );
    // Same host name, both universal: two devices.
    let tv1 = rec(
        "00:1b:a9:00:00:0a",
        "192.168.1.50",
        1,
        &[(Kind::DhcpHostname, "tv")],
    );
    let tv2 = rec(
        "00:1b:a9:00:00:0b",
        "192.168.1.51",
        1,
        &[(Kind::DhcpHostname, "tv")],
    );
    let out = link(vec![
        phone_home,
        phone_private,
        laptop_private,
        laptop_private2,
        tv1,
        tv2,
    ]);
    assert_eq!(out.len(), 4, "{out:#?}");
    let phone = &out[0];
    assert_eq!(
        phone.macs.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        vec!["00:1b:a9:00:00:01", "da:a1:19:00:00:01"],
        "the universal MAC first, though the private one sent more"
    );
    assert_eq!(phone.ips, vec!["192.168.1.40", "192.168.1.41"]);
    assert_eq!(phone.packets, 55);
    let laptop = &out[1];
    assert_eq!(laptop.macs.len(), 2);
    assert_eq!(
        laptop.macs[0].0, "f2:00:00:00:00:03",
        "busiest private MAC first"
    );
    let d = device(
        out[0].clone(),
        &BTreeMap::new(),
        Zone::Named(chrono_tz::UTC),
    );
    assert_eq!(
        (d.name.as_str(), d.name_source.as_str()),
        ("Pixel-7", "dhcp-hostname")
    );
    assert_eq!(d.vendor.as_deref(), Some("Brother industries"));
    assert_eq!(d.macs.len(), 2);
    assert_eq!(d.client_id.as_deref(), Some("01aabbccddeeff"));
}

#[test]
fn labels_fallback_and_the_label_map() {
    let owner: BTreeMap<String, String> = [
        ("192.168.1.41".to_string(), "my phone".to_string()),
        ("203.0.113.9".to_string(), "work vpn".to_string()),
    ]
    .into();
    let d = device(
        rec(
            "da:a1:19:00:00:01",
            "192.168.1.41",
            1,
            &[(Kind::DhcpHostname, "Pixel")],
        ),
        &owner,
        Zone::Named(chrono_tz::UTC),
    );
    assert_eq!(
        (d.name.as_str(), d.name_source.as_str()),
        ("my phone", "label")
    );
    assert_eq!(d.vendor.as_deref(), Some(vendor::PRIVATE));
    let anon = device(
        rec("00:1b:a9:77:50:50", "192.168.1.5", 1, &[]),
        &owner,
        Zone::Named(chrono_tz::UTC),
    );
    assert_eq!(anon.name, "Brother industries 77:50:50");
    assert_eq!(anon.name_source, "vendor");
    let labels = labels_of(&[d, anon], &owner);
    assert_eq!(labels["192.168.1.41"].name, "my phone");
    assert_eq!(labels["da:a1:19:00:00:01"].name, "my phone");
    assert_eq!(labels["192.168.1.5"].name, "Brother industries 77:50:50");
    assert_eq!(labels["203.0.113.9"].source, "label");
    assert_eq!(labels.len(), 5);
}

#[test]
fn out_of_the_box_host_names_do_not_link_private_macs() {
    for g in [
        "iPhone",
        "iphone.local",
        "MacBook-Pro",
        "Galaxy-S23",
        "Pixel-7a",
        "android",
        "raspberrypi",
        "iPad",
        "DESKTOP",
    ] {
        assert!(is_generic(g), "{g}");
    }
    for n in [
        "Annas-iPhone",
        "thinkpad",
        "kitchen-tv",
        "ESP_3A2B1C",
        "android-3f2a9c1b77",
    ] {
        assert!(!is_generic(n), "{n}");
    }
    let a = rec(
        "da:00:00:00:00:01",
        "192.168.1.60",
        3,
        &[(Kind::DhcpHostname, "iPhone")],
    );
    let b = rec(
        "de:00:00:00:00:02",
        "192.168.1.61",
        4,
        &[(Kind::DhcpHostname, "iphone")],
    );
    assert_eq!(
        link(vec![a, b]).len(),
        2,
        "two phones called iPhone stay two devices"
    );
}

#[test]
fn a_device_lists_the_address_dhcp_gave_it() -> PolarsResult<()> {
    let pairs = df!(
        "mac" => ["00:1b:a9:00:00:01", "00:1b:a9:00:00:02"],
        "ip" => ["fe80::1", "192.168.1.20"],
        "first" => [1i64, 1],
        "last" => [2i64, 2],
        "packets" => [4u64, 9],
        "bytes" => [1000u64, 900],
    )?;
    // The first device has sent only from its link-local address so far; the DHCP
    // server's ACK gave it 192.168.1.30. The second was given the address it uses.
    let names = df!(
        KIND => ["dhcp-hostname", "dhcp-hostname", "dhcp-vendor"],
        NAME => ["kitchen-tv", "printer", "MSFT 5.0"],
        ADDR => [Some("192.168.1.30"), Some("192.168.1.20"), Some("0.0.0.0")],
        CLIENT_MAC => ["00:1b:a9:00:00:01", "00:1b:a9:00:00:02", "00:1b:a9:00:00:02"],
        CLIENT_IP => [None::<&str>, None, None],
        LAST_TS => [2i64, 2, 2],
        FRAMES => [1u64, 1, 1],
    )?;
    let (devices, omitted) = night_devices(
        &pairs,
        &names,
        &BTreeMap::new(),
        10,
        Zone::Named(chrono_tz::UTC),
    )?;
    assert_eq!(omitted, 0);
    let ips = |name: &str| {
        devices
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.ips.clone())
            .unwrap_or_default()
    };
    assert_eq!(ips("kitchen-tv"), vec!["fe80::1", "192.168.1.30"]);
    assert_eq!(
        ips("printer"),
        vec!["192.168.1.20"],
        "no duplicate, no 0.0.0.0"
    );
    Ok(())
}
