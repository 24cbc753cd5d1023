//! Unit tests of the CSV formatting and of the Parquet contract.

use super::csv_writer::{push_field, push_rel_time};

#[test]
fn csv_quoting() {
    let mut s = String::new();
    push_field(&mut s, "plain");
    s.push('|');
    push_field(&mut s, "a, b");
    s.push('|');
    push_field(&mut s, "say \"hi\"");
    assert_eq!(s, "plain|\"a, b\"|\"say \"\"hi\"\"\"");
}

#[test]
fn rel_time_formats() {
    let mut s = String::new();
    push_rel_time(&mut s, 1_500_000_123, 9);
    s.push(' ');
    push_rel_time(&mut s, 1_500_000_123, 6);
    s.push(' ');
    push_rel_time(&mut s, -1_000, 6);
    assert_eq!(s, "1.500000123 1.500000 -0.000001");
}
