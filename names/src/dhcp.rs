//! DHCPv4 (UDP 67/68) and DHCPv6 (UDP 546/547).

use crate::{Name, Packet};

pub(crate) fn v4(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}

pub(crate) fn v6(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}
