//! HTTP/1.x Host header of a request that starts a TCP segment.

use crate::{Name, Packet};

pub(crate) fn segment(p: &Packet<'_>, out: &mut Vec<Name>) {
    let _ = (p, out);
}
