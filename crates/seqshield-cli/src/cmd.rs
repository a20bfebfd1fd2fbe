//! One module per command group.

pub mod admin;
pub mod annotate;
pub mod audit;
pub mod bench;
pub mod burst;
pub mod c4gh;
pub mod config;
pub mod crypt;
pub mod demo;
pub mod doctor;
pub mod gpu;
pub mod keys;
pub mod login;
pub mod model;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod worker;
