//! The data edit list (spec, "Data edit list"): alternating lengths to skip and
//! to keep, applied to the decrypted plaintext stream. The first length is
//! skipped; after an odd number of lengths the rest of the stream is kept,
//! after an even number it is discarded.

/// Where a reader is in an edit list.
#[derive(Debug)]
pub(super) struct EditList {
    lengths: Vec<u64>,
    /// Index of the current length.
    index: usize,
    /// Bytes left in the current length.
    left: u64,
}

/// What to do with the next bytes of plaintext.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Drop this many bytes.
    Skip(u64),
    /// Release at most this many bytes (`u64::MAX`: the rest of the stream).
    Keep(u64),
    /// Nothing more is kept: the stream is over.
    End,
}

impl EditList {
    pub(super) fn new(lengths: Vec<u64>) -> Self {
        let left = lengths.first().copied().unwrap_or(0);
        Self { lengths, index: 0, left }
    }

    /// The action at the current position, after zero-length entries.
    pub(super) fn action(&mut self) -> Action {
        while self.left == 0 && self.index < self.lengths.len() {
            self.index += 1;
            self.left = self.lengths.get(self.index).copied().unwrap_or(0);
        }
        if self.index >= self.lengths.len() {
            // An odd-length list ended on a skip: keep the rest.
            return if self.lengths.len() % 2 == 1 { Action::Keep(u64::MAX) } else { Action::End };
        }
        if self.index % 2 == 0 {
            Action::Skip(self.left)
        } else {
            Action::Keep(self.left)
        }
    }

    /// Records that `n` bytes were skipped or kept under the current action.
    pub(super) fn advance(&mut self, n: u64) {
        if self.index < self.lengths.len() {
            self.left -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `lengths` to `data` the way a reader does, in `chunk`-sized
    /// pieces.
    pub(crate) fn apply(lengths: &[u64], data: &[u8], chunk: usize) -> Vec<u8> {
        let mut edits = EditList::new(lengths.to_vec());
        let mut out = Vec::new();
        for mut piece in data.chunks(chunk) {
            while !piece.is_empty() {
                match edits.action() {
                    Action::End => return out,
                    Action::Skip(n) => {
                        let n = n.min(piece.len() as u64);
                        piece = &piece[n as usize..];
                        edits.advance(n);
                    }
                    Action::Keep(n) => {
                        let n = n.min(piece.len() as u64);
                        out.extend_from_slice(&piece[..n as usize]);
                        piece = &piece[n as usize..];
                        edits.advance(n);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn spec_examples() {
        let data: Vec<u8> = (0..100).collect();
        // Even count: the rest is discarded.
        assert_eq!(apply(&[10, 5], &data, 7), (10..15).collect::<Vec<u8>>());
        // Odd count: the rest is kept after the last skip.
        assert_eq!(apply(&[10, 5, 80], &data, 7), [(10..15).collect::<Vec<u8>>(), (95..100).collect()].concat());
        assert_eq!(apply(&[0, 3, 0, 2], &data, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(apply(&[], &data, 9), Vec::<u8>::new());
        assert_eq!(apply(&[200], &data, 9), Vec::<u8>::new());
        assert_eq!(apply(&[1, u64::MAX], &data, 64), (1..100).collect::<Vec<u8>>());
    }
}
