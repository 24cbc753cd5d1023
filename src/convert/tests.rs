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

/// A row group holds exactly the contract's columns, in its order; every column the
/// contract names elsewhere is one of them.
#[test]
fn row_groups_hold_the_contract_columns() {
    use super::columns::Columns;
    use super::ids::ProtocolCodes;
    use crate::parquet_schema::{ADDRESS_COLUMNS, COLUMNS, HOT_COLUMNS, ID_COLUMNS};

    let df = Columns::new()
        .take(&ProtocolCodes::new())
        .expect("an empty row group");
    let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, COLUMNS);
    let named = ADDRESS_COLUMNS
        .iter()
        .chain(&HOT_COLUMNS)
        .chain(ID_COLUMNS.iter().flat_map(|(text, id)| [text, id]));
    for name in named {
        assert!(COLUMNS.contains(name), "{name} is not a column");
    }
}
