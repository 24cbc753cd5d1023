//! Link-layer header types: [`LinkType`] is owned by the `pcapfmt` crate (with the rest
//! of the pcap format) and re-exported here, so `crate::linktype::LinkType` keeps working
//! for the reader, the decoder and the fuzz targets that include them by path.

pub use pcapfmt::LinkType;
