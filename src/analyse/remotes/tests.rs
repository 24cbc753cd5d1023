//! Tests of remote naming.
