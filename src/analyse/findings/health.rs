//! Findings from the summary itself: capture health (rank 85 for a stop at the disk
//! floor, 80 for drops above 0.1 %), spoofed-source floods (75) and scans (65), and
//! sources with many unanswered pings ([`super::LOWEST_RANK`]).

use super::labels::Labels;
use super::{Finding, LOWEST_RANK};
use crate::analyse::Summary;
use crate::config::FindingsConfig;

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
pub(super) fn findings(s: &Summary, labels: &Labels, cfg: &FindingsConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(c) = &s.capture {
        if let Some(l) = &c.stopped_low_disk {
            out.push(
                Finding {
                    rank: 85,
                    sentence: format!(
                        "The capture stopped writing at {} with {} MiB free (floor {} MiB): later packets are missing from this report.",
                        l.at.get(11..16).unwrap_or(&l.at),
                        l.free_mb,
                        l.min_free_mb
                    ),
                    ..Finding::new("capture", &c.interface, "low-disk")
                }
                .num("free_mb", l.free_mb as f64)
                .num("min_free_mb", l.min_free_mb as f64),
            );
        }
        if c.warning {
            let dropped = c.dropped_kernel + c.dropped_interface + c.dropped_ours;
            out.push(
                Finding {
                    rank: 80,
                    sentence: format!(
                        "The capture dropped {:.2} % of packets ({dropped} of {}): tonight's numbers undercount.",
                        c.drop_ratio * 100.0,
                        c.received + c.dropped_kernel + c.dropped_interface
                    ),
                    ..Finding::new("capture", &c.interface, "drops")
                }
                .num("dropped", dropped as f64)
                .num("drop_ratio", c.drop_ratio),
            );
        }
    }
    for f in &s.floods {
        if f.kind == "scan" {
            out.push(
                Finding {
                    rank: 65,
                    sentence: format!(
                        "{} scanned {} addresses on {} ports in {} packets.",
                        labels.device(&f.src),
                        f.destinations,
                        f.ports,
                        f.packets
                    ),
                    device_name: labels.device_name(&f.src).map(str::to_string),
                    ..Finding::new("scan", &f.src, "")
                }
                .num("destinations", f.destinations as f64)
                .num("ports", f.ports as f64)
                .num("packets", f.packets as f64),
            );
        } else {
            out.push(
                Finding {
                    rank: 75,
                    sentence: format!(
                        "A flood from {} spoofed local source addresses ({} MACs, {} made up) sent {} packets to {} addresses.",
                        f.sources, f.macs, f.local_macs, f.packets, f.destinations
                    ),
                    ..Finding::new("flood", f.top_macs.first().map_or("", String::as_str), "")
                }
                .num("sources", f.sources as f64)
                .num("packets", f.packets as f64)
                .num("macs", f.macs as f64),
            );
        }
    }
    for p in &s.pings {
        if p.unanswered >= cfg.ping_unanswered_min.max(1) {
            out.push(
                Finding {
                    rank: LOWEST_RANK,
                    sentence: format!(
                        "{} sent {} pings and {} went unanswered.",
                        labels.device(&p.src),
                        p.requests,
                        p.unanswered
                    ),
                    device_name: labels.device_name(&p.src).map(str::to_string),
                    ..Finding::new("unanswered-pings", &p.src, "")
                }
                .num("requests", p.requests as f64)
                .num("unanswered", p.unanswered as f64),
            );
        }
    }
    out
}
