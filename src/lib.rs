pub mod analyse;
pub mod config;
pub mod devices;
pub mod fsutil;
pub mod linktype;
pub mod logging;
pub mod report;
