//! The untrusted-input modules of netdigest, included by path for fuzzing
//! (`linktype` is a re-export of the `pcapfmt` crate, a dependency here too).
#[path = "../src/linktype.rs"]
pub mod linktype;
#[path = "../src/capfile.rs"]
pub mod capfile;
#[path = "../src/decode.rs"]
pub mod decode;
