//! The `netdigest` binary: everything lives in the library; see `cli`.

fn main() {}
