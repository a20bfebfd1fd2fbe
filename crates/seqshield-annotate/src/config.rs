//! The `[annotate]` configuration table.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::guard::Limits;

/// `[annotate]`: the annotation service. Without a genome it is off and
/// `POST /annotate` answers 503.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnnotateConfig {
    /// Reference genomes with their annotation. A request names one with
    /// `?genome=NAME` when there are several.
    pub genomes: Vec<GenomeSource>,
    /// The model bundle (`seqshield model pack`); default
    /// `DATA/annotate/model.bundle` when that file exists. Without a model,
    /// annotation gives consequences only.
    pub model_bundle: Option<PathBuf>,
    /// The public key (SPKI PEM) trusted to sign model bundles; default
    /// `DATA/annotate/model-signing.pub.pem`.
    pub model_signing_key: Option<PathBuf>,
    /// Refuse a bundle whose manifest carries another version.
    pub model_version: Option<String>,
    /// PubMed baseline files (`.xml.gz`) for literature evidence; the index
    /// is built once, stored encrypted under `DATA/annotate/`, and rebuilt
    /// when the corpus or the model changes.
    pub pubmed: Vec<PathBuf>,
    /// Embed only the first N abstracts (a smaller, faster index).
    pub pubmed_limit: Option<usize>,
    /// Per-caller limits.
    pub limits: Limits,
}

/// One reference genome: a GenBank file, or GFF3 with FASTA.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenomeSource {
    /// The name requests use (`?genome=NAME`).
    pub name: String,
    /// A GenBank flat file (plain or gzip).
    pub genbank: Option<PathBuf>,
    /// A GFF3 file (with `fasta`).
    pub gff3: Option<PathBuf>,
    /// The FASTA sequence for `gff3`.
    pub fasta: Option<PathBuf>,
}
