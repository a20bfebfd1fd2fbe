//! Evidence tests (placeholder).
