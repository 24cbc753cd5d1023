//! "What each device talked to": per local device, the names (or addresses) it
//! exchanged most bytes with, from the named traffic.

use super::*;

impl RemoteNames {
    /// What each local device talked to: at most `max_rows` devices (most bytes first)
    /// and at most `max_rows` names or addresses each, and how many devices were left
    /// out.
    pub(in crate::analyse) fn talked_to(
        &self,
        max_rows: usize,
    ) -> PolarsResult<(Vec<DeviceRemotes>, u64)> {
        let traffic = join(
            self.named.clone().lazy().filter(col("focus")),
            self.devices.clone().lazy(),
            &["client"],
            &["client"],
            JoinType::Inner,
        )
        .with_columns([when(col("client_mac").is_not_null())
            .then(col("client_mac"))
            .otherwise(col("client"))
            .alias("device")])
        .collect()?;
        let lap = crate::logging::laps("talked to");
        lap("traffic");
        let all_devices = traffic
            .clone()
            .lazy()
            .group_by([col("device")])
            .agg([col("packets").sum(), col("bytes").sum()])
            .collect()?;
        let rest = u64::try_from(all_devices.height().saturating_sub(max_rows)).unwrap_or(u64::MAX);
        let top = crate::analyse::rollup::top_rows(&all_devices, "bytes", &["device"], max_rows)?
            .lazy()
            .with_row_index("rank", None);
        let traffic = join(
            traffic.lazy(),
            top.clone().select([col("device"), col("rank")]),
            &["device"],
            &["device"],
            JoinType::Inner,
        )
        .select([
            col("rank"),
            col("client"),
            col("remote"),
            col("name"),
            col("packets"),
            col("bytes"),
        ])
        .collect()?
        .lazy();
        // The device's addresses, most bytes first.
        let ips = traffic
            .clone()
            .group_by([col("rank"), col("client")])
            .agg([col("bytes").sum()])
            .sort(["rank", "bytes", "client"], order(&[false, true, false]))
            .collect()?;
        let ips = head_per_rank(&ips, DeviceRemotes::MAX_IPS)?;
        lap("ips");
        // Per (device, name or unnamed address): bytes, packets, addresses, top address.
        let per_addr = traffic
            .group_by([col("rank"), col("name"), col("remote")])
            .agg([col("packets").sum(), col("bytes").sum()])
            .collect()?;
        lap("per address");
        // A name over several addresses: its bytes, and its busiest address first
        // (sorted before grouping: a sort per group would cost seconds for a flood's
        // 300,000 unnamed addresses, which need no grouping).
        let named = per_addr
            .clone()
            .lazy()
            .filter(col("name").is_not_null())
            .sort(["bytes", "remote"], order(&[true, false]))
            .group_by([col("rank"), col("name")])
            .agg([
                col("remote").first().alias("addr"),
                len().cast(DataType::UInt64).alias("addrs"),
                col("packets").sum(),
                col("bytes").sum(),
            ])
            .with_columns([col("name").alias("label")]);
        let unnamed = per_addr.lazy().filter(col("name").is_null()).select([
            col("rank"),
            col("name"),
            col("remote").alias("addr"),
            lit(1u64).cast(DataType::UInt64).alias("addrs"),
            col("packets"),
            col("bytes"),
            col("remote").alias("label"),
        ]);
        let labels = concat([named, unnamed], UnionArgs::default())?
            .sort(["rank"], order(&[false]))
            .collect()?;
        lap("labels");
        let (shown, counts) = top_per_rank(&labels, max_rows)?;
        lap("shown");
        lap("counts");
        let out = device_rows(&top.collect()?, &ips, &shown, &counts)?;
        Ok((out, rest))
    }
}

/// Of `labels` sorted by rank: per rank the `k` rows with the most bytes (ties by
/// label), and per rank the count and bytes of all its rows (rank, labels,
/// label_bytes). One pass over each rank's rows with a heap of `k` ([`top_rows`]).
///
/// [`top_rows`]: crate::analyse::rollup::top_rows
fn top_per_rank(labels: &DataFrame, k: usize) -> PolarsResult<(DataFrame, DataFrame)> {
    let ranks: Vec<u64> = u64s(labels, "rank")?;
    let bytes = u64s(labels, "bytes")?;
    let mut shown: Option<DataFrame> = None;
    let (mut rank, mut n, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start < ranks.len() {
        let r = ranks[start];
        let end = ranks[start..]
            .iter()
            .position(|&x| x != r)
            .map_or(ranks.len(), |p| start + p);
        let part = labels.slice(i64::try_from(start).unwrap_or(i64::MAX), end - start);
        let top = crate::analyse::rollup::top_rows(&part, "bytes", &["label"], k)?;
        match shown.as_mut() {
            Some(df) => {
                df.vstack_mut(&top)?;
            }
            None => shown = Some(top),
        }
        rank.push(r);
        n.push(u64::try_from(end - start).unwrap_or(u64::MAX));
        total.push(bytes[start..end].iter().sum::<u64>());
        start = end;
    }
    let counts = DataFrame::new(
        rank.len(),
        vec![
            Column::new("rank".into(), rank),
            Column::new("labels".into(), n),
            Column::new("label_bytes".into(), total),
        ],
    )?;
    Ok((shown.unwrap_or_else(|| labels.head(Some(0))), counts))
}

/// The first `k` rows of each `rank` of `df`, sorted by rank: one pass over the rank
/// column, then a take of at most `k` rows per rank.
fn head_per_rank(df: &DataFrame, k: usize) -> PolarsResult<DataFrame> {
    let ranks = df.column("rank")?.cast(&DataType::UInt64)?;
    let mut idx = Vec::new();
    let (mut last, mut run) = (None, 0usize);
    for (i, r) in ranks.u64()?.iter().enumerate() {
        if r == last {
            run += 1;
        } else {
            (last, run) = (r, 0);
        }
        if run < k {
            idx.push(crate::analyse::rollup::idx(i));
        }
    }
    df.take(&IdxCa::from_vec("idx".into(), idx))
}

/// The talked-to view as Rust rows, from its frames (all with a `rank` column: the
/// device's place): `top` the devices (device, packets, bytes), `ips` their addresses
/// (client), `shown` their names (name, addr, addrs, packets, bytes), `counts` all
/// their names' count and bytes (labels, label_bytes).
fn device_rows(
    top: &DataFrame,
    ips: &DataFrame,
    shown: &DataFrame,
    counts: &DataFrame,
) -> PolarsResult<Vec<DeviceRemotes>> {
    let (device, packets, bytes) = (
        strs(top, "device")?,
        u64s(top, "packets")?,
        u64s(top, "bytes")?,
    );
    let mut out: Vec<DeviceRemotes> = device
        .into_iter()
        .enumerate()
        .map(|(i, device)| DeviceRemotes {
            device,
            packets: packets[i],
            bytes: bytes[i],
            ..DeviceRemotes::default()
        })
        .collect();
    let at = |df: &DataFrame| -> PolarsResult<Vec<usize>> {
        Ok(u64s(df, "rank")?
            .into_iter()
            .map(|r| usize::try_from(r).unwrap_or(usize::MAX))
            .collect())
    };
    for (r, ip) in at(ips)?.into_iter().zip(strs(ips, "client")?) {
        if let Some(d) = out.get_mut(r) {
            d.ips.push(ip);
        }
    }
    let (name, addr) = (opt_strs(shown, "name")?, strs(shown, "addr")?);
    let (addrs, p, b) = (
        u64s(shown, "addrs")?,
        u64s(shown, "packets")?,
        u64s(shown, "bytes")?,
    );
    for (i, r) in at(shown)?.into_iter().enumerate() {
        if let Some(d) = out.get_mut(r) {
            d.remotes.push(RemoteRow {
                name: name[i].as_deref().and_then(clean_name),
                addr: addr[i].clone(),
                addrs: addrs[i],
                packets: p[i],
                bytes: b[i],
            });
        }
    }
    let (labels, label_bytes) = (u64s(counts, "labels")?, u64s(counts, "label_bytes")?);
    for (i, r) in at(counts)?.into_iter().enumerate() {
        if let Some(d) = out.get_mut(r) {
            let shown = u64::try_from(d.remotes.len()).unwrap_or(u64::MAX);
            d.more = labels[i].saturating_sub(shown);
            d.more_bytes =
                label_bytes[i].saturating_sub(d.remotes.iter().map(|x| x.bytes).sum::<u64>());
        }
    }
    Ok(out)
}
