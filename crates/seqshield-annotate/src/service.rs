//! The annotation service: genomes, the verified model and its evidence
//! index, and the filtered report a caller gets back.
//!
//! What a caller sees depends on a [`View`], which the HTTP edge derives
//! from the token's scopes and clearance:
//!
//! | field | needs |
//! |---|---|
//! | variant (as sent), gene, locus tag, consequence | `annotate` |
//! | product, protein id, strand, CDS position, codon and amino-acid change, HGVS c./p. | `annotate` and clearance `internal` or above |
//! | literature evidence (PMIDs, scores, titles) | `annotate:evidence` |
//! | reference context (at most [`CONTEXT_BP`] bases either side) | clearance `controlled` or above |
//!
//! Never returned, whatever the scope: sample names, genotypes, IDs, INFO
//! or any other input column (the input layer drops them), and reference
//! sequence beyond the fixed context.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seqshield_format::{Classification, DataKey, Header, SealedHeader, StreamReader, Writer};
use seqshield_keys::{Kek, Recipient};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::bundle::{BundleError, ModelFiles};
use crate::consequence::{self, Effect};
use crate::evidence::index::{BuildOptions, EvidenceIndex};
use crate::evidence::{Encoder, EvidenceError};
use crate::genome::Genome;
use crate::input::{self, Checked, InputError, Source};

/// Reference bases returned either side of a variant, at most.
pub const CONTEXT_BP: u64 = 10;
/// Most variants in one request that get literature evidence.
pub const MAX_EVIDENCE_VARIANTS: usize = 200;
/// Most PMIDs per variant.
pub const MAX_EVIDENCE_K: usize = 20;
/// Content type of the encrypted evidence index.
pub const INDEX_CONTENT_TYPE: &str = "application/vnd.seqshield.evidence-index";

/// Why the service could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The input was refused.
    #[error(transparent)]
    Input(#[from] InputError),
    /// No such genome, or a genome must be named.
    #[error("{0}")]
    Genome(String),
    /// Evidence was asked for and there is no model.
    #[error("literature evidence is not available: no model is loaded")]
    NoModel,
    /// The model failed.
    #[error("the model failed: {0}")]
    Model(#[from] EvidenceError),
    /// Consequence calling failed.
    #[error("{0}")]
    Consequence(String),
}

/// What a caller may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Product, protein, strand, CDS position, codon/amino-acid change, HGVS.
    pub detail: bool,
    /// Literature evidence.
    pub evidence: bool,
    /// Reference context.
    pub context: bool,
}

/// The loaded model and its index.
pub struct Evidence {
    encoder: Encoder,
    index: EvidenceIndex,
    /// Model name and version from the verified manifest.
    pub model: ModelInfo,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence").field("model", &self.model).finish_non_exhaustive()
    }
}

/// A model's identity, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    /// Name from the manifest.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// Signing key id.
    pub signer: String,
    /// Abstracts in the index.
    pub abstracts: usize,
    /// Whether the weights' pages are locked against swapping.
    pub locked: bool,
}

/// Genomes and the optional model.
#[derive(Debug, Default)]
pub struct Annotator {
    genomes: Vec<(String, Arc<Genome>)>,
    evidence: Option<Evidence>,
}

/// One annotated variant.
#[derive(Debug, Serialize)]
pub struct Annotated {
    /// Line or list item.
    pub source: Source,
    /// Contig, 1-based position, and the alleles or description as sent.
    pub variant: VariantOut,
    /// One per gene affected (or one intergenic).
    pub effects: Vec<EffectOut>,
    /// PMIDs and scores, when the view allows and evidence was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<HitOut>>,
    /// Reference bases around the variant, when the view allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextOut>,
}

/// The variant as reported.
#[derive(Debug, Serialize)]
pub struct VariantOut {
    /// Contig.
    pub contig: String,
    /// 1-based position.
    pub pos: u64,
    /// REF, as sent (absent for an HGVS description: see `hgvs_g`).
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// ALT, as sent.
    #[serde(rename = "alt", skip_serializing_if = "Option::is_none")]
    pub alternate: Option<String>,
    /// The HGVS `g.` description as sent, for `del`, `dup`, `ins` and
    /// `delins`: their alleles came from the reference and are not echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hgvs_g: Option<String>,
}

/// An effect, filtered by the view.
#[derive(Debug, Serialize)]
pub struct EffectOut {
    /// Gene symbol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gene: Option<String>,
    /// Locus tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locus_tag: Option<String>,
    /// Sequence Ontology term.
    pub consequence: String,
    /// The rest, when the view has `detail`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

/// The detailed fields of an effect.
#[derive(Debug, Serialize)]
pub struct Detail {
    /// Product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Protein id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protein_id: Option<String>,
    /// `+` or `-`.
    pub strand: char,
    /// CDS position (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cds_pos: Option<u64>,
    /// Codon change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codon_change: Option<String>,
    /// Amino-acid change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aa_change: Option<String>,
    /// HGVS c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hgvs_c: Option<String>,
    /// HGVS p.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hgvs_p: Option<String>,
    /// Distance to the gene (upstream/downstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<u64>,
}

/// One evidence hit.
#[derive(Debug, Serialize)]
pub struct HitOut {
    /// PubMed id.
    pub pmid: String,
    /// Cosine similarity.
    pub score: f32,
    /// Article title.
    pub title: String,
}

/// Reference context.
#[derive(Debug, Serialize)]
pub struct ContextOut {
    /// 1-based position of the first base.
    pub start: u64,
    /// The bases.
    pub bases: String,
}

/// A whole answer.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The genome used.
    pub genome: String,
    /// The model, when evidence was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelOut>,
    /// One entry per ALT allele, in input order.
    pub results: Vec<Annotated>,
    /// Evidence was given for the first [`MAX_EVIDENCE_VARIANTS`] only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub evidence_truncated: bool,
}

/// The model as reported to callers.
#[derive(Debug, Serialize)]
pub struct ModelOut {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

impl Annotator {
    /// An annotator over `genomes` (name, genome), without a model.
    pub fn new(genomes: Vec<(String, Genome)>) -> Self {
        Self { genomes: genomes.into_iter().map(|(n, g)| (n, Arc::new(g))).collect(), evidence: None }
    }

    /// Adds the model and its index.
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Some(evidence);
        self
    }

    /// The model and index, if loaded.
    pub fn evidence(&self) -> Option<&Evidence> {
        self.evidence.as_ref()
    }

    /// The model, if loaded.
    pub fn model(&self) -> Option<&ModelInfo> {
        self.evidence.as_ref().map(|e| &e.model)
    }

    /// The genome names.
    pub fn genome_names(&self) -> Vec<&str> {
        self.genomes.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Whether any genome is configured.
    pub fn is_enabled(&self) -> bool {
        !self.genomes.is_empty()
    }

    /// The genome a request names (or the only one).
    pub fn genome(&self, name: Option<&str>) -> Result<(&str, &Genome), ServiceError> {
        match name {
            Some(n) => {
                self.genomes.iter().find(|(g, _)| g == n).map(|(g, genome)| (g.as_str(), genome.as_ref())).ok_or_else(
                    || {
                        ServiceError::Genome(format!(
                            "no genome named {:?}; available: {}",
                            clip(n),
                            self.genome_names().join(", ")
                        ))
                    },
                )
            }
            None if self.genomes.len() == 1 => Ok((self.genomes[0].0.as_str(), self.genomes[0].1.as_ref())),
            None => Err(ServiceError::Genome(format!(
                "several genomes are configured; name one with ?genome= ({})",
                self.genome_names().join(", ")
            ))),
        }
    }

    /// Parses and validates a VCF body.
    pub fn parse_vcf(genome: &Genome, body: &[u8]) -> Result<Vec<Checked>, InputError> {
        input::parse_vcf(body, genome)
    }

    /// Parses and validates a list of single variants.
    pub fn parse_list(genome: &Genome, items: &[String]) -> Result<Vec<Checked>, InputError> {
        if items.len() > input::MAX_LIST_ITEMS {
            return Err(InputError::too_large(
                "variants",
                format!("at most {} variants per request", input::MAX_LIST_ITEMS),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                input::parse_variant(s, genome, i).map(|variant| {
                    // A substitution names both bases; del/dup/ins/delins
                    // had theirs filled in from the reference.
                    let s = s.trim();
                    let described = (s.contains(":g.") && !s.contains('>')).then(|| s.to_owned());
                    Checked { source: Source::Item(i), variant, described }
                })
            })
            .collect()
    }

    /// Annotates checked variants and filters the answer by `view`.
    /// `evidence_k` > 0 asks for that many PMIDs per variant (the view must
    /// allow evidence; the caller checks).
    pub fn annotate(
        &self,
        genome_name: &str,
        genome: &Genome,
        checked: &[Checked],
        view: View,
        evidence_k: usize,
    ) -> Result<Report, ServiceError> {
        let mut results = Vec::with_capacity(checked.len());
        let mut texts: Vec<Option<String>> = Vec::new();
        for c in checked {
            let effects =
                consequence::annotate(genome, &c.variant).map_err(|e| ServiceError::Consequence(e.to_string()))?;
            if evidence_k > 0 && texts.len() < MAX_EVIDENCE_VARIANTS {
                texts.push(evidence_text(&effects));
            }
            let v = &c.variant;
            let context = view.context.then(|| {
                let start = v.pos.saturating_sub(CONTEXT_BP + 1);
                let end =
                    (v.pos - 1 + v.reference.len() as u64 + CONTEXT_BP).min(genome.contig_len(&v.contig).unwrap_or(0));
                let bases = genome.sequence(&v.contig, start, end).map(|b| String::from_utf8_lossy(b).into_owned());
                ContextOut { start: start + 1, bases: bases.unwrap_or_default() }
            });
            results.push(Annotated {
                source: c.source,
                variant: match &c.described {
                    None => VariantOut {
                        contig: v.contig.clone(),
                        pos: v.pos,
                        reference: Some(v.reference.clone()),
                        alternate: Some(v.alternate.clone()),
                        hgvs_g: None,
                    },
                    Some(d) => VariantOut {
                        contig: v.contig.clone(),
                        pos: v.pos,
                        reference: None,
                        alternate: None,
                        hgvs_g: Some(d.clone()),
                    },
                },
                effects: effects.into_iter().map(|e| filter_effect(e, view)).collect(),
                evidence: None,
                context,
            });
        }
        let mut model = None;
        let mut truncated = false;
        if evidence_k > 0 {
            let ev = self.evidence.as_ref().ok_or(ServiceError::NoModel)?;
            let k = evidence_k.min(MAX_EVIDENCE_K);
            truncated = checked.len() > MAX_EVIDENCE_VARIANTS;
            // One embedding per distinct text.
            let mut unique: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
            unique.sort_unstable();
            unique.dedup();
            let vectors = if unique.is_empty() { Vec::new() } else { ev.encoder.embed(&unique)? };
            let by_text: HashMap<&str, &Vec<f32>> = unique.iter().copied().zip(vectors.iter()).collect();
            for (r, text) in results.iter_mut().zip(&texts) {
                let hits = match text.as_deref().and_then(|t| by_text.get(t)) {
                    Some(q) => ev
                        .index
                        .search(q, k)?
                        .into_iter()
                        .map(|h| HitOut { pmid: h.pmid.to_string(), score: h.score, title: h.title })
                        .collect(),
                    None => Vec::new(),
                };
                r.evidence = Some(hits);
            }
            model = Some(ModelOut { name: ev.model.name.clone(), version: ev.model.version.clone() });
        }
        Ok(Report { genome: genome_name.to_owned(), model, results, evidence_truncated: truncated })
    }
}

fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The text the model embeds for a variant, built by rule from its first
/// genic effect (gene or locus tag, product, consequence, HGVS).
pub fn evidence_text(effects: &[Effect]) -> Option<String> {
    let e = effects.iter().find(|e| e.gene.is_some() || e.product.is_some()).or_else(|| effects.first())?;
    Some(crate::evidence::query::variant_text(
        e.gene.as_deref().or(e.locus_tag.as_deref()),
        e.product.as_deref(),
        e.consequence.as_str(),
        e.hgvs_c.as_deref(),
        e.hgvs_p.as_deref(),
    ))
}

fn filter_effect(e: Effect, view: View) -> EffectOut {
    let consequence = e.consequence.as_str().to_owned();
    let detail = view.detail.then_some(Detail {
        product: e.product,
        protein_id: e.protein_id,
        strand: e.strand,
        cds_pos: e.cds_pos,
        codon_change: e.codon_change,
        aa_change: e.aa_change,
        hgvs_c: e.hgvs_c,
        hgvs_p: e.hgvs_p,
        distance: e.distance,
    });
    EffectOut { gene: e.gene, locus_tag: e.locus_tag, consequence, detail }
}

impl Evidence {
    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The index.
    pub fn index(&self) -> &EvidenceIndex {
        &self.index
    }

    /// Loads the encoder from verified model files and opens the evidence
    /// index at `index_path` (encrypted for `kek`), rebuilding it from
    /// `corpus` when it is missing or was built from another corpus or
    /// model. `progress` shows a bar while embedding.
    pub fn load(
        mut files: ModelFiles,
        corpus: &[PathBuf],
        limit: Option<usize>,
        index_path: &Path,
        kek: &dyn Kek,
        progress: bool,
    ) -> Result<Self, LoadError> {
        let _wipe = crate::secmem::WipeScope::enter();
        let weights_name = files.weights_name().ok_or(BundleError::Missing("*.safetensors"))?;
        let config = files.get("config.json").ok_or(BundleError::Missing("config.json"))?.to_vec();
        let tokenizer = files.get("tokenizer.json").ok_or(BundleError::Missing("tokenizer.json"))?.to_vec();
        let digest = files.sha256(&weights_name).ok_or(BundleError::Missing("*.safetensors"))?;
        let weights = files.take(&weights_name).ok_or(BundleError::Missing("*.safetensors"))?;
        let encoder = Encoder::from_parts_hashed(&config, weights, &tokenizer, &digest)?;
        let fingerprint = crate::evidence::index::fingerprint_corpus(corpus, encoder.model_id(), limit)?;
        let existing = match open_index(index_path, kek)? {
            Some(bytes) => Some(EvidenceIndex::from_bytes(&bytes)?),
            None => None,
        };
        let index = match existing {
            Some(index) if index.is_current(&fingerprint, encoder.model_id()) => index,
            found => {
                if found.is_some() {
                    tracing::info!("the corpus or the model changed: rebuilding the evidence index");
                }
                let mut parsers = Vec::with_capacity(corpus.len());
                for p in corpus {
                    parsers.push(crate::evidence::pubmed::parse_path(p)?);
                }
                let articles = parsers.into_iter().flatten();
                let options = BuildOptions { fingerprint: fingerprint.clone(), limit, progress };
                let index = EvidenceIndex::build(&encoder, articles, &options)?;
                seal_index(index_path, &index.to_bytes(), kek)?;
                index
            }
        };
        let m = &files.manifest;
        let model = ModelInfo {
            name: m.name.clone(),
            version: m.version.clone(),
            signer: m.signer.clone(),
            abstracts: index.len(),
            locked: files.all_locked(),
        };
        Ok(Self { encoder, index, model })
    }
}

/// Why the model or its index could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bundle was refused.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The encoder or index failed.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// The index file could not be read or written.
    #[error("the evidence index {path}: {why}")]
    Index {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

fn index_err(path: &Path) -> impl Fn(String) -> LoadError + '_ {
    move |why| LoadError::Index { path: path.to_owned(), why }
}

/// Writes the index encrypted for `kek`, atomically. (Its fingerprint is
/// inside, under the container's MAC.)
fn seal_index(path: &Path, bytes: &[u8], kek: &dyn Recipient) -> Result<(), LoadError> {
    let err = index_err(path);
    let key = DataKey::generate();
    let wrapped = kek.wrap(&key).map_err(|e| err(e.to_string()))?;
    let header =
        Header::new(Classification::Internal, INDEX_CONTENT_TYPE, vec![wrapped]).map_err(|e| err(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let tmp = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = Writer::new(std::io::BufWriter::new(f), &header, &key)?;
        std::io::Write::write_all(&mut w, bytes)?;
        let sealed = w.finish()?;
        sealed.inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e.to_string())
    })
}

/// Reads and authenticates the index's bytes, if the file exists.
fn open_index(path: &Path, kek: &dyn Kek) -> Result<Option<Zeroizing<Vec<u8>>>, LoadError> {
    let err = index_err(path);
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut input = std::io::BufReader::new(f);
    let sealed = SealedHeader::read_from(&mut input).map_err(|e| err(e.to_string()))?;
    let (key, header) = seqshield_keys::unlock(sealed, &[kek]).map_err(|e| err(e.to_string()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut StreamReader::new(input, &header, &key), &mut bytes)
        .map_err(|e| err(e.to_string()))?;
    Ok(Some(bytes))
}
