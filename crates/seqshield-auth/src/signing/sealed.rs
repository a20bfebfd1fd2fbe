//! A private signing key at rest: its PKCS#8 DER inside a seqshield
//! container whose data key is wrapped by a KEK (file or PKCS#11).

use std::path::Path;

use seqshield_format::{encrypt_into, encrypted_len, Classification, DataKey, Header, SealedHeader, StreamReader};
use seqshield_keys::Kek;
use zeroize::Zeroizing;

use super::SigningError;

/// Content type of a sealed signing key.
const CONTENT_TYPE: &str = "application/pkcs8";
/// Metadata entry binding the container to its key id.
const KID_METADATA: &str = "kid";

/// Encrypts `pkcs8` for `kek`, labelled with `kid`.
pub(super) fn seal(kek: &dyn Kek, kid: &str, pkcs8: &[u8], path: &Path) -> Result<Vec<u8>, SigningError> {
    let container = |source| SigningError::Container { path: path.to_owned(), source };
    let data_key = DataKey::generate();
    let entry = kek.wrap(&data_key).map_err(|source| SigningError::Kek { path: path.to_owned(), source })?;
    // The key guards every token we issue: not genomic data, but no less
    // sensitive than the data it opens.
    let header = Header::new(Classification::Restricted, CONTENT_TYPE, vec![entry])
        .and_then(|h| h.with_metadata(KID_METADATA, kid))
        .map_err(container)?;
    let mut out = vec![0u8; encrypted_len(&header, pkcs8.len() as u64) as usize];
    encrypt_into(&header, &data_key, pkcs8, &mut out, Default::default()).map_err(container)?;
    Ok(out)
}

/// Decrypts a sealed key, checking its label names `kid`. The container is
/// authenticated (header MAC, segment tags, trailer) before any byte is
/// returned.
pub(super) fn open(kek: &dyn Kek, kid: &str, bytes: &[u8], path: &Path) -> Result<Zeroizing<Vec<u8>>, SigningError> {
    let container = |source| SigningError::Container { path: path.to_owned(), source };
    let (sealed, header_len) = SealedHeader::parse(bytes).map_err(container)?;
    let (data_key, header) =
        seqshield_keys::unlock(sealed, &[kek]).map_err(|source| SigningError::Kek { path: path.to_owned(), source })?;
    let labelled = header.metadata().iter().any(|(k, v)| k == KID_METADATA && v == kid);
    if header.content_type() != CONTENT_TYPE || !labelled {
        return Err(SigningError::KeyMismatch { path: path.to_owned(), kid: kid.to_owned() });
    }
    let mut reader = StreamReader::new(&bytes[header_len..], &header, &data_key);
    let mut plain = Zeroizing::new(Vec::new());
    while let Some(chunk) = reader.next_chunk().map_err(container)? {
        plain.extend_from_slice(chunk);
    }
    Ok(plain)
}
