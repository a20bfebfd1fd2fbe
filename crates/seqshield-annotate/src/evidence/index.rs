//! An index of embedded abstracts, searched by cosine similarity.
//!
//! Built once per corpus and model ([`fingerprint_corpus`] says when to
//! rebuild), serialized with [`EvidenceIndex::to_bytes`] for the caller to
//! encrypt. The binary form (all integers little-endian):
//!
//! ```text
//! magic     8 bytes  "SQEVIDX\0"
//! version   u32      1
//! dim       u32      1..=MAX_DIM
//! count     u64      articles, ≤ MAX_ARTICLES
//! limit     u64      the build's article limit, u64::MAX for none
//! fp_len    u16, fingerprint (UTF-8, ≤ MAX_ID_BYTES)
//! id_len    u16, model id    (UTF-8, ≤ MAX_ID_BYTES)
//! count ×   pmid u64, title_len u16, title (UTF-8, ≤ MAX_TITLE_BYTES)
//! count × dim f32            unit rows
//! sha256    32 bytes over everything before it
//! ```

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::bert::{cut, Encoder};
use super::pubmed::Article;
use super::EvidenceError;

/// First bytes of a serialized index.
pub const MAGIC: &[u8; 8] = b"SQEVIDX\0";
/// The serialization version written and read.
pub const VERSION: u32 = 1;
/// Largest embedding dimension accepted.
pub const MAX_DIM: usize = 8192;
/// Most articles in one index (PubMed holds about 37 million).
pub const MAX_ARTICLES: u64 = 100_000_000;
/// Longest fingerprint or model id, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest title kept, in bytes (longer titles are cut at build).
pub const MAX_TITLE_BYTES: usize = 2048;
/// Articles read and embedded per step of a build.
const BUILD_CHUNK: usize = 256;
/// How far a stored row's norm may be from 1.
const NORM_TOLERANCE: f32 = 1e-3;

/// A corrupt or unsupported serialized index.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexFormatError {
    /// Shorter than the fixed header and checksum.
    #[error("too short")]
    TooShort,
    /// Not an evidence index.
    #[error("bad magic")]
    BadMagic,
    /// A version this build does not read.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u32),
    /// The SHA-256 at the end does not match: bytes were changed.
    #[error("checksum mismatch")]
    Checksum,
    /// A count or length is out of bounds.
    #[error("{field} = {value} is out of bounds")]
    Bounds {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The data ends before a field.
    #[error("truncated at {field}")]
    Truncated {
        /// The field that did not fit.
        field: &'static str,
    },
    /// Bytes are left after the matrix.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A string is not UTF-8.
    #[error("{field} is not UTF-8")]
    Utf8 {
        /// Which field.
        field: &'static str,
    },
    /// A row is not finite or not of unit length.
    #[error("row {0} is not a finite unit vector")]
    BadRow(usize),
}

/// A search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// PubMed identifier.
    pub pmid: u64,
    /// Cosine similarity to the query, in -1..=1.
    pub score: f32,
    /// The article's title.
    pub title: String,
}

/// How to build an index.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// The corpus fingerprint, from [`fingerprint_corpus`].
    pub fingerprint: String,
    /// Embed only the first `limit` articles (tests, CI).
    pub limit: Option<usize>,
    /// Show a progress bar on standard error (hidden when it is not a
    /// terminal).
    pub progress: bool,
}

/// Embedded abstracts: one unit row per article.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceIndex {
    fingerprint: String,
    model_id: String,
    limit: Option<u64>,
    dim: usize,
    pmids: Vec<u64>,
    titles: Vec<String>,
    /// `pmids.len() × dim`, row-major, each row of unit length.
    matrix: Vec<f32>,
}

/// The text embedded for an article: title, ". ", abstract (the tokenizer
/// truncates it).
pub fn article_text(a: &Article) -> String {
    let title = a.title.trim_end_matches(['.', ' ']);
    if title.is_empty() {
        a.abstract_text.clone()
    } else {
        format!("{title}. {}", a.abstract_text)
    }
}

/// SHA-256 over the corpus files' bytes (in the order given, each
/// length-prefixed), the model id and the article limit, as `sha256:` and
/// hex. An index whose fingerprint differs must be rebuilt.
pub fn fingerprint_corpus(paths: &[PathBuf], model_id: &str, limit: Option<usize>) -> Result<String, EvidenceError> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"seqshield-evidence-corpus-v1\0");
    ctx.update(&(model_id.len() as u64).to_le_bytes());
    ctx.update(model_id.as_bytes());
    ctx.update(&limit.map_or(u64::MAX, |l| l as u64).to_le_bytes());
    ctx.update(&(paths.len() as u64).to_le_bytes());
    let mut buf = vec![0u8; 256 * 1024];
    for path in paths {
        let io_err = |source| EvidenceError::Io { path: path.clone(), source };
        let mut file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        ctx.update(&len.to_le_bytes());
        loop {
            let n = file.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
        }
    }
    Ok(format!("sha256:{}", hex::encode(ctx.finish())))
}

impl EvidenceIndex {
    /// Embeds `articles` (title + ". " + abstract) with `encoder`. Stops at
    /// the first error.
    pub fn build<I>(encoder: &Encoder, articles: I, options: &BuildOptions) -> Result<Self, EvidenceError>
    where
        I: IntoIterator<Item = Result<Article, EvidenceError>>,
    {
        let bar = if options.progress {
            let bar = ProgressBar::with_draw_target(options.limit.map(|l| l as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} embedding abstracts {pos}/{len} [{elapsed_precise}] {per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut index = EvidenceIndex {
            fingerprint: options.fingerprint.clone(),
            model_id: encoder.model_id().to_owned(),
            limit: options.limit.map(|l| l as u64),
            dim: encoder.dim(),
            pmids: Vec::new(),
            titles: Vec::new(),
            matrix: Vec::new(),
        };
        let mut articles = articles.into_iter().take(options.limit.unwrap_or(usize::MAX));
        let mut chunk = Vec::with_capacity(BUILD_CHUNK);
        loop {
            chunk.clear();
            for article in articles.by_ref().take(BUILD_CHUNK) {
                chunk.push(article?);
            }
            if chunk.is_empty() {
                break;
            }
            let texts: Vec<String> = chunk.iter().map(article_text).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let rows = encoder.embed(&refs)?;
            for (article, row) in chunk.iter().zip(rows) {
                index.pmids.push(article.pmid);
                index.titles.push(cut(&article.title, MAX_TITLE_BYTES).to_owned());
                index.matrix.extend_from_slice(&row);
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(index)
    }

    /// The `k` articles closest to `query` (a unit vector), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, EvidenceError> {
        if query.len() != self.dim {
            return Err(EvidenceError::DimMismatch { expected: self.dim, got: query.len() });
        }
        let mut scored: Vec<(f32, usize)> = self
            .matrix
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, row)| (row.iter().zip(query).map(|(a, b)| a * b).sum(), i))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let by_score = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        scored.select_nth_unstable_by(k - 1, by_score);
        scored.truncate(k);
        scored.sort_unstable_by(by_score);
        Ok(scored
            .into_iter()
            .map(|(score, i)| Hit { pmid: self.pmids[i], score, title: self.titles[i].clone() })
            .collect())
    }

    /// Embeds `text` with `encoder` (which must be the model the index was
    /// built with) and searches.
    pub fn search_text(&self, encoder: &Encoder, text: &str, k: usize) -> Result<Vec<Hit>, EvidenceError> {
        if encoder.model_id() != self.model_id {
            return Err(EvidenceError::ModelMismatch {
                index: self.model_id.clone(),
                encoder: encoder.model_id().to_owned(),
            });
        }
        let query = encoder.embed(&[text])?;
        self.search(&query[0], k)
    }

    /// Whether this index was built from the corpus and model named.
    pub fn is_current(&self, fingerprint: &str, model_id: &str) -> bool {
        self.fingerprint == fingerprint && self.model_id == model_id
    }

    /// The corpus fingerprint given at build.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The model id of the encoder used at build.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of articles.
    pub fn len(&self) -> usize {
        self.pmids.len()
    }

    /// Whether the index holds no article.
    pub fn is_empty(&self) -> bool {
        self.pmids.is_empty()
    }

    /// The PMIDs, in index order.
    pub fn pmids(&self) -> &[u64] {
        &self.pmids
    }

    /// The serialized index (see the module docs); encrypt it before it is
    /// stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        let titles: usize = self.titles.iter().map(|t| 10 + t.len()).sum();
        let mut out = Vec::with_capacity(64 + titles + self.matrix.len() * 4 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(self.pmids.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.limit.unwrap_or(u64::MAX).to_le_bytes());
        for s in [&self.fingerprint, &self.model_id] {
            let s = cut(s, MAX_ID_BYTES);
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        for (pmid, title) in self.pmids.iter().zip(&self.titles) {
            let title = cut(title, MAX_TITLE_BYTES);
            out.extend_from_slice(&pmid.to_le_bytes());
            out.extend_from_slice(&(title.len() as u16).to_le_bytes());
            out.extend_from_slice(title.as_bytes());
        }
        for x in &self.matrix {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &out);
        out.extend_from_slice(digest.as_ref());
        out
    }

    /// Reads an index written by [`EvidenceIndex::to_bytes`], checking the
    /// checksum, every bound and every row.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EvidenceError> {
        Ok(Self::parse(bytes)?)
    }

    fn parse(bytes: &[u8]) -> Result<Self, IndexFormatError> {
        const FIXED: usize = 8 + 4 + 4 + 8 + 8 + 2 + 2;
        if bytes.len() < FIXED + 32 {
            return Err(IndexFormatError::TooShort);
        }
        if &bytes[..8] != MAGIC {
            return Err(IndexFormatError::BadMagic);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != VERSION {
            return Err(IndexFormatError::UnsupportedVersion(version));
        }
        if aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref() != sum {
            return Err(IndexFormatError::Checksum);
        }
        let mut r = Cursor { rest: &body[12..] };
        let dim = r.u32("dim")? as usize;
        if dim == 0 || dim > MAX_DIM {
            return Err(IndexFormatError::Bounds { field: "dim", value: dim as u64 });
        }
        let count = r.u64("count")?;
        // Each article takes at least 10 bytes of record and 4·dim of matrix.
        if count > MAX_ARTICLES || count.saturating_mul(10 + 4 * dim as u64) > r.rest.len() as u64 {
            return Err(IndexFormatError::Bounds { field: "count", value: count });
        }
        let count = count as usize;
        let limit = match r.u64("limit")? {
            u64::MAX => None,
            l => Some(l),
        };
        let fingerprint = r.string("fingerprint", MAX_ID_BYTES)?;
        let model_id = r.string("model id", MAX_ID_BYTES)?;
        let mut pmids = Vec::with_capacity(count);
        let mut titles = Vec::with_capacity(count);
        for _ in 0..count {
            pmids.push(r.u64("pmid")?);
            titles.push(r.string("title", MAX_TITLE_BYTES)?);
        }
        let floats = r.take("matrix", count * dim * 4)?;
        let matrix: Vec<f32> = floats.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if !r.rest.is_empty() {
            return Err(IndexFormatError::TrailingBytes(r.rest.len()));
        }
        for (i, row) in matrix.chunks_exact(dim).enumerate() {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !norm.is_finite() || (norm - 1.0).abs() > NORM_TOLERANCE {
                return Err(IndexFormatError::BadRow(i));
            }
        }
        Ok(EvidenceIndex { fingerprint, model_id, limit, dim, pmids, titles, matrix })
    }
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], IndexFormatError> {
        if self.rest.len() < n {
            return Err(IndexFormatError::Truncated { field });
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, IndexFormatError> {
        let b = self.take(field, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, IndexFormatError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, IndexFormatError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(field, 8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, field: &'static str, max: usize) -> Result<String, IndexFormatError> {
        let len = self.u16(field)? as usize;
        if len > max {
            return Err(IndexFormatError::Bounds { field, value: len as u64 });
        }
        let b = self.take(field, len)?;
        String::from_utf8(b.to_vec()).map_err(|_| IndexFormatError::Utf8 { field })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unit(dim: usize, seed: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|j| ((seed * 31 + j * 7) % 13) as f32 - 6.0).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn sample(n: usize, dim: usize) -> EvidenceIndex {
        EvidenceIndex {
            fingerprint: "sha256:00".into(),
            model_id: "sha256:11".into(),
            limit: Some(300),
            dim,
            pmids: (0..n as u64).map(|i| 1000 + i).collect(),
            titles: (0..n).map(|i| format!("Title ü {i}")).collect(),
            matrix: (0..n).flat_map(|i| unit(dim, i)).collect(),
        }
    }

    #[test]
    fn round_trips_bit_exact() {
        for n in [0, 1, 5] {
            let idx = sample(n, 6);
            let bytes = idx.to_bytes();
            let back = EvidenceIndex::from_bytes(&bytes).unwrap();
            assert_eq!(back, idx);
            assert_eq!(back.to_bytes(), bytes);
        }
    }

    #[test]
    fn search_ranks_by_cosine_and_checks_the_dimension() {
        let idx = sample(20, 6);
        let hits = idx.search(&unit(6, 7), 3).unwrap();
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].pmid, 1007);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(idx.search(&unit(6, 7), 100).unwrap().len(), 20);
        assert!(idx.search(&unit(6, 7), 0).unwrap().is_empty());
        assert!(matches!(idx.search(&[1.0], 3), Err(EvidenceError::DimMismatch { .. })));
    }

    #[test]
    fn format_errors_are_specific() {
        let bytes = sample(3, 4).to_bytes();
        let err = |b: &[u8]| match EvidenceIndex::parse(b) {
            Err(e) => e,
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(err(&bytes[..10]), IndexFormatError::TooShort);
        let mut b = bytes.clone();
        b[0] ^= 1;
        assert_eq!(err(&b), IndexFormatError::BadMagic);
        let mut b = bytes.clone();
        b[8] = 2;
        assert_eq!(err(&b), IndexFormatError::UnsupportedVersion(2));
        let mut b = bytes.clone();
        b[20] ^= 1;
        assert_eq!(err(&b), IndexFormatError::Checksum);
        // A huge count with a valid checksum is refused before allocating.
        let mut b = bytes[..bytes.len() - 32].to_vec();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let sum = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &b);
        b.extend_from_slice(sum.as_ref());
        assert!(matches!(err(&b), IndexFormatError::Bounds { field: "count", .. }));
        // A row that is not a unit vector.
        let mut idx = sample(3, 4);
        idx.matrix[5] = 3.0;
        assert_eq!(err(&idx.to_bytes()), IndexFormatError::BadRow(1));
        idx.matrix[5] = f32::NAN;
        assert_eq!(err(&idx.to_bytes()), IndexFormatError::BadRow(1));
    }

    proptest! {
        /// Any single-byte change anywhere is detected, never a panic.
        #[test]
        fn any_single_byte_change_is_detected(pos in 0usize..10_000, xor in 1u8..=255) {
            let bytes = sample(4, 5).to_bytes();
            let mut b = bytes.clone();
            let pos = pos % b.len();
            b[pos] ^= xor;
            prop_assert!(EvidenceIndex::from_bytes(&b).is_err());
        }

        /// Arbitrary bytes are rejected without a panic.
        #[test]
        fn garbage_is_rejected(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(EvidenceIndex::from_bytes(&b).is_err());
        }
    }

    #[test]
    fn fingerprint_follows_bytes_model_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.xml");
        std::fs::write(&a, b"<x/>").unwrap();
        let files = vec![a.clone()];
        let f1 = fingerprint_corpus(&files, "m", None).unwrap();
        assert_eq!(f1, fingerprint_corpus(&files, "m", None).unwrap());
        assert_ne!(f1, fingerprint_corpus(&files, "n", None).unwrap());
        assert_ne!(f1, fingerprint_corpus(&files, "m", Some(3)).unwrap());
        std::fs::write(&a, b"<y/>").unwrap();
        assert_ne!(f1, fingerprint_corpus(&files, "m", None).unwrap());
        assert!(f1.starts_with("sha256:") && f1.len() == 7 + 64);
    }

    #[test]
    fn article_text_joins_title_and_abstract() {
        let a = Article { pmid: 1, title: "A title.".into(), abstract_text: "Body.".into(), year: None, journal: None };
        assert_eq!(article_text(&a), "A title. Body.");
    }
}
