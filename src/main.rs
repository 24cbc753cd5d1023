//! The `netdigest` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    netdigest::cli::main()
}
