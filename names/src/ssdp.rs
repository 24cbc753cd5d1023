//! SSDP/UPnP (UDP 1900).

use crate::{Name, Packet};

pub(crate) fn datagram(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}
