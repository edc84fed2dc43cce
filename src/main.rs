//! Thin binary: clap → config → library → exit code (0 ok, 1 findings ≥ --fail-on, 2 error).
fn main() {
    std::process::exit(sipscope::cli::main_exit_code());
}
