//! DNS answers (port 53, UDP and TCP), mDNS (5353) and LLMNR (5355).

use crate::{Name, Packet};

/// One DNS, mDNS or LLMNR datagram.
pub(crate) fn datagram(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}

/// One TCP segment to or from port 53 (2-byte length prefix, messages within the segment).
pub(crate) fn tcp_segment(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}
