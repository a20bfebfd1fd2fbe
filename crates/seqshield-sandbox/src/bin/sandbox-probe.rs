//! The escape tests' attacker (written in a later commit).
fn main() {}
