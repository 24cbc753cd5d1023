//! The night's shape in time: packet index -> offset in the window, following a
//! night-shaped intensity (busy evening and morning, quiet at 3am), and how much
//! people (not machines) use the network at each point of the window.
//!
//! Invariant: the map is monotonic, so timestamps that follow it only increase.

/// Relative traffic intensity at window fractions 0, 1/8, ..., 1 (22:00 .. 06:00).
const INTENSITY: [f64; 9] = [1.0, 0.85, 0.55, 0.3, 0.18, 0.14, 0.2, 0.45, 0.8];
/// How much people (not machines) use the network, same knots.
pub(crate) const HUMAN: [f64; 9] = [1.0, 0.8, 0.45, 0.15, 0.05, 0.03, 0.06, 0.35, 0.85];

pub(crate) fn knots(k: &[f64; 9], x: f64) -> f64 {
    let p = (x.clamp(0.0, 1.0)) * 8.0;
    let i = (p as usize).min(7);
    let f = p - i as f64;
    k[i] + (k[i + 1] - k[i]) * f
}

pub(crate) const INV_STEPS: usize = 4096;
/// Packets a burst may have at most (the time map keeps room for one after the last).
pub(crate) const MAX_BURST: u64 = 256;

/// `inv[i]` is the window offset (µs) by which a fraction `i / INV_STEPS` of all
/// traffic has been sent.
pub(crate) fn inverse_cdf(dur_us: u64) -> Vec<u64> {
    const G: usize = 1 << 16;
    let mut cum = Vec::with_capacity(G + 1);
    let mut acc = 0.0;
    cum.push(0.0);
    for g in 0..G {
        acc += knots(&INTENSITY, (g as f64 + 0.5) / G as f64);
        cum.push(acc);
    }
    let total = acc;
    let mut inv = Vec::with_capacity(INV_STEPS + 1);
    let mut g = 0;
    for i in 0..=INV_STEPS {
        let want = total * i as f64 / INV_STEPS as f64;
        while g < G - 1 && cum[g + 1] < want {
            g += 1;
        }
        let seg = cum[g + 1] - cum[g];
        let f = if seg > 0.0 {
            ((want - cum[g]) / seg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let x = (g as f64 + f) / G as f64;
        inv.push(((x * dur_us as f64) as u64).min(dur_us));
    }
    inv
}
