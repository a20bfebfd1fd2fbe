//! A streaming parser of NLM PubMed baseline XML (`pubmedNNnXXXX.xml.gz`).
//!
//! Yields one [`Article`] per `PubmedArticle` that has an abstract, holding
//! one event of XML at a time. `DeleteCitation` lists and book records
//! (`PubmedBookArticle`) are skipped. Element paths follow the NLM DTD
//! (`pubmed_190101.dtd`): `MedlineCitation/PMID`, `Article/ArticleTitle`,
//! `Article/Abstract/AbstractText` (one or more, optionally `Label`ed),
//! `Article/Journal/Title`, `Journal/JournalIssue/PubDate/Year` or
//! `MedlineDate`.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::EvidenceError;

/// Largest text (title, abstract, journal) one record may hold, in bytes.
/// The longest PubMed abstracts are around 20 KB.
pub const MAX_RECORD_TEXT_BYTES: usize = 128 * 1024;
/// Largest single XML event (a tag, or a run of text between tags), in bytes,
/// give or take one read buffer (64 KiB from [`parse_path`]).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Deepest element nesting accepted (PubMed uses about 10).
pub const MAX_DEPTH: usize = 64;
/// Bytes kept of a journal title, year or PMID field.
const MAX_SMALL_FIELD_BYTES: usize = 1024;

/// One PubMed citation with an abstract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Article {
    /// PubMed identifier.
    pub pmid: u64,
    /// `ArticleTitle`, whitespace collapsed.
    pub title: String,
    /// `AbstractText` sections, each `LABEL: text` where labelled, joined by
    /// a space, whitespace collapsed.
    pub abstract_text: String,
    /// Publication year of the journal issue.
    pub year: Option<u16>,
    /// Journal title.
    pub journal: Option<String>,
}

/// A structural problem in PubMed XML.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatProblem {
    /// One tag or text run is over [`MAX_EVENT_BYTES`].
    EventTooLarge,
    /// Elements nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The document ends inside an element.
    Truncated,
    /// A `PubmedArticle` without a numeric `MedlineCitation/PMID`.
    BadPmid,
}

impl fmt::Display for FormatProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatProblem::EventTooLarge => "an XML tag or text run is too large",
            FormatProblem::TooDeep => "elements nest too deep",
            FormatProblem::Truncated => "the document ends inside an element",
            FormatProblem::BadPmid => "a PubmedArticle without a numeric PMID",
        })
    }
}

/// Parses PubMed XML from `reader`, streaming.
pub fn parse<R: BufRead>(reader: R) -> Articles<R> {
    let mut reader = Reader::from_reader(Bounded { inner: reader, since_event: 0 });
    reader.config_mut().check_end_names = true;
    Articles { reader, buf: Vec::with_capacity(8 * 1024), stack: Vec::new(), record: None, done: false }
}

/// Opens a PubMed file, gzip-compressed (by its magic bytes) or plain XML.
pub fn parse_path(path: impl AsRef<Path>) -> Result<Articles<Box<dyn BufRead + Send>>, EvidenceError> {
    let path = path.as_ref();
    let io_err = |source| EvidenceError::Io { path: path.to_owned(), source };
    let mut file = BufReader::with_capacity(64 * 1024, File::open(path).map_err(io_err)?);
    let gz = file.fill_buf().map_err(io_err)?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead + Send> =
        if gz { Box::new(BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(file))) } else { Box::new(file) };
    Ok(parse(reader))
}

/// Elements whose position matters; the rest are `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    PubmedArticle,
    MedlineCitation,
    Pmid,
    Article,
    ArticleTitle,
    Abstract,
    AbstractText,
    Journal,
    Title,
    JournalIssue,
    PubDate,
    Year,
    MedlineDate,
    Other,
}

impl Tag {
    fn of(name: &[u8]) -> Tag {
        match name {
            b"PubmedArticle" => Tag::PubmedArticle,
            b"MedlineCitation" => Tag::MedlineCitation,
            b"PMID" => Tag::Pmid,
            b"Article" => Tag::Article,
            b"ArticleTitle" => Tag::ArticleTitle,
            b"Abstract" => Tag::Abstract,
            b"AbstractText" => Tag::AbstractText,
            b"Journal" => Tag::Journal,
            b"Title" => Tag::Title,
            b"JournalIssue" => Tag::JournalIssue,
            b"PubDate" => Tag::PubDate,
            b"Year" => Tag::Year,
            b"MedlineDate" => Tag::MedlineDate,
            _ => Tag::Other,
        }
    }
}

/// Paths (root first) whose text is captured, and into which field.
const FIELDS: [(&[Tag], Field); 6] = [
    (&[Tag::PubmedArticle, Tag::MedlineCitation, Tag::Pmid], Field::Pmid),
    (&[Tag::MedlineCitation, Tag::Article, Tag::ArticleTitle], Field::Title),
    (&[Tag::Article, Tag::Abstract, Tag::AbstractText], Field::Abstract),
    (&[Tag::Article, Tag::Journal, Tag::Title], Field::Journal),
    (&[Tag::JournalIssue, Tag::PubDate, Tag::Year], Field::Year),
    (&[Tag::JournalIssue, Tag::PubDate, Tag::MedlineDate], Field::Year),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Pmid,
    Title,
    Abstract,
    Journal,
    Year,
}

#[derive(Default)]
struct Record {
    pmid: String,
    title: String,
    abstract_text: String,
    journal: String,
    year: String,
    /// The field being captured and the depth of its element.
    capturing: Option<(Field, usize)>,
    /// Text bytes seen so far.
    text_bytes: usize,
    too_large: bool,
    seen_pmid: bool,
}

impl Record {
    fn push(&mut self, s: &str) {
        let Some((field, _)) = self.capturing else {
            return;
        };
        self.text_bytes += s.len();
        if self.text_bytes > MAX_RECORD_TEXT_BYTES {
            self.too_large = true;
        }
        if self.too_large {
            return;
        }
        let (dst, cap) = match field {
            Field::Pmid => (&mut self.pmid, MAX_SMALL_FIELD_BYTES),
            Field::Title => (&mut self.title, MAX_RECORD_TEXT_BYTES),
            Field::Abstract => (&mut self.abstract_text, MAX_RECORD_TEXT_BYTES),
            Field::Journal => (&mut self.journal, MAX_SMALL_FIELD_BYTES),
            Field::Year => (&mut self.year, MAX_SMALL_FIELD_BYTES),
        };
        if dst.len() + s.len() <= cap {
            dst.push_str(s);
        }
    }

    fn finish(self) -> Option<Result<Article, FormatProblem>> {
        let pmid = match self.pmid.trim().parse::<u64>() {
            Ok(p) => p,
            Err(_) => return Some(Err(FormatProblem::BadPmid)),
        };
        let abstract_text = collapse(&self.abstract_text);
        if abstract_text.is_empty() {
            return None;
        }
        let year = self.year.trim().get(..4).and_then(|y| y.parse::<u16>().ok());
        let journal = collapse(&self.journal);
        Some(Ok(Article {
            pmid,
            title: collapse(&self.title),
            abstract_text,
            year,
            journal: (!journal.is_empty()).then_some(journal),
        }))
    }
}

/// Collapses whitespace runs to one space and trims.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Iterator over the [`Article`]s of a PubMed XML document; see [`parse`].
///
/// After an XML error it yields that error and then ends. A record over
/// [`MAX_RECORD_TEXT_BYTES`] yields [`EvidenceError::RecordTooLarge`] and
/// parsing goes on with the next record.
pub struct Articles<R> {
    reader: Reader<Bounded<R>>,
    buf: Vec<u8>,
    stack: Vec<Tag>,
    record: Option<Record>,
    done: bool,
}

impl<R> fmt::Debug for Articles<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Articles")
            .field("position", &self.reader.buffer_position())
            .field("depth", &self.stack.len())
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> Articles<R> {
    fn fail(&mut self, problem: FormatProblem) -> Option<Result<Article, EvidenceError>> {
        self.done = true;
        Some(Err(EvidenceError::PubmedFormat { position: self.reader.buffer_position(), problem }))
    }

    /// Opens an element (a function of the fields, not `self`, because the
    /// event still borrows the read buffer).
    fn start(stack: &mut Vec<Tag>, record: &mut Option<Record>, e: &BytesStart<'_>) {
        let tag = Tag::of(e.local_name().as_ref());
        stack.push(tag);
        if tag == Tag::PubmedArticle && stack.len() <= 2 {
            *record = Some(Record::default());
        }
        let Some(record) = record.as_mut() else {
            return;
        };
        if record.capturing.is_some() {
            return;
        }
        let Some(&(_, field)) = FIELDS.iter().find(|(path, _)| stack.ends_with(path)) else {
            return;
        };
        if field == Field::Pmid && record.seen_pmid {
            return;
        }
        record.capturing = Some((field, stack.len()));
        if field == Field::Abstract {
            if !record.abstract_text.is_empty() {
                record.push(" ");
            }
            if let Ok(Some(label)) = e.try_get_attribute("Label") {
                if let Ok(label) = label.unescape_value() {
                    let label = label.trim().to_owned();
                    // NLM marks a lone unlabelled section "UNLABELLED".
                    if !label.is_empty() && label != "UNLABELLED" {
                        record.push(&label);
                        record.push(": ");
                    }
                }
            }
        }
    }

    /// Closes an element; returns a finished record.
    fn end(&mut self) -> Option<Result<Article, EvidenceError>> {
        let depth = self.stack.len();
        let tag = self.stack.pop()?;
        let record = self.record.as_mut()?;
        if let Some((field, at)) = record.capturing {
            if at == depth {
                record.capturing = None;
                if field == Field::Pmid {
                    record.seen_pmid = true;
                }
            }
        }
        if tag != Tag::PubmedArticle {
            return None;
        }
        let record = self.record.take()?;
        if record.too_large {
            let pmid = record.pmid.trim().parse().unwrap_or(0);
            return Some(Err(EvidenceError::RecordTooLarge { pmid, max: MAX_RECORD_TEXT_BYTES }));
        }
        match record.finish()? {
            Ok(article) => Some(Ok(article)),
            Err(problem) => self.fail(problem),
        }
    }

    fn xml_error(&mut self, source: quick_xml::Error) -> Option<Result<Article, EvidenceError>> {
        if self.reader.get_ref().since_event > MAX_EVENT_BYTES {
            return self.fail(FormatProblem::EventTooLarge);
        }
        self.done = true;
        Some(Err(EvidenceError::Xml { position: self.reader.error_position(), source }))
    }
}

impl<R: BufRead> Iterator for Articles<R> {
    type Item = Result<Article, EvidenceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            self.reader.get_mut().since_event = 0;
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => return self.xml_error(e),
            };
            match event {
                Event::Start(e) => {
                    if self.stack.len() >= MAX_DEPTH {
                        return self.fail(FormatProblem::TooDeep);
                    }
                    Self::start(&mut self.stack, &mut self.record, &e);
                }
                Event::End(_) => {
                    if let Some(item) = self.end() {
                        return Some(item);
                    }
                }
                Event::Text(t) => {
                    if let Some(r) = self.record.as_mut().filter(|r| r.capturing.is_some()) {
                        match t.xml_content() {
                            Ok(s) => r.push(&s),
                            Err(e) => return self.xml_error(e.into()),
                        }
                    }
                }
                Event::CData(t) => {
                    if let Some(r) = self.record.as_mut().filter(|r| r.capturing.is_some()) {
                        match t.decode() {
                            Ok(s) => r.push(&s),
                            Err(e) => return self.xml_error(e.into()),
                        }
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(c) => c.map(String::from),
                            Err(e) => return self.xml_error(e),
                        }
                    } else {
                        match r.decode() {
                            Ok(name) => quick_xml::escape::resolve_predefined_entity(&name).map(String::from),
                            Err(e) => return self.xml_error(e.into()),
                        }
                    };
                    // An undeclared entity (none in PubMed) is dropped.
                    if let (Some(s), Some(rec)) = (resolved, self.record.as_mut()) {
                        rec.push(&s);
                    }
                }
                Event::Eof => {
                    if !self.stack.is_empty() {
                        return self.fail(FormatProblem::Truncated);
                    }
                    self.done = true;
                }
                Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        None
    }
}

impl<R: BufRead> std::iter::FusedIterator for Articles<R> {}

/// A `BufRead` that refuses to hand out more than [`MAX_EVENT_BYTES`]
/// between two resets (one per XML event), bounding quick-xml's event buffer.
struct Bounded<R> {
    inner: R,
    since_event: usize,
}

impl<R: BufRead> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.inner.fill_buf()?[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Bounded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since_event > MAX_EVENT_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "XML event over MAX_EVENT_BYTES"));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.since_event = self.since_event.saturating_add(amt);
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(xml: &str) -> Vec<Result<Article, EvidenceError>> {
        // A small buffer, so that events span many reads as with a file.
        parse(io::BufReader::with_capacity(4096, xml.as_bytes())).collect()
    }

    fn ok(xml: &str) -> Vec<Article> {
        all(xml).into_iter().map(Result::unwrap).collect()
    }

    fn article(pmid: u64, inner: &str) -> String {
        format!(
            "<PubmedArticle><MedlineCitation><PMID Version=\"1\">{pmid}</PMID><Article>\
             <Journal><JournalIssue><PubDate><Year>1999</Year></PubDate></JournalIssue>\
             <Title>J Test</Title></Journal>{inner}</Article>\
             <CommentsCorrectionsList><CommentsCorrections><PMID>999</PMID></CommentsCorrections>\
             </CommentsCorrectionsList></MedlineCitation></PubmedArticle>"
        )
    }

    fn set(articles: &[String]) -> String {
        format!("<?xml version=\"1.0\"?>\n<PubmedArticleSet>{}</PubmedArticleSet>", articles.concat())
    }

    #[test]
    fn reads_the_fields_and_skips_records_without_abstract() {
        let xml = set(&[
            article(
                1,
                "<ArticleTitle>A title.</ArticleTitle><Abstract><AbstractText>Body\n  text.</AbstractText></Abstract>",
            ),
            article(2, "<ArticleTitle>No abstract</ArticleTitle>"),
            article(3, "<ArticleTitle>Empty</ArticleTitle><Abstract><AbstractText/></Abstract>"),
        ]);
        let got = ok(&xml);
        assert_eq!(
            got,
            vec![Article {
                pmid: 1,
                title: "A title.".into(),
                abstract_text: "Body text.".into(),
                year: Some(1999),
                journal: Some("J Test".into()),
            }]
        );
    }

    #[test]
    fn labelled_sections_markup_and_entities() {
        let xml = set(&[article(
            7,
            "<ArticleTitle>Role of <i>BRCA1</i> in 10<sup>-6</sup> &amp; &#x3b1;-cells</ArticleTitle>\
             <Abstract><AbstractText Label=\"BACKGROUND\" NlmCategory=\"BACKGROUND\">We &lt;b&gt; <b>studied</b> it.</AbstractText>\
             <AbstractText Label=\"RESULTS\">It &#945; works.</AbstractText><CopyrightInformation>(c) X</CopyrightInformation></Abstract>\
             <OtherAbstract><AbstractText>Other</AbstractText></OtherAbstract>",
        )]);
        let got = ok(&xml);
        assert_eq!(got[0].title, "Role of BRCA1 in 10-6 & α-cells");
        assert_eq!(got[0].abstract_text, "BACKGROUND: We <b> studied it. RESULTS: It α works.");
    }

    #[test]
    fn medline_date_gives_the_year_and_delete_citations_are_ignored() {
        let inner = "<ArticleTitle>T</ArticleTitle><Abstract><AbstractText>A</AbstractText></Abstract>";
        let xml = set(&[article(5, inner).replace("<Year>1999</Year>", "<MedlineDate>1979 Jun-Jul</MedlineDate>")])
            .replace(
                "</PubmedArticleSet>",
                "<DeleteCitation><PMID Version=\"1\">42</PMID></DeleteCitation></PubmedArticleSet>",
            );
        let got = ok(&xml);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].pmid, got[0].year), (5, Some(1979)));
    }

    #[test]
    fn malformed_xml_is_an_error_with_a_position_and_ends_the_stream() {
        let good = article(1, "<ArticleTitle>T</ArticleTitle><Abstract><AbstractText>A</AbstractText></Abstract>");
        let xml = format!("<PubmedArticleSet>{good}<PubmedArticle><MedlineCitation></Article>");
        let got = all(&xml);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        match &got[1] {
            Err(EvidenceError::Xml { position, .. }) => assert!(*position > good.len() as u64),
            other => panic!("{other:?}"),
        }
        let truncated = format!("<PubmedArticleSet>{good}<PubmedArticle>");
        assert!(matches!(
            all(&truncated).last(),
            Some(Err(EvidenceError::PubmedFormat { problem: FormatProblem::Truncated, .. }))
        ));
        let bad_pmid = set(&[article(1, "<Abstract><AbstractText>A</AbstractText></Abstract>")])
            .replace(">1</PMID>", ">x1</PMID>");
        assert!(matches!(
            all(&bad_pmid)[..],
            [Err(EvidenceError::PubmedFormat { problem: FormatProblem::BadPmid, .. })]
        ));
    }

    #[test]
    fn bounds_depth_event_size_and_record_size() {
        let deep = format!("<a>{}", "<b>".repeat(MAX_DEPTH + 1));
        assert!(matches!(all(&deep)[..], [Err(EvidenceError::PubmedFormat { problem: FormatProblem::TooDeep, .. })]));
        let huge_text = format!("<PubmedArticleSet>{}</PubmedArticleSet>", "x".repeat(MAX_EVENT_BYTES + 10_000));
        let got = all(&huge_text);
        assert!(got.len() == 1, "{got:?}");
        assert!(matches!(
            all(&huge_text)[..],
            [Err(EvidenceError::PubmedFormat { problem: FormatProblem::EventTooLarge, .. })]
        ));
        let big = "word ".repeat(MAX_RECORD_TEXT_BYTES / 5 + 10);
        let xml = set(&[
            article(8, &format!("<Abstract><AbstractText>{big}</AbstractText></Abstract>")),
            article(9, "<Abstract><AbstractText>fine</AbstractText></Abstract>"),
        ]);
        let got = all(&xml);
        assert!(matches!(got[0], Err(EvidenceError::RecordTooLarge { pmid: 8, .. })));
        assert_eq!(got[1].as_ref().unwrap().pmid, 9, "parsing goes on after an oversized record");
    }

    #[test]
    fn parse_path_reads_gzip_and_plain() {
        use std::io::Write;
        let xml = set(&[article(11, "<Abstract><AbstractText>A</AbstractText></Abstract>")]);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.xml");
        std::fs::write(&plain, &xml).unwrap();
        let gz = dir.path().join("a.xml.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(xml.as_bytes()).unwrap();
        enc.finish().unwrap();
        for p in [plain, gz] {
            let got: Vec<_> = parse_path(&p).unwrap().map(Result::unwrap).collect();
            assert_eq!(got[0].pmid, 11);
        }
        assert!(matches!(parse_path(dir.path().join("none")), Err(EvidenceError::Io { .. })));
    }
}
