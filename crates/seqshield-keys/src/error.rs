//! Errors of key handling. None carries key material or passphrases.

use std::path::PathBuf;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No header entry names a key we hold.
    #[error("wrong key: the object is wrapped for {in_object:?}, but the available key is {available:?}")]
    NoMatchingRecipient {
        /// Key ids we hold.
        available: Vec<String>,
        /// Key ids in the object.
        in_object: Vec<String>,
    },
    /// The entry names our key but does not unwrap with it.
    #[error("wrong key: the entry for key {key_id} does not unwrap (damaged entry or different key with the same id)")]
    UnwrapFailed {
        /// The key id of the entry.
        key_id: String,
    },
    /// The entry uses an algorithm this KEK does not implement.
    #[error("key {key_id}: unsupported wrapping algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The key id.
        key_id: String,
        /// The algorithm named in the entry.
        algorithm: String,
    },
    /// A recipient to remove is not in the object.
    #[error("recipient {key_id} is not in the object")]
    UnknownRecipient {
        /// The key id asked for.
        key_id: String,
    },
    /// The change would leave an object nobody can decrypt.
    #[error("refusing to remove every recipient: nobody could decrypt the object")]
    NoRecipientsLeft,
    /// A key file or public-key file is not in the expected format.
    #[error("{path}: {reason}")]
    KeyFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A PEM public key given as text is not a usable RSA public key.
    #[error("invalid RSA public key: {reason}")]
    InvalidPublicKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A public key given for signature verification is malformed.
    #[error("invalid signature verification key: {reason}")]
    InvalidVerifyingKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key is well formed but not of a kind we sign or verify with.
    #[error("unsupported signing key: {found}; expected an EC P-384 key (id-ecPublicKey on secp384r1)")]
    UnsupportedSigningKey {
        /// What the key is instead, e.g. `rsaEncryption` or
        /// `id-ecPublicKey on secp256r1`.
        found: String,
    },
    /// A signature does not verify: wrong key, altered message, or a
    /// damaged or malformed signature.
    #[error("signature does not verify with key {key_id} (wrong key, altered message or damaged signature)")]
    BadSignature {
        /// The key id of the verifying key.
        key_id: String,
    },
    /// The passphrase does not decrypt the key file.
    #[error("{path}: wrong passphrase (or a damaged key file)")]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// An empty passphrase was given for a new key file.
    #[error("refusing to encrypt a key file with an empty passphrase")]
    EmptyPassphrase,
    /// The private key file is readable or writable by group or others.
    #[error("{path}: mode {mode:04o} lets group or others access the private key; `chmod 600` it")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file asks for more scrypt work than we allow.
    #[error("{path}: scrypt parameter {param} = {value} exceeds the limit {max}")]
    KdfTooCostly {
        /// The key file.
        path: PathBuf,
        /// Which parameter (`log_n`, `r`, `p`, `memory`).
        param: &'static str,
        /// The value in the file.
        value: u64,
        /// Our limit.
        max: u64,
    },
    /// A key already exists where a new one was to be created.
    #[error("{location}: a key already exists; refusing to overwrite it")]
    KeyExists {
        /// The file or token object.
        location: String,
    },
    /// A cryptographic primitive failed (key generation, encryption).
    #[error("{op} failed")]
    Crypto {
        /// What we tried.
        op: &'static str,
    },
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {op} failed: {source}")]
    Pkcs11 {
        /// What we tried.
        op: &'static str,
        /// The error from the module.
        #[source]
        source: cryptoki::error::Error,
    },
    /// Zero or several tokens carry the requested label.
    #[error("PKCS#11 module {module}: {count} tokens are labelled {label:?}, expected exactly one")]
    TokenLabel {
        /// The module.
        module: PathBuf,
        /// The token label asked for.
        label: String,
        /// How many tokens carry it.
        count: usize,
    },
    /// The token refused the user PIN.
    #[error("PKCS#11 token {token:?}: wrong PIN")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The token holds no usable key under the label.
    #[error("PKCS#11 token {token:?}, key {key:?}: {reason}")]
    Pkcs11Key {
        /// The token label.
        token: String,
        /// The key label.
        key: String,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// The token does not implement the wrapping mechanism with our parameters.
    #[error(
        "PKCS#11 token {token:?} rejects the {algorithm} mechanism parameters (some tokens, \
         SoftHSM2 among them, do RSA-OAEP only with SHA-1)"
    )]
    Pkcs11Unsupported {
        /// The token label.
        token: String,
        /// The algorithm id, e.g. `rsa-oaep-sha256`.
        algorithm: &'static str,
        /// The error from the module.
        #[source]
        source: cryptoki::error::Error,
    },
    /// The container format rejected the header.
    #[error(transparent)]
    Format(#[from] seqshield_format::FormatError),
    /// A file system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
