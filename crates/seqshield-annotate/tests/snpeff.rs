//! Outside judge: SnpEff 5.1 (Debian `snpeff`) run fully offline on a
//! database built from the same GenBank file, compared with our
//! consequences on a planted, seeded variant set.
//!
//! How SnpEff is run (no network; the Debian `snpEff` wrapper is bypassed
//! because it copies a config into `~/.snpEff` and echoes its arguments to
//! stdout):
//!
//! ```text
//! java -Xmx1g -jar /usr/share/java/snpeff.jar build -genbank -noLog -c DIR/snpEff.config G
//! java -Xmx1g -jar /usr/share/java/snpeff.jar ann -noLog -noStats -c DIR/snpEff.config G DIR/in.vcf
//! ```
//!
//! `-noLog` turns off SnpEff's usage report and version check (its only
//! network use); the database comes from `DIR/data/G/genes.gbk`, never
//! `snpEff download`. The config holds `data.dir`, the `codon.*` tables
//! copied from `/etc/snpeff/snpEff.config`, and
//! `G.CHROM.codonTable : Bacterial_and_Plant_Plastid` for `/transl_table=11`.
//! The one change to the GenBank copy: the `VERSION` line loses its
//! `GI:` part, or SnpEff names the chromosome `NC_005816.1  GI:45478711`.
//!
//! Compared per variant and per gene (SnpEff's Gene_ID is the locus tag):
//! the consequence term after mapping SnpEff's names onto ours
//! (`intergenic_region` = `intergenic_variant`, `initiator_codon_variant`
//! = `start_retained_variant`, `conservative_`/`disruptive_inframe_*` =
//! `inframe_*`, `splice_region_variant` ignored beside another term), and
//! HGVS c./p. where both give one (`p.Leu5Leu` = `p.Leu5=`).
//!
//! Known, explained differences are listed with their category when the
//! test runs (`cargo test -p seqshield-annotate --test snpeff -- --nocapture`).
//!
//! Where Java or SnpEff is missing the test fails when `CI` is set and is
//! skipped (with a message) otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use seqshield_annotate::consequence::{annotate, Variant};
use seqshield_annotate::genome::Genome;

const TESTS: &str = "/usr/share/doc/python-biopython-doc/Tests";
const JAR: &str = "/usr/share/java/snpeff.jar";
const SYSTEM_CONFIG: &str = "/etc/snpeff/snpEff.config";
/// Least share of (variant, gene) pairs whose consequence must agree.
const MIN_AGREEMENT: f64 = 0.99;

/// SplitMix64: a small, seeded, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn base_other_than(&mut self, b: u8) -> u8 {
        let others: Vec<u8> = b"ACGT".iter().copied().filter(|&x| x != b).collect();
        others[self.below(3) as usize]
    }
    fn bases(&mut self, n: u64) -> String {
        (0..n).map(|_| b"ACGT"[self.below(4) as usize] as char).collect()
    }
}

fn snpeff_ready() -> bool {
    let java = Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success());
    let ok = java && Path::new(JAR).exists() && Path::new(SYSTEM_CONFIG).exists();
    if !ok {
        let msg = format!("SnpEff judge needs `java`, {JAR} and {SYSTEM_CONFIG} (Debian package snpeff)");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}: missing in CI");
        }
        eprintln!("skipping: {msg}");
    }
    ok
}

/// Plants variants: per CDS, SNVs in the first and last codon, random
/// exonic SNVs, a small insertion and deletion, and SNVs around each
/// intron edge; plus random SNVs anywhere.
fn plant(genome: &Genome, seed: u64, per_cds: u64, random: u64) -> Vec<Variant> {
    let mut rng = Rng(seed);
    let (contig, len) = genome.contigs().next().map(|(n, l)| (n.to_owned(), l)).unwrap();
    let seq = genome.sequence(&contig, 0, len).unwrap().to_vec();
    let mut at: BTreeMap<u64, Variant> = BTreeMap::new();
    let mut sites: Vec<u64> = Vec::new();
    let snv = |rng: &mut Rng, at: &mut BTreeMap<u64, Variant>, pos0: u64| {
        if pos0 >= len || !b"ACGT".contains(&seq[pos0 as usize]) {
            return;
        }
        let r = seq[pos0 as usize];
        at.entry(pos0 + 1).or_insert(Variant {
            contig: contig.clone(),
            pos: pos0 + 1,
            reference: (r as char).to_string(),
            alternate: (rng.base_other_than(r) as char).to_string(),
        });
    };
    for cds in genome.cds() {
        let exonic: Vec<u64> = cds.exons.iter().flat_map(|&(s, e)| s..e).collect();
        let n = exonic.len() as u64;
        if n < 6 {
            continue;
        }
        let coding = |i: u64| match cds.strand {
            seqshield_annotate::genome::Strand::Plus => exonic[i as usize],
            seqshield_annotate::genome::Strand::Minus => exonic[(n - 1 - i) as usize],
        };
        sites.push(coding(rng.below(3)));
        sites.push(coding(n - 1 - rng.below(3)));
        for _ in 0..per_cds {
            sites.push(coding(3 + rng.below(n - 6)));
        }
        for del in [false, true] {
            let l = 1 + rng.below(6);
            let p0 = coding(6 + rng.below(n.saturating_sub(20).max(1)));
            if p0 < 1 || p0 + l >= len {
                continue;
            }
            let anchor = p0 - 1;
            let (r, a) = if del {
                let r = String::from_utf8_lossy(&seq[anchor as usize..=(anchor + l) as usize]).into_owned();
                let a = (seq[anchor as usize] as char).to_string();
                (r, a)
            } else {
                let r = (seq[anchor as usize] as char).to_string();
                let a = format!("{r}{}", rng.bases(l));
                (r, a)
            };
            if r.bytes().all(|b| b"ACGT".contains(&b)) {
                at.entry(anchor + 1).or_insert(Variant {
                    contig: contig.clone(),
                    pos: anchor + 1,
                    reference: r,
                    alternate: a,
                });
            }
        }
        for w in cds.exons.windows(2) {
            let (prev, next) = (w[0], w[1]);
            let edges = match cds.strand {
                seqshield_annotate::genome::Strand::Plus if prev.1 < next.0 => [prev.1, next.0 - 1],
                seqshield_annotate::genome::Strand::Minus if next.1 < prev.0 => [prev.0 - 1, next.1],
                _ => continue,
            };
            for edge in edges {
                for d in [0i64, 1, 4, -1] {
                    let p = edge as i64 + if edge == edges[0] { d } else { -d };
                    if p >= 0 {
                        sites.push(p as u64);
                    }
                }
            }
        }
    }
    for _ in 0..random {
        sites.push(rng.below(len));
    }
    for p in sites {
        snv(&mut rng, &mut at, p);
    }
    at.into_values().collect()
}

fn write_vcf(path: &Path, contig: &str, len: u64, vs: &[Variant]) {
    let mut s = format!(
        "##fileformat=VCFv4.2\n##contig=<ID={contig},length={len}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    );
    for (i, v) in vs.iter().enumerate() {
        s.push_str(&format!("{}\t{}\tv{i}\t{}\t{}\t.\t.\t.\n", v.contig, v.pos, v.reference, v.alternate));
    }
    std::fs::write(path, s).unwrap();
}

fn gunzip(path: &Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut s).unwrap();
    s
}

fn java(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("java")
        .arg("-Xmx1g")
        .arg("-jar")
        .arg(JAR)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .expect("java runs");
    assert!(out.status.success(), "snpEff {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Per variant id, per gene key: SnpEff's terms and HGVS.
type Calls = BTreeMap<(usize, String), Call>;

#[derive(Debug, Default, Clone)]
struct Call {
    terms: BTreeSet<String>,
    primary: Option<String>,
    hgvs_c: BTreeSet<String>,
    hgvs_p: BTreeSet<String>,
}

fn norm_term(t: &str) -> &str {
    match t {
        "intergenic_region" => "intergenic_variant",
        "initiator_codon_variant" => "start_retained_variant",
        "conservative_inframe_insertion" | "disruptive_inframe_insertion" => "inframe_insertion",
        "conservative_inframe_deletion" | "disruptive_inframe_deletion" => "inframe_deletion",
        other => other,
    }
}

/// SnpEff's `c.` with the deleted or duplicated bases dropped
/// (`c.50dupT` -> `c.50dup`), as current HGVS writes it.
fn norm_c(c: &str) -> String {
    for op in ["del", "dup"] {
        if let Some(i) = c.rfind(op) {
            let tail = &c[i + 3..];
            if !tail.is_empty() && tail.bytes().all(|b| b"ACGTN".contains(&b)) && !c.contains("delins") {
                return c[..i + 3].to_owned();
            }
        }
    }
    c.to_owned()
}

fn norm_p(p: &str) -> String {
    // p.Val1? -> p.Met1?: HGVS names the initiator Met; SnpEff names the
    // reference codon's amino acid (GTG = Val) for alternative starts.
    if p.len() == 7 && p.starts_with("p.") && p.ends_with("1?") {
        return "p.Met1?".to_owned();
    }
    // p.Leu5Leu -> p.Leu5=
    let b = p.as_bytes();
    if p.len() >= 9
        && p.starts_with("p.")
        && b[2..5] == b[p.len() - 3..]
        && b[5..p.len() - 3].iter().all(u8::is_ascii_digit)
    {
        return format!("{}=", &p[..p.len() - 3]);
    }
    p.to_owned()
}

fn parse_snpeff(vcf: &str) -> Calls {
    let mut calls = Calls::new();
    for line in vcf.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let id: usize = cols[2].trim_start_matches('v').parse().unwrap();
        let Some(ann) = cols[7].split(';').find_map(|f| f.strip_prefix("ANN=")) else { continue };
        for entry in ann.split(',') {
            let f: Vec<&str> = entry.split('|').collect();
            let terms: Vec<&str> = f[1].split('&').map(norm_term).collect();
            let key = if terms.contains(&"intergenic_variant") { "intergenic".to_owned() } else { f[4].to_owned() };
            let call = calls.entry((id, key)).or_default();
            let kept: Vec<&str> = terms.iter().copied().filter(|t| *t != "splice_region_variant").collect();
            let kept = if kept.is_empty() { terms } else { kept };
            call.primary.get_or_insert_with(|| kept[0].to_owned());
            call.terms.extend(kept.iter().map(|t| t.to_string()));
            if !f[9].is_empty() {
                call.hgvs_c.insert(norm_c(f[9]));
            }
            if f.len() > 10 && !f[10].is_empty() {
                call.hgvs_p.insert(norm_p(f[10]));
            }
        }
    }
    calls
}

fn ours(genome: &Genome, vs: &[Variant]) -> Calls {
    let mut calls = Calls::new();
    for (id, v) in vs.iter().enumerate() {
        for e in annotate(genome, v).unwrap() {
            let key = match (&e.locus_tag, &e.gene) {
                (_, _) if e.gene.is_none() && e.locus_tag.is_none() => "intergenic".to_owned(),
                (Some(t), _) => t.clone(),
                (None, Some(g)) => g.clone(),
                (None, None) => unreachable!(),
            };
            let call = calls.entry((id, key)).or_default();
            call.terms.insert(e.consequence.as_str().to_owned());
            call.hgvs_c.extend(e.hgvs_c);
            call.hgvs_p.extend(e.hgvs_p);
        }
    }
    calls
}

struct Tally {
    pairs: usize,
    agree: usize,
    /// Pairs on a gene we skip on purpose (see [`explain`]), left out.
    excluded: usize,
    hgvs_pairs: usize,
    hgvs_agree: usize,
    lines: Vec<String>,
}

/// Why a disagreement is expected (or "UNEXPLAINED").
fn explain(genome: &Genome, v: &Variant, key: &str, ours: Option<&Call>, theirs: Option<&Call>) -> &'static str {
    let in_skipped = genome.skipped().iter().any(|s| s.span.is_some_and(|(a, b)| a < v.pos && v.pos <= b));
    if key == "intergenic" && in_skipped && theirs.is_none() {
        return "inside SnpEff's 71-kb rps12 (ArthCp047) transcript, so SnpEff reports no intergenic effect";
    }
    if genome.cds().filter(|c| c.locus_tag == Some(key)).count() > 1 {
        return "gene with several CDS features: SnpEff merges them into one gene";
    }
    let indel = v.reference.len() != v.alternate.len();
    let has = |c: Option<&Call>, t: &str| c.is_some_and(|c| c.terms.contains(t));
    if indel
        && (has(ours, "start_lost") || has(theirs, "start_lost") || has(ours, "stop_lost") || has(theirs, "stop_lost"))
    {
        return "indel across a start/stop codon: precedence of terms differs";
    }
    "UNEXPLAINED"
}

/// Genes left out of the comparison, on purpose: the trans-spliced ones.
/// Chloroplast rps12 is two CDS features: ArthCp047
/// `join(complement(69611..69724),139856..140087,140625..140650)` has parts
/// on both strands, which we skip; ArthCp001
/// `complement(join(97999..98024,98562..98793,69611..69724))` we keep, read
/// in the order the join gives (5' exon at 69611..69724). SnpEff sorts the
/// parts of each by position into one transcript: 28 kb of "intron"
/// between the parts, c./p. numbered from the wrong exon, and for
/// ArthCp047 a 71-kb transcript over half the plastome.
fn excluded_genes(genome: &Genome) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = genome.skipped().iter().map(|s| s.label.clone()).collect();
    for c in genome.cds() {
        let out_of_order = c.exons.windows(2).any(|w| match c.strand {
            seqshield_annotate::genome::Strand::Plus => w[1].0 < w[0].1,
            seqshield_annotate::genome::Strand::Minus => w[1].1 > w[0].0,
        });
        if out_of_order {
            out.extend(c.locus_tag.map(str::to_owned));
        }
    }
    out
}

/// Why an HGVS string differs (or "UNEXPLAINED").
fn explain_hgvs(genome: &Genome, v: &Variant, key: &str, which: &str) -> &'static str {
    let indel = v.reference.len() != v.alternate.len();
    let minus = genome.cds().any(|c| c.locus_tag == Some(key) && c.strand == seqshield_annotate::genome::Strand::Minus);
    match (indel, minus, which) {
        (true, true, "c.") => "minus-strand indel in a repeat: we shift 3' on the coding strand (HGVS), SnpEff shifts right on the genome",
        (true, _, "p.") => "in-frame indel in an amino-acid repeat: we apply the 3' rule and prefer dup at protein level (HGVS), SnpEff does not",
        _ => "UNEXPLAINED",
    }
}

fn compare(genome: &Genome, vs: &[Variant], snp: &Calls, our: &Calls) -> Tally {
    let keys: BTreeSet<&(usize, String)> = snp.keys().chain(our.keys()).collect();
    let mut t = Tally { pairs: 0, agree: 0, excluded: 0, hgvs_pairs: 0, hgvs_agree: 0, lines: vec![] };
    let skipped = excluded_genes(genome);
    for k in keys {
        if skipped.contains(k.1.as_str()) {
            t.excluded += 1;
            continue;
        }
        let (o, s) = (our.get(k), snp.get(k));
        t.pairs += 1;
        let ok = match (o, s) {
            (Some(o), Some(s)) => {
                o.terms.is_subset(&s.terms) && s.primary.as_ref().is_some_and(|p| o.terms.contains(p))
            }
            _ => false,
        };
        let v = &vs[k.0];
        if ok {
            t.agree += 1;
        } else {
            t.lines.push(format!(
                "  {}:{} {}>{} gene {}: ours {:?} snpeff {:?} -- {}",
                v.contig,
                v.pos,
                v.reference,
                v.alternate,
                k.1,
                o.map(|c| &c.terms),
                s.map(|c| &c.terms),
                explain(genome, v, &k.1, o, s)
            ));
            continue;
        }
        let (o, s) = (o.unwrap(), s.unwrap());
        for (name, a, b) in [("c.", &o.hgvs_c, &s.hgvs_c), ("p.", &o.hgvs_p, &s.hgvs_p)] {
            if a.len() == 1 && b.len() == 1 {
                t.hgvs_pairs += 1;
                if a == b {
                    t.hgvs_agree += 1;
                } else {
                    t.lines.push(format!(
                        "  {}:{} {}>{} gene {}: HGVS {name} ours {:?} snpeff {:?} -- {}",
                        v.contig,
                        v.pos,
                        v.reference,
                        v.alternate,
                        k.1,
                        a,
                        b,
                        explain_hgvs(genome, v, &k.1, name)
                    ));
                }
            }
        }
    }
    t
}

fn judge(name: &str, gb: &str, seed: u64, per_cds: u64, random: u64) -> Tally {
    let gb_path = PathBuf::from(TESTS).join(gb);
    let genome = Genome::from_genbank_path(&gb_path).unwrap();
    let (contig, len) = genome.contigs().next().map(|(n, l)| (n.to_owned(), l)).unwrap();
    let vs = plant(&genome, seed, per_cds, random);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").join(name);
    std::fs::create_dir_all(&data).unwrap();
    let text: String = gunzip(&gb_path)
        .lines()
        .map(|l| match l.strip_prefix("VERSION") {
            Some(rest) => format!("VERSION     {}\n", rest.split_whitespace().next().unwrap_or_default()),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(data.join("genes.gbk"), text).unwrap();
    let system = std::fs::read_to_string(SYSTEM_CONFIG).unwrap();
    let mut config = format!("data.dir = {}/\n", dir.path().join("data").display());
    for l in system.lines().filter(|l| l.starts_with("codon.")) {
        config.push_str(l);
        config.push('\n');
    }
    assert!(config.contains("codon.Bacterial_and_Plant_Plastid"), "SnpEff config lacks the table 11 codon table");
    assert!(genome.cds().all(|c| c.transl_table == 11), "this judge sets table 11 for the whole chromosome");
    config.push_str(&format!("{name}.genome : {name}\n{name}.{contig}.codonTable : Bacterial_and_Plant_Plastid\n"));
    let cfg = dir.path().join("snpEff.config");
    std::fs::write(&cfg, config).unwrap();
    let cfg = cfg.to_str().unwrap();
    java(dir.path(), &["build", "-genbank", "-noLog", "-c", cfg, name]);
    let vcf = dir.path().join("in.vcf");
    write_vcf(&vcf, &contig, len, &vs);
    let out = java(dir.path(), &["ann", "-noLog", "-noStats", "-c", cfg, name, vcf.to_str().unwrap()]);
    let t = compare(&genome, &vs, &parse_snpeff(&out), &ours(&genome, &vs));
    println!(
        "{name}: {} variants, {} (variant, gene) pairs, {} agree; HGVS {} of {} agree; \
         {} pairs on skipped genes left out",
        vs.len(),
        t.pairs,
        t.agree,
        t.hgvs_agree,
        t.hgvs_pairs,
        t.excluded
    );
    for s in genome.skipped() {
        println!("  skipped by the engine: {} ({}): {}", s.label, s.contig, s.reason);
    }
    println!("  left out of the comparison (trans-spliced): {:?}", excluded_genes(&genome));
    for l in &t.lines {
        println!("{l}");
    }
    t
}

#[test]
fn consequences_agree_with_snpeff() {
    if !snpeff_ready() {
        return;
    }
    let runs = [
        judge("ppcp1", "GenBank/NC_005816.gb.gz", 0x5EED_0001, 6, 150),
        judge("athchl", "GenBank/NC_000932.gb.gz", 0x5EED_0002, 4, 300),
    ];
    let pairs: usize = runs.iter().map(|t| t.pairs).sum();
    let agree: usize = runs.iter().map(|t| t.agree).sum();
    let unexplained: Vec<&String> = runs.iter().flat_map(|t| &t.lines).filter(|l| l.contains("UNEXPLAINED")).collect();
    let share = agree as f64 / pairs as f64;
    println!("total: {agree} of {pairs} agree ({:.2} %)", share * 100.0);
    assert!(share >= MIN_AGREEMENT, "agreement {share:.4} below {MIN_AGREEMENT}");
    assert!(unexplained.is_empty(), "unexplained disagreements:\n{unexplained:#?}");
}
