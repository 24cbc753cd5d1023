//! How sizes are shown to a person, in the report's tables and in the findings' sentences.

/// Bytes as `180 B`, `12.3 MB` (decimal units, as mail clients show sizes); negative
/// and NaN as 0 B.
#[must_use]
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n.max(0.0);
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn decimal_units_one_decimal_above_bytes() {
        for (n, shown) in [
            (180.0, "180 B"),
            (999.0, "999 B"),
            (1000.0, "1.0 kB"),
            (40_000_000.0, "40.0 MB"),
            (3e15, "3000.0 TB"),
            (-5.0, "0 B"),
            (f64::NAN, "0 B"),
        ] {
            assert_eq!(bytes(n), shown, "{n}");
        }
    }
}
