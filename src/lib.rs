pub mod config;
pub mod fsutil;
pub mod linktype;
pub mod logging;
