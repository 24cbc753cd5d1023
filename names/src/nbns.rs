//! NetBIOS name service (UDP 137).

use crate::{Name, Packet};

pub(crate) fn datagram(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}
