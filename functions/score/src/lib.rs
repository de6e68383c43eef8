//! Stub, replaced below.
