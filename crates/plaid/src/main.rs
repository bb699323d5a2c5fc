//! The `plaid` command-line tool.
fn main() {}
