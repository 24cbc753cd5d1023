//! Remote names: what the night's remote addresses were called by the devices that
//! talked to them, from `names.parquet` (passive DNS answers, TLS/QUIC SNI, HTTP Host;
//! see [`crate::namestore`]) joined with the cube, all in polars; only the rows the
//! report shows become Rust values.
//!
//! The name of remote address R for client C (an address of a local device), per cube
//! row (time slot, C, R), first match wins:
//!
//! 1. a name C *sent* to R: a TLS or QUIC SNI or an HTTP Host of a connection from C
//!    to R (what the client meant);
//! 2. a name C *asked for* whose DNS answer was R;
//!
//! where "C" is the client's IP address or its MAC (a dual-stack device asks for AAAA
//! records over IPv4), and among several candidates of one rule the one seen by the
//! end of the row's slot wins over one seen only later, then the most recent sighting
//! (a CDN address answers for many names over a night: bytes in each slot go to the
//! name this client looked up last), then the most frames, then the name;
//! 3. else a name any client used for R (the global name: SNI/Host before DNS, then
//!    most frames, then the name);
//! 4. else none: R is shown by its address.
//!
//! From the named rows: per (client, remote) the name with the most bytes (the
//! conversations' `a_name`/`b_name`), per address the name with the most bytes over all
//! clients (the talkers' `name`), and per local device the names it talked to by bytes
//! (`talked_to`). A device is a client MAC (an IP address where none was seen) whose
//! addresses are local ([`crate::devices::is_local`]) or asked or sent names.
//!
//! Bounds: names.parquet holds at most [`crate::namestore::MAX_ROWS`] rows, and at most
//! [`CANDIDATES`] names per (client, address) take part in the per-row choice, so the
//! joins stay within a small multiple of the cube's rows whatever a DNS server answers.

use polars::prelude::*;

use super::night::Night;
use super::rollup::order;
use super::{Conversation, DeviceRemotes, RemoteRow, Summary, Talker};
use crate::dataframe::{mask, opt_strs, strs, u64s};
use crate::devices::is_local;
use crate::namestore::{
    ADDR, CLIENT_IP, CLIENT_MAC, FIRST_TS, FRAMES, KIND, LAST_TS, NAME as NAME_COL, kind_is,
};
use crate::parquet_schema::{DST, IP_VERSION, SRC, SRC_MAC};

/// Names per (client, address) and rule that take part in the per-row choice.
pub(super) const CANDIDATES: usize = 8;

/// Addresses that are not local a device's MAC may send (its global IPv6 addresses)
/// and still be taken for a device rather than a router.
const MAX_FOREIGN: u64 = 8;

/// Longest name shown, in bytes (DNS's limit for a whole name), and per label.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// Names the summary's remote addresses from `names` (names.parquet as the analysis
/// read it once; empty for a night without one: the report shows addresses), and lists
/// what each device talked to.
///
/// # Errors
/// Polars failed on the night's cube.
pub(super) fn name_remotes(
    summary: &mut Summary,
    night: &Night,
    names: &DataFrame,
    max_rows: usize,
) -> PolarsResult<()> {
    let t = std::time::Instant::now();
    let r = name_traffic(&night.cube, names, max_rows.saturating_mul(FOCUS))?;
    r.name_talkers(&mut summary.talkers_by_bytes)?;
    r.name_talkers(&mut summary.talkers_by_packets)?;
    r.name_conversations(&mut summary.conversations)?;
    tracing::debug!(ms = t.elapsed().as_millis(), "remote names: tables named");
    let (talked_to, more) = r.talked_to(max_rows)?;
    tracing::debug!(ms = t.elapsed().as_millis(), "remote names: talked to");
    summary.talked_to = talked_to;
    summary.omitted.talked_to = more;
    Ok(())
}

/// The night's traffic with a name (or none) for the remote side of every cube row.
pub(super) struct RemoteNames {
    /// Columns: client, client_mac, remote, packets, bytes, name (null: unnamed).
    named: DataFrame,
    /// Clients that are local devices. Columns: client.
    devices: DataFrame,
}

/// A name as the report may show it: control, bidirectional-override and line
/// separator characters removed, each label cut to 63 bytes and the whole to 253
/// (names.parquet's names are already so, but this is what is shown, whatever the file
/// held). None when nothing is left.
#[must_use]
pub fn clean_name(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|&c| {
            !c.is_control()
                && !matches!(
                    c,
                    '\u{200B}'..='\u{200F}'
                        | '\u{2028}'..='\u{202E}'
                        | '\u{2060}'..='\u{2069}'
                        | '\u{061C}'
                        | '\u{FEFF}'
                )
        })
        .collect();
    let mut out = String::with_capacity(kept.len().min(MAX_NAME));
    for (i, label) in kept.trim().split('.').enumerate() {
        let label = cut(label, MAX_LABEL);
        let sep = usize::from(i > 0);
        if out.len() + sep + label.len() > MAX_NAME {
            if i > 0 {
                out.push('.');
            }
            let room = MAX_NAME - out.len();
            out.push_str(cut(label, room));
            break;
        }
        if i > 0 {
            out.push('.');
        }
        out.push_str(label);
    }
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// The first at most `max` bytes of `s`, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn left(on: &[&str], right_on: &[&str]) -> (Vec<Expr>, Vec<Expr>) {
    (
        on.iter().map(|c| col(*c)).collect(),
        right_on.iter().map(|c| col(*c)).collect(),
    )
}

fn join(a: LazyFrame, b: LazyFrame, on: &[&str], right_on: &[&str], how: JoinType) -> LazyFrame {
    let (l, r) = left(on, right_on);
    a.join(b, l, r, JoinArgs::new(how))
}

/// In an aggregation, `what` on the group's row ranked first by `ranks`: (column,
/// largest first), the first column first.
fn first_by(what: &str, ranks: &[(&str, bool)]) -> Expr {
    let (by, descending): (Vec<Expr>, Vec<bool>) = ranks.iter().map(|&(c, d)| (col(c), d)).unzip();
    col(what)
        .sort_by(
            by,
            SortMultipleOptions::default().with_order_descending_multi(descending),
        )
        .first()
}

/// The remote names of `names` (names.parquet as read): `sent` (SNI/Host, else a DNS
/// answer), name, address, client MAC and IP, first and last sighting (ns), frames.
fn remote_names(names: &DataFrame) -> LazyFrame {
    names
        .clone()
        .lazy()
        .filter(
            kind_is(|k| !k.is_device_name())
                .and(col(ADDR).is_not_null())
                .and(col(NAME_COL).is_not_null()),
        )
        .select([
            col(KIND)
                .neq(lit(names::Kind::DnsAnswer.as_str()))
                .alias("sent"),
            col(NAME_COL).alias("name"),
            col(ADDR).alias("addr"),
            col(CLIENT_MAC).cast(DataType::String).alias("n_mac"),
            col(CLIENT_IP).cast(DataType::String).alias("n_ip"),
            col(FIRST_TS).cast(DataType::Int64).alias("n_first"),
            col(LAST_TS).cast(DataType::Int64).alias("n_last"),
            col(FRAMES).cast(DataType::UInt64).alias("frames"),
        ])
}

/// Per (client key, address, rule) the [`CANDIDATES`] names seen in most frames (then
/// most recently, then in names.parquet's order), of the (client key, address) pairs
/// in `pairs` (the traffic's: a DNS answer lists addresses never contacted).
fn candidates(names: LazyFrame, key: &str, pairs: LazyFrame) -> LazyFrame {
    join(
        names.filter(col(key).is_not_null()),
        pairs,
        &[key, "addr"],
        &["key", "remote"],
        JoinType::Inner,
    )
    .sort(["sent", "frames", "n_last"], order(&[true, true, true]))
    .group_by_stable([col(key), col("addr"), col("sent")])
    .head(Some(CANDIDATES))
}

/// Addresses per device row limit that the talked-to view looks at (see [`oriented`]).
const FOCUS: usize = 4;

/// The cube's IP traffic both ways round (each address pair once as client-remote and
/// once as remote-client), with the client's MAC (the source MAC it sent the most
/// packets with) and a row number: per (slot, client, remote) where names.parquet names
/// the remote (the naming is per slot), and per (client, remote) over the night for
/// the other remotes of the `k` addresses with the most bytes (`focus`: what the
/// talked-to view lists). A night of a million spoofed sources so costs the rows of its
/// busiest addresses, not a million per slot. Columns: slot, client, remote, packets,
/// bytes, last, focus, client_mac, row.
fn oriented(cube: &DataFrame, n: &DataFrame, k: usize) -> PolarsResult<DataFrame> {
    let ip = col(SRC)
        .is_not_null()
        .and(col(DST).is_not_null())
        .and(col(IP_VERSION).is_not_null());
    let side = |client: &str, remote: &str| {
        cube.clone().lazy().filter(ip.clone()).select([
            col("slot"),
            col(client).alias("client"),
            col(remote).alias("remote"),
            col("packets"),
            col("bytes"),
            col("last"),
        ])
    };
    let all = concat([side(SRC, DST), side(DST, SRC)], UnionArgs::default())?;
    let per_addr = all
        .clone()
        .group_by([col("client")])
        .agg([col("bytes").sum()])
        .collect()?;
    let top = super::rollup::top_rows(&per_addr, "bytes", &["client"], k)?
        .lazy()
        .select([col("client").alias("f_addr"), lit(true).alias("focus")]);
    let named_addrs = n
        .clone()
        .lazy()
        .select([col("addr").alias("n_addr"), lit(true).alias("named")])
        .unique(None, UniqueKeepStrategy::Any);
    let flagged = join(
        join(all, top, &["client"], &["f_addr"], JoinType::Left),
        named_addrs,
        &["remote"],
        &["n_addr"],
        JoinType::Left,
    )
    .with_columns([
        col("focus").fill_null(lit(false)),
        col("named").fill_null(lit(false)),
    ]);
    let named = flagged
        .clone()
        .filter(col("named"))
        .group_by([col("slot"), col("client"), col("remote")])
        .agg([
            col("packets").sum(),
            col("bytes").sum(),
            col("last").max(),
            col("focus").first(),
        ]);
    let rest = flagged
        .filter(col("focus").and(col("named").not()))
        .group_by([col("client"), col("remote")])
        .agg([
            col("packets").sum(),
            col("bytes").sum(),
            col("last").max(),
            col("slot").min(),
        ])
        .select([
            col("slot"),
            col("client"),
            col("remote"),
            col("packets"),
            col("bytes"),
            col("last"),
            lit(true).alias("focus"),
        ]);
    let rows = concat([named, rest], UnionArgs::default())?.collect()?;
    // The clients' MACs, from the cube's rows they sent.
    let clients = rows
        .clone()
        .lazy()
        .select([col("client").alias("mac_of")])
        .unique(None, UniqueKeepStrategy::Any);
    let macs = join(
        cube.clone()
            .lazy()
            .filter(ip.and(col(SRC_MAC).is_not_null())),
        clients,
        &[SRC],
        &["mac_of"],
        JoinType::Inner,
    )
    .group_by([col(SRC), col(SRC_MAC)])
    .agg([col("packets").sum()])
    .group_by([col(SRC)])
    .agg([first_by(SRC_MAC, &[("packets", true), (SRC_MAC, false)]).alias("client_mac")])
    .select([col(SRC).alias("mac_of"), col("client_mac")]);
    join(rows.lazy(), macs, &["client"], &["mac_of"], JoinType::Left)
        .with_row_index("row", None)
        .collect()
}

/// Rules 1 and 2: per oriented row, the name its client sent to or asked for the
/// remote (by IP or by MAC), time-aware. Columns: row, client_name.
fn client_names(oriented: &DataFrame, n: &DataFrame) -> PolarsResult<DataFrame> {
    let pairs = |key: &str| {
        oriented
            .clone()
            .lazy()
            .filter(col(key).is_not_null())
            .select([col(key).alias("key"), col("remote")])
            .unique(None, UniqueKeepStrategy::Any)
    };
    let per = |key: &str, on: &str| {
        let rows =
            oriented
                .clone()
                .lazy()
                .select([col("row"), col(on), col("remote"), col("last")]);
        join(
            rows,
            candidates(n.clone().lazy(), key, pairs(on)),
            &[on, "remote"],
            &[key, "addr"],
            JoinType::Inner,
        )
        .select([
            col("row"),
            col("last"),
            col("sent"),
            col("name"),
            col("n_first"),
            col("n_last"),
            col("frames"),
        ])
    };
    let seen = col("n_first").lt_eq(col("last"));
    concat(
        [per("n_ip", "client"), per("n_mac", "client_mac")],
        UnionArgs::default(),
    )?
    .with_columns([
        seen.clone().alias("seen"),
        // The latest sighting by the end of the row's slot.
        when(seen)
            .then(
                when(col("n_last").lt_eq(col("last")))
                    .then(col("n_last"))
                    .otherwise(col("n_first")),
            )
            .otherwise(lit(i64::MIN))
            .alias("recent"),
    ])
    .group_by([col("row")])
    .agg([first_by(
        "name",
        &[
            ("sent", true),
            ("seen", true),
            ("recent", true),
            ("frames", true),
            ("name", false),
        ],
    )
    .alias("client_name")])
    .collect()
}

/// Rule 3: per remote address of the traffic, the name any client used (SNI/Host
/// first, then most frames, then the name). Columns: addr, global_name.
fn global_names(oriented: &DataFrame, n: &DataFrame) -> PolarsResult<DataFrame> {
    let remotes = oriented
        .clone()
        .lazy()
        .select([col("remote")])
        .unique(None, UniqueKeepStrategy::Any);
    join(
        n.clone().lazy(),
        remotes,
        &["addr"],
        &["remote"],
        JoinType::Inner,
    )
    .group_by([col("addr")])
    .agg([
        first_by("name", &[("sent", true), ("frames", true), ("name", false)]).alias("global_name"),
    ])
    .collect()
}

/// The clients of `named` that are local devices: addresses that are local, or asked or
/// sent names, or are sent from the MAC of a device that asked or sent names and that
/// sends few addresses that are not local (a dual-stack device's global IPv6
/// addresses; a router's MAC sends every remote address). Columns: client.
fn local_devices(named: &DataFrame, n: &DataFrame) -> PolarsResult<DataFrame> {
    let clients = named
        .clone()
        .lazy()
        .select([col("client"), col("client_mac")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()?;
    let local = mask(&clients, "client", is_local)?.with_name("local".into());
    let clients = clients.hstack(&[local.into_column()])?.lazy();
    let flag = |key: &str, flag: &str| {
        n.clone()
            .lazy()
            .filter(col(key).is_not_null())
            .select([col(key), lit(true).alias(flag)])
            .unique(None, UniqueKeepStrategy::Any)
    };
    let foreign = clients
        .clone()
        .filter(col("client_mac").is_not_null())
        .group_by([col("client_mac")])
        .agg([col("local")
            .not()
            .cast(DataType::UInt64)
            .sum()
            .alias("foreign")]);
    let flagged = join(
        join(
            clients,
            flag("n_ip", "asker"),
            &["client"],
            &["n_ip"],
            JoinType::Left,
        ),
        flag("n_mac", "mac_asker"),
        &["client_mac"],
        &["n_mac"],
        JoinType::Left,
    );
    join(
        flagged,
        foreign,
        &["client_mac"],
        &["client_mac"],
        JoinType::Left,
    )
    .filter(
        col("local")
            .or(col("asker").fill_null(lit(false)))
            .or(col("mac_asker")
                .fill_null(lit(false))
                .and(col("foreign").lt_eq(lit(MAX_FOREIGN)))),
    )
    .select([col("client")])
    .collect()
}

/// Names every cube row's remote side, see the module's documentation. `cube`: the
/// night's cube (`night::Night::cube`); `names`: names.parquet as read.
pub(super) fn name_traffic(
    cube: &DataFrame,
    names: &DataFrame,
    focus: usize,
) -> PolarsResult<RemoteNames> {
    let lap = crate::logging::laps("remote names");
    let n = remote_names(names).collect()?;
    let oriented = oriented(cube, &n, focus)?;
    lap("traffic both ways");
    let best = client_names(&oriented, &n)?;
    lap("per client");
    let global = global_names(&oriented, &n)?;
    lap("global");
    let named = join(
        join(
            oriented.lazy(),
            best.lazy(),
            &["row"],
            &["row"],
            JoinType::Left,
        ),
        global.lazy(),
        &["remote"],
        &["addr"],
        JoinType::Left,
    )
    .select([
        col("client"),
        col("client_mac"),
        col("remote"),
        col("packets"),
        col("bytes"),
        col("focus"),
        when(col("client_name").is_not_null())
            .then(col("client_name"))
            .otherwise(col("global_name"))
            .alias("name"),
    ])
    .collect()?;
    let devices = local_devices(&named, &n)?;
    lap("devices");
    Ok(RemoteNames { named, devices })
}

impl RemoteNames {
    /// Per `key` (columns of the traffic) the name with the most bytes, ties to the
    /// first name. Columns: the key's, name.
    fn names_by_bytes(&self, key: &[&str]) -> LazyFrame {
        let key: Vec<Expr> = key.iter().map(|c| col(*c)).collect();
        let mut with_name = key.clone();
        with_name.push(col("name"));
        self.named
            .clone()
            .lazy()
            .filter(col("name").is_not_null())
            .group_by(with_name)
            .agg([col("bytes").sum()])
            .group_by(key)
            .agg([first_by("name", &[("bytes", true), ("name", false)])])
    }

    /// Per (client, remote) the name with the most bytes. Columns: client, remote, name.
    fn pair_names(&self) -> LazyFrame {
        self.names_by_bytes(&["client", "remote"])
    }

    /// Per address the name with the most bytes over all clients. Columns: remote, name.
    fn addr_names(&self) -> LazyFrame {
        self.names_by_bytes(&["remote"])
    }

    /// Names the listed talkers (the global name of each address).
    pub(super) fn name_talkers(&self, talkers: &mut [Talker]) -> PolarsResult<()> {
        if talkers.is_empty() {
            return Ok(());
        }
        let shown = DataFrame::new(
            talkers.len(),
            vec![Column::new(
                "remote".into(),
                talkers.iter().map(|t| t.addr.as_str()).collect::<Vec<_>>(),
            )],
        )?;
        let df = join(
            shown.lazy(),
            self.addr_names(),
            &["remote"],
            &["remote"],
            JoinType::Left,
        )
        .collect()?;
        let (addr, name) = (strs(&df, "remote")?, opt_strs(&df, "name")?);
        for t in talkers.iter_mut() {
            t.name = addr
                .iter()
                .position(|a| *a == t.addr)
                .and_then(|i| name[i].as_deref())
                .and_then(clean_name);
        }
        Ok(())
    }

    /// Names both sides of the listed conversations, each as the other side saw it.
    pub(super) fn name_conversations(&self, convs: &mut [Conversation]) -> PolarsResult<()> {
        if convs.is_empty() {
            return Ok(());
        }
        let mut clients = Vec::with_capacity(convs.len() * 2);
        let mut remotes = Vec::with_capacity(convs.len() * 2);
        for c in convs.iter() {
            clients.extend([c.a.as_str(), c.b.as_str()]);
            remotes.extend([c.b.as_str(), c.a.as_str()]);
        }
        let shown = DataFrame::new(
            clients.len(),
            vec![
                Column::new("client".into(), clients),
                Column::new("remote".into(), remotes),
            ],
        )?;
        let df = join(
            shown.lazy().with_row_index("i", None),
            self.pair_names(),
            &["client", "remote"],
            &["client", "remote"],
            JoinType::Left,
        )
        .sort(["i"], SortMultipleOptions::default())
        .collect()?;
        let name = opt_strs(&df, "name")?;
        for (i, c) in convs.iter_mut().enumerate() {
            c.b_name = name
                .get(2 * i)
                .cloned()
                .flatten()
                .as_deref()
                .and_then(clean_name);
            c.a_name = name
                .get(2 * i + 1)
                .cloned()
                .flatten()
                .as_deref()
                .and_then(clean_name);
        }
        Ok(())
    }
}

mod talked_to;

#[cfg(test)]
mod tests;
