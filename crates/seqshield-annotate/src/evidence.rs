//! Literature evidence for a variant: a BERT encoder, a PubMed parser and an
//! embedding index ranked by cosine similarity.
//!
//! - [`bert`]: [`Encoder`], a BERT sentence encoder (candle) loaded from
//!   in-memory config, safetensors and `tokenizer.json`.
//! - [`pubmed`]: a streaming parser of NLM PubMed baseline XML.
//! - [`index`]: [`EvidenceIndex`], the embedded abstracts, its binary form
//!   and the corpus fingerprint that says when to rebuild it.
//! - [`query`]: the text form of a variant, with HGVS expanded into words.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use seqshield_annotate::evidence::{index, pubmed, query, EvidenceIndex, Encoder};
//! use zeroize::Zeroizing;
//!
//! let dir = std::path::Path::new("model");
//! let encoder = Encoder::from_parts(
//!     &std::fs::read(dir.join("config.json"))?,
//!     Zeroizing::new(std::fs::read(dir.join("model.safetensors"))?),
//!     &std::fs::read(dir.join("tokenizer.json"))?,
//! )?;
//! let files = vec![std::path::PathBuf::from("pubmed20n0014.xml.gz")];
//! let options = index::BuildOptions {
//!     fingerprint: index::fingerprint_corpus(&files, encoder.model_id(), None)?,
//!     limit: None,
//!     progress: true,
//! };
//! let index = EvidenceIndex::build(&encoder, pubmed::parse_path(&files[0])?, &options)?;
//! let text = query::variant_text(Some("BRCA1"), None, "missense_variant", None, Some("p.Cys61Gly"));
//! for hit in index.search_text(&encoder, &text, 10)? {
//!     println!("PMID {} {:.3} {}", hit.pmid, hit.score, hit.title);
//! }
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

pub mod bert;
pub mod index;
pub mod pubmed;
pub mod query;

pub use bert::Encoder;
pub use index::{EvidenceIndex, Hit};
pub use pubmed::Article;

/// Errors of the evidence layer. Messages never hold weights, activations
/// or query text.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// A model part is larger than its limit.
    #[error("{what} is {len} bytes, over the {max}-byte limit")]
    InputTooLarge {
        /// Which part.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `config.json` is not valid JSON, or lacks a key BERT needs.
    #[error("model config.json: {0}")]
    ConfigJson(#[source] serde_json::Error),
    /// `config.json` does not describe a BERT model.
    #[error("model config.json is not a BERT config: {0}")]
    NotBert(&'static str),
    /// A `config.json` dimension is zero or over its bound.
    #[error("model config.json: {field} = {value} is out of bounds (1..={max})")]
    ConfigBounds {
        /// The key.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The bound.
        max: usize,
    },
    /// `tokenizer.json` could not be loaded, or a text could not be tokenized.
    #[error("tokenizer: {0}")]
    Tokenizer(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The tokenizer's vocabulary does not fit the model's embedding table.
    #[error("tokenizer has {tokenizer} tokens but the model's vocab_size is {model}")]
    TokenizerMismatch {
        /// Tokens in `tokenizer.json`, added tokens included.
        tokenizer: usize,
        /// `vocab_size` in `config.json`.
        model: usize,
    },
    /// The safetensors buffer is malformed, or lacks or misshapes a weight.
    #[error("model weights: {0}")]
    Weights(#[source] candle_core::Error),
    /// A forward pass failed.
    #[error("inference: {0}")]
    Inference(#[source] candle_core::Error),
    /// A token limit outside what the model supports.
    #[error("max tokens {requested} is outside 2..={max}")]
    MaxTokens {
        /// Asked for.
        requested: usize,
        /// The model's `max_position_embeddings`.
        max: usize,
    },
    /// Reading a corpus file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The PubMed XML is malformed.
    #[error("PubMed XML at byte {position}: {source}")]
    Xml {
        /// Byte offset in the (decompressed) XML.
        position: u64,
        /// The cause.
        #[source]
        source: quick_xml::Error,
    },
    /// A PubMed XML structure breaks a bound or a rule of the format.
    #[error("PubMed XML at byte {position}: {problem}")]
    PubmedFormat {
        /// Byte offset in the (decompressed) XML.
        position: u64,
        /// What is wrong.
        problem: pubmed::FormatProblem,
    },
    /// One PubMed record holds more text than [`pubmed::MAX_RECORD_TEXT_BYTES`];
    /// it is skipped and parsing goes on.
    #[error("PubMed record {pmid} has more than {max} bytes of text")]
    RecordTooLarge {
        /// The record's PMID (0 where it had none yet).
        pmid: u64,
        /// The limit.
        max: usize,
    },
    /// A serialized index is corrupt or from an unknown version.
    #[error("evidence index: {0}")]
    Index(#[from] index::IndexFormatError),
    /// A query vector of the wrong length.
    #[error("query has {got} dimensions, the index {expected}")]
    DimMismatch {
        /// The index's dimension.
        expected: usize,
        /// The query's.
        got: usize,
    },
    /// The index was built with another model than the encoder given.
    #[error("the index was built with model {index}, not {encoder}")]
    ModelMismatch {
        /// The index's model id.
        index: String,
        /// The encoder's model id.
        encoder: String,
    },
}
