//! VCF 4.0–4.5 bodies: bounded line by line, then parsed with `noodles`.

use noodles::vcf;

use super::{
    check_against, check_bases, check_contig_name, Checked, InputError, Source, MAX_BODY_BYTES, MAX_HEADER_LINES,
    MAX_LINE_BYTES, MAX_RECORDS, MAX_VARIANTS,
};
use crate::consequence::Variant;
use crate::genome::Genome;

/// Parses and checks a VCF body against `genome`: one [`Checked`] per ALT
/// allele, in file order. Records whose ALT is `.` (no variant) give
/// nothing. The first problem refuses the whole body.
pub fn parse_vcf(body: &[u8], genome: &Genome) -> Result<Vec<Checked>, InputError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(InputError::too_large("body", format!("is larger than {MAX_BODY_BYTES} bytes")));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        InputError::bad(Some(Source::Line(line)), "body", "is not UTF-8")
    })?;
    // Bounds and line structure first, before noodles sees anything.
    let mut header_lines = 0usize;
    let mut records = 0usize;
    let mut saw_columns = false;
    let total_lines = text.split('\n').count();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            return Err(InputError::too_large("line", format!("line {n} is longer than {MAX_LINE_BYTES} bytes")));
        }
        if line.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err(InputError::bad(Some(Source::Line(n)), "line", "holds a control character"));
        }
        if line.starts_with('#') {
            if saw_columns {
                return Err(InputError::bad(Some(Source::Line(n)), "header", "a header line after the #CHROM line"));
            }
            header_lines += 1;
            if header_lines > MAX_HEADER_LINES {
                return Err(InputError::too_large("header", format!("has more than {MAX_HEADER_LINES} lines")));
            }
            if i == 0 {
                check_fileformat(line)?;
            }
            saw_columns = line.starts_with("#CHROM");
        } else if !line.is_empty() {
            if !saw_columns {
                let why =
                    if i == 0 { "must start with ##fileformat=VCFv4.x" } else { "a record before the #CHROM line" };
                return Err(InputError::bad(Some(Source::Line(n)), "header", why));
            }
            records += 1;
            if records > MAX_RECORDS {
                return Err(InputError::too_large("body", format!("has more than {MAX_RECORDS} records")));
            }
        } else if i == 0 {
            return Err(InputError::bad(Some(Source::Line(1)), "header", "must start with ##fileformat=VCFv4.x"));
        } else if n < total_lines {
            // Only the text after the last newline may be empty.
            return Err(InputError::bad(Some(Source::Line(n)), "line", "is blank"));
        }
    }
    if !saw_columns {
        return Err(InputError::bad(None, "header", "has no #CHROM line"));
    }

    let mut reader = vcf::io::Reader::new(text.as_bytes());
    let header = reader
        .read_header()
        .map_err(|e| InputError::bad(None, "header", format!("is not a valid VCF header: {}", clip(&e.to_string()))))?;
    let mut out = Vec::new();
    let mut record = vcf::Record::default();
    let mut line_no = header_lines;
    loop {
        let read = reader.read_record(&mut record);
        line_no += 1;
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(InputError::bad(Some(Source::Line(line_no)), "record", clip(&e.to_string())));
            }
        }
        // One record per line: the scan above refused blank lines.
        check_record(&header, &record, line_no, genome, &mut out)?;
        if out.len() > MAX_VARIANTS {
            return Err(InputError::too_large("body", format!("has more than {MAX_VARIANTS} ALT alleles")));
        }
    }
    Ok(out)
}

fn check_fileformat(line: &str) -> Result<(), InputError> {
    let Some(v) = line.strip_prefix("##fileformat=VCFv4.") else {
        return Err(InputError::bad(Some(Source::Line(1)), "header", "must start with ##fileformat=VCFv4.x"));
    };
    if !matches!(v, "0" | "1" | "2" | "3" | "4" | "5") {
        return Err(InputError::bad(Some(Source::Line(1)), "header", "VCF versions 4.0 to 4.5 are accepted"));
    }
    Ok(())
}

fn check_record(
    _header: &vcf::Header,
    record: &vcf::Record,
    line: usize,
    genome: &Genome,
    out: &mut Vec<Checked>,
) -> Result<(), InputError> {
    let src = Some(Source::Line(line));
    let chrom = record.reference_sequence_name();
    check_contig_name(chrom, src, "CHROM")?;
    let pos = match record.variant_start() {
        Some(Ok(p)) => usize::from(p) as u64,
        Some(Err(_)) => return Err(InputError::bad(src, "POS", "is not a positive integer")),
        None => return Err(InputError::bad(src, "POS", "is missing")),
    };
    let reference = check_bases(record.reference_bases(), src, "REF", true)?;
    let alts = record.alternate_bases();
    let raw: &str = alts.as_ref();
    // `.` (no variant at this site): noodles gives it as empty.
    if raw == "." || raw.is_empty() {
        return Ok(());
    }
    for alt in raw.split(',') {
        if alt == "*" || alt.starts_with('<') || alt.contains('[') || alt.contains(']') || alt.starts_with('.') {
            return Err(InputError::bad(
                src,
                "ALT",
                "symbolic, breakend and spanning-deletion alleles are not supported; give the bases",
            ));
        }
        let alt = check_bases(alt, src, "ALT", false)?;
        if alt == reference {
            return Err(InputError::bad(src, "ALT", "equals REF"));
        }
        let v = Variant { contig: chrom.to_owned(), pos, reference: reference.clone(), alternate: alt };
        let variant = check_against(genome, v, src)?;
        out.push(Checked { source: Source::Line(line), variant, described: None });
    }
    Ok(())
}

/// Keeps a parser's message short and free of control characters.
fn clip(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(160).collect();
    s
}
