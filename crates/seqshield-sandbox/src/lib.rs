//! seqshield-sandbox: runs one untrusted pipeline step.
