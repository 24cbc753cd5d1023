//! Who made a network card: the vendor of a MAC address from its OUI, looked up in the
//! IEEE registries (MA-L, MA-M, MA-S, IAB) that `macaddr-ouidb` embeds at build time.
//! Nothing is fetched at run time.
//!
//! A locally administered MAC (bit 0x02 of the first octet: phones' and laptops'
//! randomised "private" addresses, virtual machines, containers) belongs to no vendor:
//! it is [`PRIVATE`]. A group (multicast or broadcast) MAC names no device: no vendor.

/// What a locally administered (randomised) MAC shows instead of a vendor.
pub const PRIVATE: &str = "private address";

/// `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` or `aabbccddeeff` (any case) as its bytes.
#[must_use]
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let s = s.trim();
    let hex: String = match s.len() {
        12 => s.to_string(),
        17 => {
            let sep = s.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return None;
            }
            let parts: Vec<&str> = s.split(char::from(sep)).collect();
            if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                return None;
            }
            parts.concat()
        }
        _ => return None,
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A MAC as the summary writes it: `aa:bb:cc:dd:ee:ff`.
#[must_use]
pub fn mac_string(m: [u8; 6]) -> String {
    crate::decode::Addr::Mac(m).to_string()
}

/// True for a locally administered MAC (randomised, virtual): bit 0x02 of the first
/// octet, on a unicast address.
#[must_use]
pub fn is_private(mac: [u8; 6]) -> bool {
    mac[0] & 0x01 == 0 && mac[0] & 0x02 != 0
}

/// The vendor of `mac` (in any form [`parse_mac`] takes): the registry's short
/// organisation name, [`PRIVATE`] for a locally administered address, None for a group
/// address, an unassigned OUI or text that is not a MAC.
#[must_use]
pub fn vendor(mac: &str) -> Option<String> {
    let m = parse_mac(mac)?;
    if m[0] & 0x01 != 0 {
        return None;
    }
    if is_private(m) {
        return Some(PRIVATE.to_string());
    }
    let e = macaddr_ouidb::OUI_DB_BUNDLED.lookup(&m)?;
    // Registry text is not ours: one line, single spaces, no control characters.
    let name = e
        .name()
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_in_three_spellings() {
        let mac = [0x00, 0x1b, 0xa9, 0x77, 0x50, 0x50];
        let want = Some(mac);
        assert_eq!(parse_mac("00:1b:a9:77:50:50"), want);
        assert_eq!(parse_mac("00-1B-A9-77-50-50"), want);
        assert_eq!(parse_mac("001BA9775050"), want);
        for bad in [
            "",
            "00:1b:a9:77:50",
            "00:1b:a9:77:50:5g",
            "00:1b-a9:77:50:50",
            "192.168.1.1",
            "001ba977505",
            "0:1b:a9:77:50:50:",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert_eq!(mac_string(mac), "00:1b:a9:77:50:50");
    }

    #[test]
    fn vendors_private_and_group_addresses() {
        assert_eq!(
            vendor("00:1b:a9:77:50:50").as_deref(),
            Some("Brother industries")
        );
        assert_eq!(vendor("50:a6:d8:00:00:01").as_deref(), Some("Apple"));
        // MA-S (36-bit) block inside the IEEE's 8C:1F:64.
        assert_eq!(
            vendor("8c:1f:64:af:a0:01").as_deref(),
            Some("DATA ELECTRONIC DEVICES")
        );
        assert_eq!(vendor("02:00:00:00:00:0a").as_deref(), Some(PRIVATE));
        assert_eq!(vendor("da:a1:19:00:00:01").as_deref(), Some(PRIVATE));
        assert_eq!(vendor("01:00:5e:00:00:fb"), None, "IPv4 multicast");
        assert_eq!(vendor("33:33:00:00:00:01"), None, "IPv6 multicast");
        assert_eq!(vendor("ff:ff:ff:ff:ff:ff"), None, "broadcast");
        assert_eq!(vendor("not a mac"), None);
    }
}
