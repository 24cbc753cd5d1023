//! The generator's only source of randomness: splitmix64, seeded from the spec.
//!
//! Invariant: the same seed gives the same sequence on every platform (integer
//! arithmetic only), which is what makes a night's bytes reproducible.

#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// One of `items`, uniformly (one draw of [`Rng::below`]).
    pub(crate) fn pick<T: Copy, const N: usize>(&mut self, items: [T; N]) -> T {
        const { assert!(N > 0, "nothing to pick from") };
        items[self.below(N as u64) as usize]
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub(crate) fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
    pub(crate) fn u16(&mut self) -> u16 {
        self.next() as u16
    }
    pub(crate) fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}
