//! Signed task manifests: what a worker may run, on which objects, where,
//! and until when.
//!
//! A manifest file is JSON `{"jws": "…", "spec": "…"}`:
//! - `spec` is the task as the worker needs it ([`Spec`]: executors, inputs
//!   with their Merkle roots, outputs, placement), as a JSON string whose
//!   exact bytes are hashed;
//! - `jws` is a compact RS256 JWS (`typ` [`TYP_TASK_MANIFEST`]) signed with
//!   the gateway's token-signing key, over [`Claims`]: who, the task, the
//!   objects it may touch, the SHA-256 of `spec`, and an expiry.
//!
//! The split keeps the signed part small (it is also the subject token of
//! the worker's RFC 8693 exchange) while the spec, with literal inputs of
//! up to 128 KiB, is bound to it by its hash. A worker refuses a file
//! whose JWS does not verify against the gateway's published keys, whose
//! spec does not hash to the signed value, or whose expiry has passed.

use aws_lc_rs::digest::{digest, SHA256};
use seqshield_auth::jwt::{self, KeySet, TaskBinding, Validation};
use seqshield_auth::{Clearance, ScopeSet};
use seqshield_format::Classification;
use serde::{Deserialize, Serialize};

use crate::tes::Executor;

pub use seqshield_auth::service::exchange::{TOKEN_TYPE_TASK_MANIFEST, TYP_TASK_MANIFEST, WORKER_AUDIENCE};

/// Largest manifest file a worker reads.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The signed claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The gateway (token issuer).
    pub iss: String,
    /// [`WORKER_AUDIENCE`].
    pub aud: String,
    /// The task's owner.
    pub sub: String,
    /// Signed at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expiry: the worker must start (exchange) before this.
    pub exp: u64,
    /// Unique id.
    pub jti: String,
    /// What the worker's token may carry (`data:read data:write jobs:report`
    /// within the owner's own scopes).
    pub scope: ScopeSet,
    /// The owner's clearance at submission.
    pub clearance: Clearance,
    /// How the owner authenticated.
    pub amr: Vec<String>,
    /// Authentication context.
    pub acr: String,
    /// The task and its objects.
    pub tsk: TaskBinding,
    /// Hex SHA-256 of the spec's bytes.
    pub spec_sha256: String,
    /// The gateway's base URL.
    pub gateway: String,
    /// The partition chosen by placement.
    pub partition: String,
}

/// One input as the worker stages it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecInput {
    /// Path inside the executors' file system.
    pub path: String,
    /// The object, for stored inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Its Merkle root when the task was submitted: the worker refuses an
    /// object that no longer has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merkle_root: Option<String>,
    /// Its size.
    #[serde(default)]
    pub size: u64,
    /// A literal content instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One output as the worker stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecOutput {
    /// Path inside the executors' file system.
    pub path: String,
    /// Object name.
    pub name: String,
    /// Dataset.
    pub dataset: String,
    /// Classification (at least that of every input).
    pub classification: Classification,
}

/// How a worker pads a task's completion time (`[jobs.timing]`), so that
/// its runtime says less about its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Padding {
    /// How the runtime is rounded up.
    pub rounding: Rounding,
    /// The bucket width (`multiple`) or smallest bucket (`power_of_two`),
    /// seconds.
    pub base_secs: u64,
}

/// Rounding of a padded runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Up to a multiple of the base.
    Multiple,
    /// Up to the base times a power of two.
    PowerOfTwo,
}

/// What the worker runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The task id.
    pub task: String,
    /// Executors, in order.
    pub executors: Vec<Executor>,
    /// Inputs.
    pub inputs: Vec<SpecInput>,
    /// Outputs.
    pub outputs: Vec<SpecOutput>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Cores.
    pub cpu_cores: u32,
    /// Estimated runtime, seconds (the Slurm time limit is twice this).
    pub runtime_secs: u64,
    /// Memory, MiB (0: the sandbox profile's default).
    pub ram_mb: u64,
    /// Scratch size, MiB.
    pub scratch_mb: u64,
    /// Pad the completion time (the task's data is at or above
    /// `[jobs.timing] pad_from`); the worker then also withholds
    /// per-executor times and progress reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_completion: Option<Padding>,
}

impl Spec {
    /// Every top directory the executors see (`data` for `/data/in/x`):
    /// of inputs, outputs, volumes and executor paths; sorted, no repeats.
    pub fn top_dirs(&self) -> Vec<String> {
        let paths =
            self.inputs
                .iter()
                .map(|i| i.path.as_str())
                .chain(self.outputs.iter().map(|o| o.path.as_str()))
                .chain(self.volumes.iter().map(String::as_str))
                .chain(self.executors.iter().flat_map(|e| {
                    [&e.workdir, &e.stdin, &e.stdout, &e.stderr].into_iter().flatten().map(String::as_str)
                }));
        let tops: std::collections::BTreeSet<String> = paths.map(|p| crate::tes::top_dir(p).to_owned()).collect();
        tops.into_iter().collect()
    }
}

/// A manifest file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// The signed claims.
    pub jws: String,
    /// The spec, as JSON text.
    pub spec: String,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not a manifest file.
    #[error("not a task manifest: {0}")]
    Malformed(String),
    /// The signature, issuer, audience, type or lifetime failed.
    #[error("the manifest's signature does not verify against the gateway's keys, or it has expired: {0}")]
    Signature(#[from] jwt::JwtError),
    /// The spec is not the one signed.
    #[error("the manifest's spec was modified (its SHA-256 is not the signed one)")]
    SpecModified,
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes).as_ref())
}

impl ManifestFile {
    /// Parses a manifest file's bytes (not yet verified).
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::Malformed(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
        }
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))
    }

    /// Verifies the JWS with the gateway's published keys (issuer `issuer`,
    /// audience [`WORKER_AUDIENCE`], type, lifetime at `now`) and the spec
    /// against its signed hash; returns both.
    pub fn verify(&self, keys: &KeySet, issuer: &str, now: u64) -> Result<(Claims, Spec), ManifestError> {
        let v = Validation {
            issuer: issuer.to_owned(),
            audience: WORKER_AUDIENCE.to_owned(),
            leeway_secs: jwt::MAX_CLOCK_SKEW_SECS,
            typ: Some(TYP_TASK_MANIFEST),
        };
        let claims: Claims = jwt::verify(&self.jws, keys, &v, now)?;
        if sha256_hex(self.spec.as_bytes()) != claims.spec_sha256 {
            return Err(ManifestError::SpecModified);
        }
        let spec: Spec = serde_json::from_str(&self.spec).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if spec.task != claims.tsk.id {
            return Err(ManifestError::Malformed("the spec is for another task".into()));
        }
        Ok((claims, spec))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;

    use super::*;

    const ISS: &str = "https://gw.test";
    const NOW: u64 = 1_800_000_000;

    fn key() -> &'static (KeyPair, String) {
        static K: OnceLock<(KeyPair, String)> = OnceLock::new();
        K.get_or_init(|| (KeyPair::generate(KeySize::Rsa2048).unwrap(), "k1".to_owned()))
    }

    fn keyset() -> KeySet {
        let mut ks = KeySet::new();
        ks.insert(key().1.clone(), key().0.public_key()).unwrap();
        ks
    }

    fn manifest(exp: u64, spec: &str) -> ManifestFile {
        let claims = Claims {
            iss: ISS.into(),
            aud: WORKER_AUDIENCE.into(),
            sub: "alice".into(),
            iat: NOW - 10,
            nbf: NOW - 10,
            exp,
            jti: "j".into(),
            scope: ScopeSet::parse("data:read jobs:report").unwrap(),
            clearance: Clearance::Restricted,
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            acr: "mfa".into(),
            tsk: TaskBinding { id: "task_1".into(), read: vec![], write: vec![] },
            spec_sha256: sha256_hex(spec.as_bytes()),
            gateway: ISS.into(),
            partition: "onprem".into(),
        };
        let jws = jwt::sign(&key().0, &key().1, TYP_TASK_MANIFEST, &claims).unwrap();
        ManifestFile { jws, spec: spec.to_owned() }
    }

    fn spec() -> String {
        serde_json::to_string(&Spec {
            task: "task_1".into(),
            executors: vec![],
            inputs: vec![],
            outputs: vec![],
            volumes: vec![],
            cpu_cores: 1,
            runtime_secs: 60,
            ram_mb: 0,
            scratch_mb: 0,
            pad_completion: None,
        })
        .unwrap()
    }

    #[test]
    fn a_signed_manifest_verifies_and_a_tampered_one_does_not() {
        let m = manifest(NOW + 600, &spec());
        let (claims, s) = m.verify(&keyset(), ISS, NOW).unwrap();
        assert_eq!((claims.sub.as_str(), s.task.as_str()), ("alice", "task_1"));

        // The spec changed after signing (one more core).
        let bigger = spec().replace("\"cpu_cores\":1", "\"cpu_cores\":64");
        let tampered = ManifestFile { spec: bigger, ..m.clone() };
        assert!(matches!(tampered.verify(&keyset(), ISS, NOW), Err(ManifestError::SpecModified)));

        // The claims changed after signing.
        let parts: Vec<&str> = m.jws.split('.').collect();
        let mut payload: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1]).unwrap(),
        )
        .unwrap();
        payload["sub"] = "mallory".into();
        let forged = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload.to_string());
        let forged = ManifestFile { jws: format!("{}.{forged}.{}", parts[0], parts[2]), ..m.clone() };
        assert!(matches!(forged.verify(&keyset(), ISS, NOW), Err(ManifestError::Signature(_))));

        // Unsigned (alg none, or no signature at all).
        let none = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"seqshield-manifest+jwt"}"#,
        );
        for jws in [format!("{none}.{}.", parts[1]), format!("{}.{}.", parts[0], parts[1])] {
            let u = ManifestFile { jws, ..m.clone() };
            assert!(matches!(u.verify(&keyset(), ISS, NOW), Err(ManifestError::Signature(_))));
        }

        // Expired (beyond the clock-skew allowance), or for another gateway.
        let old = manifest(NOW - 3600, &spec());
        assert!(matches!(old.verify(&keyset(), ISS, NOW), Err(ManifestError::Signature(jwt::JwtError::Expired))));
        assert!(m.verify(&keyset(), "https://other.test", NOW).is_err());
        assert!(ManifestFile::parse(b"{\"jws\": 1}").is_err());
    }
}
