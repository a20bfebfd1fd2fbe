//! `seqshield annotate`: send a VCF (or single variants) to the gateway's
//! annotation service and print what comes back.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::client::{self, GatewayArgs};
use crate::exit::bad_input;
use crate::Ctx;

/// The largest VCF sent (the gateway's limit).
const MAX_VCF_BYTES: u64 = seqshield_annotate::input::MAX_BODY_BYTES as u64;

/// `seqshield annotate`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["vcf", "variant"])))]
pub struct AnnotateArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// A VCF 4.x file (`-` for standard input). Sample columns are dropped
    /// by the gateway and never come back.
    #[arg(value_name = "VCF")]
    vcf: Option<PathBuf>,
    /// A single variant instead: CONTIG:POS:REF:ALT or CONTIG:g.<HGVS>
    /// (repeatable).
    #[arg(long, value_name = "V", conflicts_with = "vcf")]
    variant: Vec<String>,
    /// The genome to annotate against (when the gateway has several).
    #[arg(long, value_name = "NAME")]
    genome: Option<String>,
    /// Literature evidence: this many PMIDs per variant (1 to 20; needs the
    /// `annotate:evidence` scope).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=20))]
    evidence: Option<u8>,
}

/// Runs `seqshield annotate`.
pub fn run(ctx: &Ctx, a: AnnotateArgs) -> Result<()> {
    let body = match &a.vcf {
        Some(p) if p.as_os_str() == "-" => {
            let mut b = Vec::new();
            std::io::stdin().take(MAX_VCF_BYTES + 1).read_to_end(&mut b).context("cannot read standard input")?;
            Some(b)
        }
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let mut b = Vec::new();
            f.take(MAX_VCF_BYTES + 1).read_to_end(&mut b).with_context(|| format!("cannot read {}", p.display()))?;
            Some(b)
        }
        None => None,
    };
    if body.as_ref().is_some_and(|b| b.len() as u64 > MAX_VCF_BYTES) {
        return Err(bad_input(format!("the VCF is larger than {MAX_VCF_BYTES} bytes; split it")));
    }
    let mut query = Vec::new();
    if let Some(g) = &a.genome {
        query.push(format!("genome={}", url::form_urlencoded::byte_serialize(g.as_bytes()).collect::<String>()));
    }
    if let Some(k) = a.evidence {
        query.push(format!("evidence={k}"));
    }
    let path = if query.is_empty() { "/annotate".to_owned() } else { format!("/annotate?{}", query.join("&")) };
    let report: Value = client::block_on(async {
        let client = a.gateway.connect().await?;
        let url = client.url(&path)?;
        let rb = client
            .http()
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .timeout(std::time::Duration::from_secs(600));
        let rb = match body {
            Some(b) => rb.header(CONTENT_TYPE, "text/vcf").body(b),
            None => rb.json(&json!({ "variants": a.variant })),
        };
        let resp = client.send(rb).await?;
        resp.json::<Value>().await.map_err(client::transport_error)
    })?;
    ctx.report(report.clone(), || human(&report));
    Ok(())
}

fn human(r: &Value) -> String {
    let mut s = String::new();
    let empty = Vec::new();
    let results = r["results"].as_array().unwrap_or(&empty);
    for res in results {
        let v = &res["variant"];
        let at = match (&res["source"]["line"], &res["source"]["item"]) {
            (Value::Number(n), _) => format!("line {n}"),
            (_, Value::Number(n)) => format!("#{n}"),
            _ => String::new(),
        };
        let alleles = match v["hgvs_g"].as_str() {
            Some(d) => d.to_owned(),
            None => format!(
                "{}:{} {}>{}",
                v["contig"].as_str().unwrap_or(""),
                v["pos"],
                v["ref"].as_str().unwrap_or(""),
                v["alt"].as_str().unwrap_or("")
            ),
        };
        let head = format!("{at:<9} {alleles}");
        for e in res["effects"].as_array().unwrap_or(&empty) {
            let gene = e["gene"].as_str().or(e["locus_tag"].as_str()).unwrap_or("-");
            let hgvs = [e["hgvs_c"].as_str(), e["hgvs_p"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" ");
            s.push_str(&format!("{head}  {gene:<10} {:<24} {hgvs}\n", e["consequence"].as_str().unwrap_or("")));
        }
        if let Some(hits) = res["evidence"].as_array() {
            let pmids: Vec<String> = hits
                .iter()
                .map(|h| {
                    format!("PMID {} ({:.2})", h["pmid"].as_str().unwrap_or(""), h["score"].as_f64().unwrap_or(0.0))
                })
                .collect();
            if !pmids.is_empty() {
                s.push_str(&format!("          evidence: {}\n", pmids.join(", ")));
            }
        }
    }
    s.push_str(&format!("{} variants annotated against {}", results.len(), r["genome"].as_str().unwrap_or("?")));
    if let Some(m) = r["model"].as_object() {
        s.push_str(&format!(
            " (model {} version {})",
            m["name"].as_str().unwrap_or(""),
            m["version"].as_str().unwrap_or("")
        ));
    }
    s
}
