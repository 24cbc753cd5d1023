//! TLS ClientHello server name over TCP, reassembled across segments (bounded).

use crate::{Name, Packet};

#[derive(Debug, Default)]
pub(crate) struct Reassembly {}

impl Reassembly {
    /// Takes one TCP segment; true when it belongs to a TLS handshake being read (so it is
    /// not HTTP).
    pub(crate) fn segment(&mut self, p: &Packet<'_>, out: &mut Vec<Name>) -> bool {
        let _ = (p, out);
        false
    }
}
