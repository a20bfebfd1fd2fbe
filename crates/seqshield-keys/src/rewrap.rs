//! (module being written for issue 2)
