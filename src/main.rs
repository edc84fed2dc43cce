//! Thin binary: clap → config → library → exit code (0 ok, 1 findings ≥ --fail-on, 2 error).
#![forbid(unsafe_code)]
fn main() {
    std::process::exit(sipscope::cli::main_exit_code());
}
