//! One module per command group.

pub mod c4gh;
pub mod crypt;
pub mod demo;
pub mod keys;
