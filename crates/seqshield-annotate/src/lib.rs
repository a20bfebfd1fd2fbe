//! Protected variant annotation.
//!
//! - [`genome`]: a genome annotation (GenBank, or GFF3 with FASTA) with its
//!   reference sequence.
//! - [`consequence`]: the consequence of a variant on each overlapping gene
//!   (both strands, overlapping genes, spliced `join()` CDS) with HGVS c./p.
//! - [`evidence`]: a BERT encoder (candle) loaded from memory, a PubMed
//!   baseline parser and an embedding index ranked by cosine similarity.
//! - [`bundle`]: encrypted, signed model bundles (pack, verify, open).
//! - [`input`]: bounded, validated VCF and single-variant input.
//! - [`secmem`]: locked pages for weights, wipe-on-free for activations.

pub mod bundle;
pub mod config;
pub mod consequence;
pub mod evidence;
pub mod genome;
pub mod guard;
pub mod input;
pub mod secmem;
pub mod service;
