//! Re-wrapping an object for other KEKs by rewriting only its header.
//!
//! The data key, the salt and therefore every segment and the trailer stay
//! byte-identical: rotation costs one header, whatever the object's size.

use std::io::{self, Read, Write};

use seqshield_format::{SealedHeader, WrappedKey};

use crate::{unlock, Kek, KeyError, Recipient};

/// What a rewrap changed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RewrapReport {
    /// Key ids before.
    pub before: Vec<String>,
    /// Key ids after.
    pub after: Vec<String>,
    /// Bytes copied unchanged after the header.
    pub body_bytes: u64,
}

/// Rewrites the header of the object read from `input` into `output`:
/// unwraps the data key with one of `keks`, drops the entries whose key id
/// is in `remove`, adds an entry for each of `add` (replacing an existing
/// entry with the same key id), and copies the rest of the object verbatim.
///
/// Refuses to leave an object with no recipient. The body is not
/// re-verified; verify the result (or the input) separately.
pub fn rewrap<R: Read, W: Write>(
    mut input: R,
    mut output: W,
    keks: &[&dyn Kek],
    add: &[&dyn Recipient],
    remove: &[String],
) -> Result<RewrapReport, KeyError> {
    let sealed = SealedHeader::read_from(&mut input)?;
    let before: Vec<String> = sealed.recipients().iter().map(|e| e.key_id.clone()).collect();
    let (data_key, mut header) = unlock(sealed, keks)?;
    for id in remove {
        if !before.contains(id) {
            return Err(KeyError::UnknownRecipient { key_id: id.clone() });
        }
    }
    let mut entries: Vec<WrappedKey> = header
        .recipients()
        .iter()
        .filter(|e| !remove.contains(&e.key_id) && !add.iter().any(|r| r.key_id() == e.key_id))
        .cloned()
        .collect();
    for r in add {
        entries.push(r.wrap(&data_key)?);
    }
    if entries.is_empty() {
        return Err(KeyError::NoRecipientsLeft);
    }
    header.set_recipients(entries)?;
    let after = header.recipients().iter().map(|e| e.key_id.clone()).collect();
    let io_err = |source: io::Error| KeyError::Io { op: "copy object body", path: "-".into(), source };
    output.write_all(&header.encode(&data_key)).map_err(io_err)?;
    let body_bytes = io::copy(&mut input, &mut output).map_err(io_err)?;
    output.flush().map_err(io_err)?;
    Ok(RewrapReport { before, after, body_bytes })
}
