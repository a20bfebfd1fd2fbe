//! GA4GH Crypt4GH v1 interoperability (being written; see issue 2).
