//! The id tables `convert` writes in the Parquet footer (addresses and protocols), and
//! the query keys and result texts that use them.
//!
//! Invariant: the id columns are used only when both tables and all id columns are in
//! the file; otherwise every query reads the text columns, with the same results.

use std::path::Path;

use polars::prelude::*;

use crate::dataframe::opt_strs;
use crate::parquet_schema::{ADDRESSES_KEY, ID_COLUMNS, NO_ID, PROTOCOLS_KEY, ROLLUP_TOKEN_KEY};

/// The address and protocol tables `convert` writes in the Parquet footer: with them
/// the queries group on the small integer columns `src_id`, `dst_id`, `src_mac_id` and
/// `protocol_id` instead of hashing text on every row, and only the few result rows are
/// turned back into text. Files without complete tables (other writers, or a night with
/// more distinct addresses than ids) are read through the text columns.
pub(super) struct Tables {
    addresses: Vec<String>,
    protocols: Vec<String>,
    /// The token of the roll-up written with the file ([`ROLLUP_TOKEN_KEY`]).
    pub(super) rollup_token: Option<String>,
}

impl Tables {
    pub(super) fn read(parquet: &Path) -> Option<Self> {
        let mut f = std::fs::File::open(parquet).ok()?;
        let meta = polars_parquet::read::read_metadata(&mut f).ok()?;
        let kv = meta.key_value_metadata.as_ref()?;
        let table = |key: &str| -> Option<Vec<String>> {
            let v = kv.iter().find(|kv| kv.key == key)?.value.as_deref()?;
            Some(if v.is_empty() {
                Vec::new()
            } else {
                v.split('\n').map(str::to_string).collect()
            })
        };
        let tables = Tables {
            addresses: table(ADDRESSES_KEY)?,
            protocols: table(PROTOCOLS_KEY)?,
            rollup_token: kv
                .iter()
                .find(|kv| kv.key == ROLLUP_TOKEN_KEY)
                .and_then(|kv| kv.value.clone()),
        };
        let schema = meta.schema();
        let has = |name: &str| schema.fields().iter().any(|f| f.name() == name);
        ID_COLUMNS.iter().all(|(_, id)| has(id)).then_some(tables)
    }

    /// The query column for a key (a text column and its id column, as in
    /// [`ID_COLUMNS`]): its id column, named as the text column, when the tables are there.
    pub(super) fn key(tables: Option<&Self>, text: &str, id: &str) -> Expr {
        match tables {
            Some(_) => col(id).alias(text),
            None => col(text),
        }
    }

    /// A query result with its key columns as text: each id column named in `keys`
    /// (`(column, is_address)`) replaced by the texts of its ids ([`NO_ID`]: null), built
    /// once per result row without a Rust `String` each. Without tables the columns are
    /// text already and are left as they are.
    pub(super) fn with_text_keys(
        tables: Option<&Self>,
        mut df: DataFrame,
        keys: &[(&str, bool)],
    ) -> PolarsResult<DataFrame> {
        let Some(t) = tables else {
            return Ok(df);
        };
        for &(name, address) in keys {
            let table = if address { &t.addresses } else { &t.protocols };
            let ids = df.column(name)?.cast(&DataType::UInt32)?;
            let mut bad = None;
            let texts: StringChunked = ids
                .u32()?
                .iter()
                .map(|id| {
                    let id = id.filter(|&id| id != u32::from(NO_ID))?;
                    let text = usize::try_from(id).ok().and_then(|i| table.get(i));
                    if text.is_none() {
                        bad = Some(id);
                    }
                    text.map(String::as_str)
                })
                .collect();
            if let Some(id) = bad {
                return Err(PolarsError::ComputeError(
                    format!("{name} id {id} is not in the file's table").into(),
                ));
            }
            df.with_column(texts.with_name(name.into()).into_column())?;
        }
        Ok(df)
    }

    /// A result column of addresses back as text (ids through the address table).
    pub(super) fn addresses(
        tables: Option<&Self>,
        df: &DataFrame,
        name: &str,
    ) -> PolarsResult<Vec<Option<String>>> {
        Self::texts(tables.map(|t| t.addresses.as_slice()), df, name)
    }

    /// A result column of keys back as text: ids through `table`, else the text itself.
    fn texts(
        table: Option<&[String]>,
        df: &DataFrame,
        name: &str,
    ) -> PolarsResult<Vec<Option<String>>> {
        let Some(table) = table else {
            return opt_strs(df, name);
        };
        let ids = df.column(name)?.cast(&DataType::UInt32)?;
        ids.u32()?
            .iter()
            .map(|id| {
                id.filter(|&id| id != u32::from(NO_ID))
                    .map(|id| {
                        usize::try_from(id)
                            .ok()
                            .and_then(|i| table.get(i))
                            .cloned()
                            .ok_or_else(|| {
                                PolarsError::ComputeError(
                                    format!("{name} id {id} is not in the file's table").into(),
                                )
                            })
                    })
                    .transpose()
            })
            .collect()
    }
}
