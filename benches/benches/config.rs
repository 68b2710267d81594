//! Configuration parsing.
fn main() {}
