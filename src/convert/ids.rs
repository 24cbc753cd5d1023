//! Numbering a night's addresses and protocols: the ids of the Parquet's id columns
//! and the tables of its footer.
//!
//! Invariants: an address's id never changes within a file and the table only grows
//! (line `i` is id `i`); no address gets [`NO_ID`]; once the ids run out, none is handed
//! out again and the file gets no address table.

use polars::prelude::*;

use crate::decode::Addr;
use crate::parquet_schema::{NO_ID, NO_PROTOCOL_ID};

/// Formats addresses once and numbers them: a night has few distinct addresses, so
/// address columns are built as ids (the writer turns them into dictionary-encoded text
/// without hashing text on every row) and analysis groups on the small integers. Bounded:
/// past [`AddrCache::MAX_IDS`] distinct addresses the ids stop (the file gets no address
/// table, and address columns are built as text from then on) and a text cache, cleared
/// whenever it fills, takes over.
#[derive(Default)]
pub(super) struct AddrCache {
    ids: PlHashMap<Addr, u16>,
    /// Id -> text; append-only, kept for the whole file (at most `MAX_IDS` entries).
    table: Vec<Box<str>>,
    /// Entries of `table` already handed to the writer.
    sent: usize,
    /// Set once the ids ran out: text only from then on.
    overflow: Option<PlHashMap<Addr, Box<str>>>,
}

impl AddrCache {
    /// Ids are u16 and [`NO_ID`] is not one: at most this many addresses get one.
    const MAX_IDS: usize = NO_ID as usize;

    /// The address's id (`None` once the ids ran out) and text.
    #[inline]
    pub(super) fn get(&mut self, a: Addr) -> (Option<u16>, &str) {
        if self.overflow.is_none() {
            if let Some(&id) = self.ids.get(&a) {
                return (Some(id), self.text(id));
            }
            match u16::try_from(self.table.len()) {
                Ok(id) if usize::from(id) < Self::MAX_IDS => {
                    self.ids.insert(a, id);
                    self.table.push(a.to_string().into_boxed_str());
                    return (Some(id), self.text(id));
                }
                _ => self.overflow = Some(PlHashMap::default()),
            }
        }
        let map = self.overflow.get_or_insert_with(PlHashMap::default);
        if map.len() >= Self::MAX_IDS && !map.contains_key(&a) {
            map.clear();
        }
        (
            None,
            map.entry(a)
                .or_insert_with(|| a.to_string().into_boxed_str()),
        )
    }

    #[inline]
    pub(super) fn text(&self, id: u16) -> &str {
        self.table.get(usize::from(id)).map_or("", |t| t)
    }

    /// True once the ids ran out (some address has none).
    pub(super) fn overflowed(&self) -> bool {
        self.overflow.is_some()
    }

    /// Table entries not yet handed to the writer.
    pub(super) fn take_new(&mut self) -> Vec<Box<str>> {
        let new = self.table.get(self.sent..).unwrap_or_default().to_vec();
        self.sent = self.table.len();
        new
    }

    /// The address table for the footer (line `i`: the text of id `i`), when every
    /// address got an id.
    pub(super) fn table_text(&self) -> Option<String> {
        self.overflow.is_none().then(|| self.table.join("\n"))
    }
}

/// The protocol column's codes in polars' global categories, found once per protocol
/// name (a handful a night) instead of hashing the name on every packet. Holds the
/// global mapping so the codes stay valid while the file is written.
pub(super) struct ProtocolCodes {
    mapping: Arc<CategoricalMapping>,
    known: Vec<(&'static str, u32)>,
}

impl ProtocolCodes {
    pub(super) fn new() -> Self {
        ProtocolCodes {
            mapping: Categories::global().mapping(),
            known: Vec::new(),
        }
    }

    /// The name's categorical code and its `protocol_id` (its index in this file's
    /// protocol table; `None` past 255 names, which the decoder cannot produce).
    #[inline]
    pub(super) fn code(&mut self, name: &'static str) -> PolarsResult<(u32, Option<u8>)> {
        if let Some(i) = self.known.iter().position(|(n, _)| *n == name) {
            return Ok((self.known[i].1, u8::try_from(i).ok()));
        }
        let c = self.mapping.insert_cat(name)?;
        self.known.push((name, c));
        Ok((c, u8::try_from(self.known.len() - 1).ok()))
    }

    /// The protocol table for the footer, when every name got an id.
    pub(super) fn table_text(&self) -> Option<String> {
        (self.known.len() < usize::from(NO_PROTOCOL_ID)).then(|| {
            self.known
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    pub(super) fn dtype(&self) -> DataType {
        DataType::Categorical(Categories::global(), Arc::clone(&self.mapping))
    }
}
