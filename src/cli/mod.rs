//! Command line (stub).
pub fn main_exit_code() -> i32 {
    0
}
