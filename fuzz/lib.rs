//! The untrusted-input modules of netdigest, included by path for fuzzing.
#[path = "../src/linktype.rs"]
pub mod linktype;
#[path = "../src/capfile.rs"]
pub mod capfile;
#[path = "../src/decode.rs"]
pub mod decode;
