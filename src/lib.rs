//! netdigest: what happened on the home network overnight.
//!
//! One module per pipeline stage, data flowing one way through files in the night
//! directory ([`layout`] owns every path):
//! `capture` (libpcap: parts + capture.json) -> `capfile` (reading capture files) ->
//! `decode` (bytes to [`decode::PacketRecord`]) -> `convert` (Parquet, whose columns
//! [`parquet_schema`] owns, and the seed's CSV) -> `analyse` (polars, [`analyse::Summary`];
//! `devices` across nights) -> `chart` / `report` (images, email, page) -> `message`
//! (the spooled message and report.eml) -> `mail` (SMTP, the delivery record).
//! `pipeline` runs the stages for a night, `nightly` for every night the timer finds,
//! `retention` deletes the nights past `state.keep_nights` once mailed or given up,
//! `units` writes the systemd units of the schedule. Beside them: `config` (typed values,
//! checked once at load), `exit` (the one map to exit codes), `cli`, `logging`, `fsutil`
//! (atomic files), `disk` (free space) and `linktype` (re-exported from the `pcapfmt`
//! crate, which owns the pcap format). Sample nights for the demo, tests and benchmarks
//! come from the `synth` crate, outside this library.

// Product code keeps its functions short (clippy's default: 100 lines); tests may
// spell out a long scenario.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod analyse;
pub mod baseline;
pub mod capfile;
pub mod capture;
pub mod chart;
pub mod cli;
pub mod config;
pub mod convert;
mod dataframe;
pub mod decode;
pub mod devices;
pub mod disk;
pub mod exit;
pub mod flows;
pub mod fsutil;
pub mod human;
pub mod layout;
pub mod linktype;
pub mod lock;
pub mod logging;
pub mod mail;
pub mod message;
pub mod namestore;
pub mod nightly;
pub mod parquet_schema;
pub mod pipeline;
pub mod report;
pub mod retention;
pub mod units;
pub mod vendor;
