//! A BERT sentence encoder loaded from memory.
//!
//! Any BERT checkpoint works (all-MiniLM-L6-v2, BioBERT, PubMedBERT): a
//! `config.json`, a safetensors file and a `tokenizer.json`. The encoder
//! follows the sentence-transformers recipe: Transformer → mean pooling over
//! the attention mask → L2 normalisation.
//!
//! Weights are parsed from a caller's (decrypted) buffer and never touch the
//! disk. Each weight the model uses becomes a candle [`Var`] in a [`VarMap`]:
//! its pages are locked against swapping while the encoder lives, and it is
//! overwritten with zeros when the encoder is dropped. Tensors in the file
//! that BERT does not use (pooler, MLM head, `position_ids`) are never
//! materialised.

use std::fmt;
use std::sync::PoisonError;

use candle_core::safetensors::SliceSafetensors;
use candle_core::{CpuStorage, DType, Device, Shape, Storage, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, Tokenizer, TruncationParams};
use zeroize::Zeroizing;

use super::EvidenceError;
use crate::secmem::{self, Locked, WipeScope};

/// Largest `config.json` accepted, in bytes.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Largest `tokenizer.json` accepted, in bytes (BERT vocabularies are 0.5–2 MB).
pub const MAX_TOKENIZER_BYTES: usize = 32 * 1024 * 1024;
/// Largest safetensors buffer accepted, in bytes (BERT-large in f32 is 1.3 GB).
pub const MAX_WEIGHTS_BYTES: usize = 2 * 1024 * 1024 * 1024;
/// Tokens kept per text by default (sentence-transformers' `max_seq_length`
/// for all-MiniLM-L6-v2); never more than the model's positions.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// Texts per forward pass.
pub const BATCH_SIZE: usize = 32;
/// Bytes of one input text handed to the tokenizer; the rest is cut before
/// tokenization (far more than [`DEFAULT_MAX_TOKENS`] tokens' worth), so a
/// huge input costs no tokenizer time.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Bounds on the shape a `config.json` may ask for (BERT-large is
/// 1024 hidden, 24 layers, 16 heads, 4096 intermediate, 512 positions).
const CONFIG_BOUNDS: [(&str, usize); 7] = [
    ("vocab_size", 1 << 20),
    ("hidden_size", 4096),
    ("num_hidden_layers", 64),
    ("num_attention_heads", 128),
    ("intermediate_size", 16384),
    ("max_position_embeddings", 8192),
    ("type_vocab_size", 16),
];

/// A BERT sentence encoder held in memory.
pub struct Encoder {
    model: BertModel,
    /// The weights; `model` holds clones of these tensors (shared storage).
    varmap: VarMap,
    /// Page locks on each weight's storage, released after zeroizing.
    locks: Vec<Locked>,
    tokenizer: Tokenizer,
    pad_id: u32,
    dim: usize,
    max_positions: usize,
    max_tokens: usize,
    model_id: String,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("model_id", &self.model_id)
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .field("weights", &self.locks.len())
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Loads an encoder from a BERT `config.json`, safetensors weights and a
    /// `tokenizer.json`, all in memory.
    ///
    /// The weights buffer is locked against swapping while it is parsed and
    /// wiped when this returns (it is [`Zeroizing`]). The fixed padding and
    /// truncation a `tokenizer.json` may ship with are replaced: texts are
    /// truncated to [`Encoder::max_tokens`] and padded per batch.
    pub fn from_parts(
        config_json: &[u8],
        weights: Zeroizing<Vec<u8>>,
        tokenizer_json: &[u8],
    ) -> Result<Self, EvidenceError> {
        let digest = sha256(&weights);
        Self::from_parts_hashed(config_json, weights, tokenizer_json, &digest)
    }

    /// [`Encoder::from_parts`] for weights whose SHA-256 the caller has
    /// already computed and checked (a verified model bundle hashes every
    /// file once, as it decrypts it): `weights_sha256` goes into
    /// [`Encoder::model_id`] without hashing the weights again.
    pub fn from_parts_hashed(
        config_json: &[u8],
        weights: Zeroizing<Vec<u8>>,
        tokenizer_json: &[u8],
        weights_sha256: &[u8; 32],
    ) -> Result<Self, EvidenceError> {
        check_size("config.json", config_json.len(), MAX_CONFIG_BYTES)?;
        check_size("tokenizer.json", tokenizer_json.len(), MAX_TOKENIZER_BYTES)?;
        check_size("weights", weights.len(), MAX_WEIGHTS_BYTES)?;
        let config = parse_config(config_json)?;

        let mut tokenizer = Tokenizer::from_bytes(tokenizer_json).map_err(EvidenceError::Tokenizer)?;
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .unwrap_or(u32::try_from(config.pad_token_id).unwrap_or(0));
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size || pad_id as usize >= config.vocab_size {
            return Err(EvidenceError::TokenizerMismatch { tokenizer: vocab, model: config.vocab_size });
        }
        let max_positions = config.max_position_embeddings;
        let max_tokens = DEFAULT_MAX_TOKENS.min(max_positions);
        tokenizer.with_padding(None);
        set_truncation(&mut tokenizer, max_tokens)?;

        // Inside the scope every intermediate copy freed while parsing
        // (unaligned tensor data, dtype conversions) is wiped.
        let _wipe = WipeScope::enter();
        let weights_lock = secmem::lock(&weights[..]);
        let model_id = model_id(config_json, weights_sha256, tokenizer_json);
        let varmap = VarMap::new();
        let loaded = SliceSafetensors::new(&weights).and_then(|st| {
            let backend = LazyVars { weights: st, varmap: varmap.clone() };
            let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu);
            BertModel::load(vb, &config)
        });
        drop(weights_lock);
        drop(weights);
        let model = match loaded {
            Ok(model) => model,
            Err(e) => {
                zero_vars(&varmap);
                return Err(EvidenceError::Weights(e));
            }
        };
        let locks = lock_vars(&varmap);
        Ok(Encoder {
            model,
            varmap,
            locks,
            tokenizer,
            pad_id,
            dim: config.hidden_size,
            max_positions,
            max_tokens,
            model_id,
        })
    }

    /// Sets the number of tokens kept per text (special tokens included),
    /// at most the model's `max_position_embeddings`.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Result<Self, EvidenceError> {
        if !(2..=self.max_positions).contains(&max_tokens) {
            return Err(EvidenceError::MaxTokens { requested: max_tokens, max: self.max_positions });
        }
        set_truncation(&mut self.tokenizer, max_tokens)?;
        self.max_tokens = max_tokens;
        Ok(self)
    }

    /// Embedding dimension (the model's `hidden_size`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `sha256:` and the hex SHA-256 over the SHA-256s of config, weights and tokenizer
    /// (each length-prefixed): names exactly the model an index was built with.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Tokens kept per text, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds each text: mean of the last hidden states over the attention
    /// mask, L2-normalised. Texts are truncated to [`Encoder::max_tokens`]
    /// tokens, sorted by length and run in batches of [`BATCH_SIZE`] padded
    /// to the batch's longest. Runs inside a [`WipeScope`], so the
    /// activations freed during the call are wiped.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EvidenceError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let _wipe = WipeScope::enter();
        let inputs: Vec<&str> = texts.iter().map(|t| cut(t, MAX_TEXT_BYTES)).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(EvidenceError::Tokenizer)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let rows = self.forward(&batch).map_err(EvidenceError::Inference)?;
            for (&i, row) in chunk.iter().zip(rows) {
                out[i] = row;
            }
        }
        Ok(out)
    }

    /// One padded batch through the model, pooled and normalised.
    fn forward(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let len = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let n = batch.len();
        let mut ids = Zeroizing::new(vec![self.pad_id; n * len]);
        let mut types = Zeroizing::new(vec![0u32; n * len]);
        let mut mask = Zeroizing::new(vec![0u32; n * len]);
        for (row, e) in batch.iter().enumerate() {
            let at = row * len;
            let k = e.len().min(len);
            ids[at..at + k].copy_from_slice(&e.get_ids()[..k]);
            types[at..at + k].copy_from_slice(&e.get_type_ids()[..k]);
            mask[at..at + k].copy_from_slice(&e.get_attention_mask()[..k]);
        }
        let dev = &self.model.device;
        let ids = Tensor::from_slice(&ids[..], (n, len), dev)?;
        let types = Tensor::from_slice(&types[..], (n, len), dev)?;
        let mask = Tensor::from_slice(&mask[..], (n, len), dev)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let sum = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, dim)
        let count = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
        let mean = sum.broadcast_div(&count)?;
        // torch.nn.functional.normalize: x / max(‖x‖₂, 1e-12).
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }

    /// Overwrites every weight with zeros in place. The model shares these
    /// tensors' storage, so afterwards it computes with zeros.
    fn wipe_weights(&self) {
        zero_vars(&self.varmap);
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        self.wipe_weights();
        self.locks.clear();
    }
}

fn check_size(what: &'static str, len: usize, max: usize) -> Result<(), EvidenceError> {
    if len > max {
        return Err(EvidenceError::InputTooLarge { what, len, max });
    }
    Ok(())
}

fn set_truncation(tokenizer: &mut Tokenizer, max_tokens: usize) -> Result<(), EvidenceError> {
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
        .map_err(EvidenceError::Tokenizer)?;
    Ok(())
}

/// The longest prefix of `s` of at most `max` bytes ending on a char boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Checks that `config.json` describes a BERT encoder within bounds.
fn parse_config(json: &[u8]) -> Result<Config, EvidenceError> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(EvidenceError::ConfigJson)?;
    let obj = value.as_object().ok_or(EvidenceError::NotBert("not a JSON object"))?;
    match obj.get("model_type").and_then(|v| v.as_str()) {
        Some("bert") => {}
        Some(_) => return Err(EvidenceError::NotBert("model_type is not \"bert\"")),
        None if obj.contains_key("hidden_size") && obj.contains_key("num_hidden_layers") => {}
        None => return Err(EvidenceError::NotBert("no model_type and no BERT keys")),
    }
    let config: Config = serde_json::from_value(value).map_err(EvidenceError::ConfigJson)?;
    let fields = [
        config.vocab_size,
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.intermediate_size,
        config.max_position_embeddings,
        config.type_vocab_size,
    ];
    for ((field, max), value) in CONFIG_BOUNDS.into_iter().zip(fields) {
        if value == 0 || value > max {
            return Err(EvidenceError::ConfigBounds { field, value, max });
        }
    }
    if config.hidden_size % config.num_attention_heads != 0 {
        return Err(EvidenceError::NotBert("hidden_size is not a multiple of num_attention_heads"));
    }
    Ok(config)
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 over the SHA-256 of each part (the weights' given, not
/// recomputed), so a verified bundle need not hash the weights twice.
fn model_id(config: &[u8], weights_sha256: &[u8; 32], tokenizer: &[u8]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"seqshield-bert-model-v2\0");
    ctx.update(&sha256(config));
    ctx.update(weights_sha256);
    ctx.update(&sha256(tokenizer));
    format!("sha256:{}", hex::encode(ctx.finish()))
}

/// Overwrites a tensor's storage with zeros in place (through a flat view
/// that shares it).
fn zero_tensor(t: &Tensor) -> candle_core::Result<()> {
    let flat = t.flatten_all()?;
    flat.slice_set(&flat.zeros_like()?, 0, 0)
}

fn zero_vars(varmap: &VarMap) {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    for (name, var) in vars.iter() {
        let zeroed = var.zeros_like().and_then(|z| var.set(&z));
        if let Err(e) = zeroed {
            tracing::error!(weight = %name, error = %e, "could not zeroize a model weight");
        }
    }
}

fn lock_vars(varmap: &VarMap) -> Vec<Locked> {
    let vars = varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
    vars.values()
        .filter_map(|var| {
            let (storage, _) = var.as_tensor().storage_and_layout();
            match &*storage {
                Storage::Cpu(CpuStorage::F32(v)) => Some(secmem::lock(v)),
                _ => None,
            }
        })
        .collect()
}

/// A `VarBuilder` backend that turns each tensor BERT asks for into a
/// [`Var`] (one copy, intermediates zeroed), and fails on a missing one
/// instead of initialising it at random as a plain [`VarMap`] would.
struct LazyVars<'a> {
    weights: SliceSafetensors<'a>,
    varmap: VarMap,
}

impl SimpleBackend for LazyVars<'_> {
    fn get(&self, shape: Shape, name: &str, _init: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut vars = self.varmap.data().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("weight `{name}` is {:?}, the model needs {shape:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        if !self.contains_tensor(name) {
            candle_core::bail!("the weights hold no tensor `{name}`");
        }
        let raw = self.weights.load(name, dev)?;
        let var = if raw.shape() != &shape {
            Err(candle_core::Error::Msg(format!("weight `{name}` is {:?}, the model needs {shape:?}", raw.shape())))
        } else if !raw.dtype().is_float() {
            Err(candle_core::Error::Msg(format!("weight `{name}` is {:?}, not a float type", raw.dtype())))
        } else if raw.dtype() == dtype {
            Var::from_tensor(&raw)
        } else {
            raw.to_dtype(dtype).and_then(|conv| {
                let var = Var::from_tensor(&conv);
                zero_tensor(&conv)?;
                var
            })
        };
        zero_tensor(&raw)?;
        let var = var?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_owned(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("weight `{name}` requested without a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.weights.get(name).is_ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny BERT (vocabulary of 12 words, 1 layer, hidden 8) with
    /// deterministic weights, as `(config, safetensors, tokenizer)`.
    pub(crate) fn tiny_model() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (h, i, layers, pos) = (8usize, 16usize, 1usize, 32usize);
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "brca1", "breast", "cancer", "soil", "bacteria", "gene", "variant",
            "the",
        ];
        let config = serde_json::json!({
            "model_type": "bert", "vocab_size": words.len(), "hidden_size": h,
            "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": i,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "max_position_embeddings": pos,
            "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
            "pad_token_id": 0
        });
        let mut tensors: Vec<(String, Vec<usize>)> = vec![
            ("embeddings.word_embeddings.weight".into(), vec![words.len(), h]),
            ("embeddings.position_embeddings.weight".into(), vec![pos, h]),
            ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
            ("pooler.dense.weight".into(), vec![h, h]),
        ];
        for l in 0..layers {
            let p = format!("encoder.layer.{l}");
            for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                tensors.push((format!("{p}.{m}.weight"), vec![h, h]));
                tensors.push((format!("{p}.{m}.bias"), vec![h]));
            }
            for m in ["attention.output.LayerNorm", "output.LayerNorm"] {
                tensors.push((format!("{p}.{m}.weight"), vec![h]));
                tensors.push((format!("{p}.{m}.bias"), vec![h]));
            }
            tensors.push((format!("{p}.intermediate.dense.weight"), vec![i, h]));
            tensors.push((format!("{p}.intermediate.dense.bias"), vec![i]));
            tensors.push((format!("{p}.output.dense.weight"), vec![h, i]));
            tensors.push((format!("{p}.output.dense.bias"), vec![h]));
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape) in &tensors {
            let n: usize = shape.iter().product();
            let start = data.len();
            for _ in 0..n {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let x = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5;
                let x = if name.contains("LayerNorm.weight") { 1.0 + x } else { x };
                data.extend_from_slice(&x.to_le_bytes());
            }
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let mut header = serde_json::to_vec(&header).unwrap();
        while header.len() % 8 != 0 {
            header.push(b' ');
        }
        let mut st = (header.len() as u64).to_le_bytes().to_vec();
        st.extend_from_slice(&header);
        st.extend_from_slice(&data);
        let vocab: serde_json::Map<String, serde_json::Value> =
            words.iter().enumerate().map(|(i, w)| (w.to_string(), i.into())).collect();
        let tokenizer = serde_json::json!({
            "version": "1.0",
            "truncation": {"max_length": 4, "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
            "added_tokens": [],
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        });
        (serde_json::to_vec(&config).unwrap(), st, serde_json::to_vec(&tokenizer).unwrap())
    }

    fn tiny() -> Encoder {
        let (c, w, t) = tiny_model();
        Encoder::from_parts(&c, Zeroizing::new(w), &t).unwrap()
    }

    fn weight(enc: &Encoder, name: &str) -> Tensor {
        enc.varmap.data().lock().unwrap()[name].as_tensor().clone()
    }

    #[test]
    fn embeddings_are_unit_vectors_of_the_hidden_size() {
        let enc = tiny();
        assert_eq!(enc.dim(), 8);
        let v = enc.embed(&["BRCA1 breast cancer", "soil bacteria", ""]).unwrap();
        for row in &v {
            assert_eq!(row.len(), 8);
            let n: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-5, "norm {n}");
        }
        assert!(enc.embed(&[]).unwrap().is_empty());
    }

    /// Guards against the shipped fixed padding (16 here) and truncation (4)
    /// leaking into results: pad tokens must not change a text's embedding.
    #[test]
    fn shipped_padding_and_truncation_are_replaced() {
        let enc = tiny();
        assert_eq!(enc.max_tokens(), 32);
        let alone = enc.embed(&["brca1"]).unwrap();
        let long = "the gene variant breast cancer soil bacteria the gene";
        let both = enc.embed(&[long, "brca1"]).unwrap();
        for (a, b) in alone[0].iter().zip(&both[1]) {
            assert!((a - b).abs() < 1e-5);
        }
        // Truncation is ours: six words are not cut to the shipped 4 tokens.
        let a = enc.embed(&["the gene variant breast cancer soil"]).unwrap();
        let b = enc.embed(&["the gene variant breast cancer bacteria"]).unwrap();
        assert_ne!(a, b);
        let short = tiny().with_max_tokens(4).unwrap();
        assert_eq!(short.embed(&["the gene variant"]).unwrap(), short.embed(&["the gene brca1"]).unwrap());
        assert!(tiny().with_max_tokens(33).is_err());
    }

    /// The model must compute with the `Var`s' storage, so that zeroizing
    /// the `Var`s on drop really wipes the weights the model used.
    #[test]
    fn the_model_shares_storage_with_the_vars_and_drop_zeroizes_it() {
        let enc = tiny();
        let names: Vec<String> = enc.varmap.data().lock().unwrap().keys().cloned().collect();
        assert_eq!(names.len(), 5 + 16, "every used weight, and nothing else");
        assert!(!names.iter().any(|n| n.starts_with("pooler")));
        assert_eq!(enc.locks.len(), names.len());
        let kept = weight(&enc, "embeddings.word_embeddings.weight");
        assert!(kept.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        let before = enc.embed(&["brca1 breast cancer"]).unwrap();
        assert!(before[0].iter().any(|&x| x != 0.0));
        enc.wipe_weights();
        let after = enc.embed(&["brca1 breast cancer"]).unwrap();
        assert!(after[0].iter().all(|&x| x == 0.0), "model reads the wiped Vars");
        drop(enc);

        let enc = tiny();
        let kept: Vec<Tensor> = names.iter().map(|n| weight(&enc, n)).collect();
        drop(enc);
        for t in kept {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn bad_inputs_get_specific_errors() {
        let (c, w, t) = tiny_model();
        let mut cfg: serde_json::Value = serde_json::from_slice(&c).unwrap();
        cfg["model_type"] = "gpt2".into();
        let e = Encoder::from_parts(&serde_json::to_vec(&cfg).unwrap(), Zeroizing::new(w.clone()), &t);
        assert!(matches!(e, Err(EvidenceError::NotBert(_))));
        cfg["model_type"] = "bert".into();
        cfg["hidden_size"] = 1_000_000.into();
        let e = Encoder::from_parts(&serde_json::to_vec(&cfg).unwrap(), Zeroizing::new(w.clone()), &t);
        assert!(matches!(e, Err(EvidenceError::ConfigBounds { field: "hidden_size", .. })));
        cfg["hidden_size"] = 16.into();
        let e = Encoder::from_parts(&serde_json::to_vec(&cfg).unwrap(), Zeroizing::new(w.clone()), &t);
        assert!(matches!(e, Err(EvidenceError::Weights(_))), "shape mismatch is an error");
        let e = Encoder::from_parts(b"{", Zeroizing::new(w.clone()), &t);
        assert!(matches!(e, Err(EvidenceError::ConfigJson(_))));
        let e = Encoder::from_parts(&c, Zeroizing::new(w[..w.len() - 4].to_vec()), &t);
        assert!(matches!(e, Err(EvidenceError::Weights(_))));
        let e = Encoder::from_parts(&c, Zeroizing::new(w.clone()), b"{}");
        assert!(matches!(e, Err(EvidenceError::Tokenizer(_))));
        let big = vec![b' '; MAX_CONFIG_BYTES + 1];
        let e = Encoder::from_parts(&big, Zeroizing::new(w), &t);
        assert!(matches!(e, Err(EvidenceError::InputTooLarge { what: "config.json", .. })));
    }

    /// A missing weight must fail the load, not be initialised at random
    /// (what a plain `VarMap` backend would do).
    #[test]
    fn a_missing_weight_is_an_error_not_random() {
        let (c, w, t) = tiny_model();
        let hlen = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&w[8..8 + hlen]).unwrap();
        let renamed = header.replace("encoder.layer.0.output.dense.bias", "encoder.layer.0.output.dense.bia_");
        let mut w2 = w[..8].to_vec();
        w2.extend_from_slice(renamed.as_bytes());
        w2.extend_from_slice(&w[8 + hlen..]);
        let e = Encoder::from_parts(&c, Zeroizing::new(w2), &t).unwrap_err();
        assert!(e.to_string().contains("output.dense.bias"), "{e}");
    }

    /// The same guarantee with the real model, where its data is present
    /// (`scripts/annotate-data`; required under CI).
    #[test]
    fn real_model_weights_are_zeroized_on_drop() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.work/annotate/model"));
        if !dir.join("model.safetensors").is_file() {
            assert!(std::env::var_os("CI").is_none(), "{} is missing", dir.display());
            eprintln!("skipping: {} is missing", dir.display());
            return;
        }
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let enc = Encoder::from_parts(
            &read("config.json"),
            Zeroizing::new(read("model.safetensors")),
            &read("tokenizer.json"),
        )
        .unwrap();
        let names: Vec<String> = enc.varmap.data().lock().unwrap().keys().cloned().collect();
        assert_eq!(names.len(), 5 + 6 * 16, "BERT's weights; no pooler, no position_ids");
        let kept: Vec<Tensor> = names.iter().map(|n| weight(&enc, n)).collect();
        let params: usize = kept.iter().map(|t| t.elem_count()).sum();
        assert_eq!(params, 22_565_376);
        assert!(enc.embed(&["a sentence"]).unwrap()[0].iter().any(|&x| x != 0.0));
        drop(enc);
        for t in kept {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn debug_shows_no_weights() {
        let s = format!("{:?}", tiny());
        assert!(s.contains("model_id") && s.len() < 300);
    }
}
