//! Fault schedules: message omissions, crashes and late messages, the bounds they live under,
//! and the size of the fault space by Molly's formula.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Molly's failure specification: ticks `1..=eot`, omissions only of messages sent before
/// `eff`, at most `crashes` crashed nodes; beyond Molly, messages sent before `eff` may also
/// arrive up to `max_delay` ticks late (0, the default, is Molly's synchronous model).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Bounds {
    pub eot: u64,
    pub eff: u64,
    pub crashes: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_delay: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// One late channel: every message from `from` to `to` sent at `tick` arrives `by` ticks late
/// (at `tick + 1 + by`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Delay {
    pub from: String,
    pub to: String,
    pub tick: u64,
    pub by: u64,
}

/// One lost message: every message from `from` to `to` sent at `tick`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Drop {
    pub from: String,
    pub to: String,
    pub tick: u64,
}

/// One crash: `node` sends nothing from `tick` on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Crash {
    pub node: String,
    pub tick: u64,
}

/// A fault schedule. Crashes are keyed by node: at most one crash tick per node.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FaultSet {
    pub drops: BTreeSet<Drop>,
    pub crashes: BTreeMap<String, u64>,
    /// Late messages (only under `--max-delay`); at most one delay per channel and send tick
    /// in a schedule that is [`FaultSet::within`] its bounds.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub delays: BTreeSet<Delay>,
}

impl FaultSet {
    /// The number of faults (omissions, crashes and delays); candidates are explored smallest
    /// first.
    pub fn size(&self) -> usize {
        self.drops.len() + self.crashes.len() + self.delays.len()
    }

    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Drops omissions and delays made redundant by a crash of their sender at or before their
    /// tick, omissions and delays of a node's messages to itself (never lost or late), and
    /// delays of channels omitted at the same tick (the omission wins).
    pub fn normalise(&mut self) {
        let crashes = &self.crashes;
        let alive = |from: &String, tick: u64| crashes.get(from).is_none_or(|crash| *crash > tick);
        self.drops
            .retain(|drop| drop.from != drop.to && alive(&drop.from, drop.tick));
        let drops = &self.drops;
        self.delays.retain(|delay| {
            delay.from != delay.to
                && delay.by > 0
                && alive(&delay.from, delay.tick)
                && !drops.contains(&Drop {
                    from: delay.from.clone(),
                    to: delay.to.clone(),
                    tick: delay.tick,
                })
        });
    }

    /// The delays as the run configuration takes them, by channel and send tick.
    pub fn delay_map(&self) -> BTreeMap<(String, String, u64), u64> {
        self.delays
            .iter()
            .map(|delay| ((delay.from.clone(), delay.to.clone(), delay.tick), delay.by))
            .collect()
    }

    /// Whether two delays name the same channel and send tick (no run has both).
    fn delays_conflict(&self) -> bool {
        self.delays
            .iter()
            .zip(self.delays.iter().skip(1))
            .any(|(a, b)| a.from == b.from && a.to == b.to && a.tick == b.tick)
    }

    /// Whether the schedule respects the bounds: omissions and delays of messages sent at ticks
    /// `1..eff`, delays of `1..=max_delay` ticks and at most one per channel and send tick,
    /// crash ticks in `1..=eot`, at most `bounds.crashes` crashed nodes.
    pub fn within(&self, bounds: &Bounds) -> bool {
        !self.delays_conflict()
            && self.delays.iter().all(|delay| {
                delay.tick >= 1
                    && delay.tick < bounds.eff
                    && delay.by >= 1
                    && delay.by <= bounds.max_delay
            })
            && self.crashes.len() <= bounds.crashes
            && self
                .drops
                .iter()
                .all(|drop| drop.tick >= 1 && drop.tick < bounds.eff)
            && self
                .crashes
                .values()
                .all(|tick| *tick >= 1 && *tick <= bounds.eot)
    }

    /// The crashes as a list, sorted by node.
    pub fn crash_list(&self) -> Vec<Crash> {
        self.crashes
            .iter()
            .map(|(node, tick)| Crash {
                node: node.clone(),
                tick: *tick,
            })
            .collect()
    }

    /// Whether `self` contains every fault of `other`.
    pub fn contains(&self, other: &FaultSet) -> bool {
        other.drops.is_subset(&self.drops)
            && other.delays.is_subset(&self.delays)
            && other
                .crashes
                .iter()
                .all(|(node, tick)| self.crashes.get(node) == Some(tick))
    }
}

/// `drop a->b@1, crash c@2, delay a->c@1+2`, or `no faults`.
impl fmt::Display for FaultSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return formatter.write_str("no faults");
        }
        let mut parts: Vec<String> = self
            .drops
            .iter()
            .map(|drop| format!("drop {}->{}@{}", drop.from, drop.to, drop.tick))
            .collect();
        parts.extend(
            self.crashes
                .iter()
                .map(|(node, tick)| format!("crash {node}@{tick}")),
        );
        parts.extend(self.delays.iter().map(|delay| {
            format!(
                "delay {}->{}@{}+{}",
                delay.from, delay.to, delay.tick, delay.by
            )
        }));
        formatter.write_str(&parts.join(", "))
    }
}

/// A non-negative integer of any size, for fault-space counts (decimal digits in base 10⁹).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BigCount {
    /// Little-endian limbs, each below `BASE`; no trailing zero limbs (zero is empty).
    limbs: Vec<u64>,
}

const BASE: u64 = 1_000_000_000;

impl BigCount {
    pub fn from_u64(mut value: u64) -> BigCount {
        let mut limbs = Vec::new();
        while value > 0 {
            limbs.push(value % BASE);
            value /= BASE;
        }
        BigCount { limbs }
    }

    pub fn zero() -> BigCount {
        BigCount { limbs: Vec::new() }
    }

    pub fn one() -> BigCount {
        BigCount::from_u64(1)
    }

    pub fn add(&self, other: &BigCount) -> BigCount {
        let mut limbs = Vec::with_capacity(self.limbs.len().max(other.limbs.len()) + 1);
        let mut carry = 0;
        for index in 0..self.limbs.len().max(other.limbs.len()) {
            let sum = self.limbs.get(index).copied().unwrap_or(0)
                + other.limbs.get(index).copied().unwrap_or(0)
                + carry;
            limbs.push(sum % BASE);
            carry = sum / BASE;
        }
        if carry > 0 {
            limbs.push(carry);
        }
        BigCount { limbs }
    }

    pub fn mul(&self, other: &BigCount) -> BigCount {
        if self.limbs.is_empty() || other.limbs.is_empty() {
            return BigCount::zero();
        }
        let mut wide = vec![0_u128; self.limbs.len() + other.limbs.len() + 1];
        for (i, a) in self.limbs.iter().enumerate() {
            for (j, b) in other.limbs.iter().enumerate() {
                wide[i + j] += u128::from(*a) * u128::from(*b);
            }
            // Keep every cell small enough that the next row cannot overflow.
            let mut carry = 0_u128;
            for cell in wide.iter_mut() {
                let value = *cell + carry;
                *cell = value % u128::from(BASE);
                carry = value / u128::from(BASE);
            }
        }
        let mut limbs: Vec<u64> = wide
            .into_iter()
            .map(|cell| u64::try_from(cell).unwrap_or(0))
            .collect();
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
        BigCount { limbs }
    }

    pub fn pow(&self, mut exponent: u64) -> BigCount {
        let mut result = BigCount::one();
        let mut base = self.clone();
        while exponent > 0 {
            if exponent & 1 == 1 {
                result = result.mul(&base);
            }
            exponent >>= 1;
            if exponent > 0 {
                base = base.mul(&base);
            }
        }
        result
    }

    /// The value, when it fits in a `u64`.
    pub fn to_u64(&self) -> Option<u64> {
        let mut value: u64 = 0;
        for limb in self.limbs.iter().rev() {
            value = value.checked_mul(BASE)?.checked_add(*limb)?;
        }
        Some(value)
    }
}

impl fmt::Display for BigCount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((last, rest)) = self.limbs.split_last() else {
            return formatter.write_str("0");
        };
        write!(formatter, "{last}")?;
        for limb in rest.iter().rev() {
            write!(formatter, "{limb:09}")?;
        }
        Ok(())
    }
}

/// Binomial coefficient C(n, k) as an exact count.
fn binomial(n: u64, k: u64) -> BigCount {
    if k > n {
        return BigCount::zero();
    }
    // C(n, k) = prod_{i=1..k} (n - k + i) / i; every prefix product divides exactly, so compute
    // with u128 while it fits (it always does for node counts a verifier can run).
    let k = k.min(n - k);
    let mut value: u128 = 1;
    for i in 1..=u128::from(k) {
        value = value * (u128::from(n - k) + i) / i;
    }
    let high = u64::try_from(value >> 64).unwrap_or(0);
    let low = u64::try_from(value & u128::from(u64::MAX)).unwrap_or(0);
    BigCount::from_u64(high)
        .mul(&BigCount::from_u64(u64::MAX).add(&BigCount::one()))
        .add(&BigCount::from_u64(low))
}

/// The number of fault schedules under `bounds` with `nodes` nodes, by Molly's formula
/// (`FailureSpec.grossEstimate`): with s = 2^(n−1) outgoing-channel loss patterns per node per
/// round and c = min(crashes, n),
/// `C(n, c) · (s^EFF)^(n−c) · (Σ_{t=1..EOT+1} s^min(EFF, t−1))^c`. Under `--max-delay D` a
/// channel's messages of a tick are on time, lost or late by 1..=D: s = (2 + D)^(n−1).
pub fn fault_space(nodes: usize, bounds: &Bounds) -> BigCount {
    let n = nodes as u64;
    if n == 0 {
        return BigCount::one();
    }
    let c = (bounds.crashes as u64).min(n);
    let s = BigCount::from_u64(2_u64.saturating_add(bounds.max_delay)).pow(n - 1);
    let mut sum = BigCount::zero();
    for t in 1..=bounds.eot + 1 {
        sum = sum.add(&s.pow(bounds.eff.min(t - 1)));
    }
    binomial(n, c)
        .mul(&s.pow(bounds.eff).pow(n - c))
        .mul(&sum.pow(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(nodes: usize, eot: u64, eff: u64, crashes: usize) -> String {
        fault_space(
            nodes,
            &Bounds {
                eot,
                eff,
                crashes,
                max_delay: 0,
            },
        )
        .to_string()
    }

    #[test]
    fn fault_space_matches_hand_computed_values() {
        // n = 3, EFF = 0, c = 0: exactly one schedule (no faults).
        assert_eq!(space(3, 4, 0, 0), "1");
        // n = 3, s = 4, EOT = 3, EFF = 2, c = 0: (4^2)^3 = 4096.
        assert_eq!(space(3, 3, 2, 0), "4096");
        // n = 3, s = 4, EOT = 3, EFF = 2, c = 1: C(3,1) = 3; (4^2)^2 = 256;
        // Σ_{t=1..4} 4^min(2, t−1) = 1 + 4 + 16 + 16 = 37; 3 · 256 · 37 = 28416.
        assert_eq!(space(3, 3, 2, 1), "28416");
        // n = 4, s = 8, EOT = 5, EFF = 0, c = 1: C(4,1) · 1 · (Σ 8^0 over 6 ticks = 6) = 24.
        assert_eq!(space(4, 5, 0, 1), "24");
        // n = 2, s = 2, EOT = 2, EFF = 1, c = 2: C(2,2) · 1 · (1 + 2 + 2)^2 = 25.
        assert_eq!(space(2, 2, 1, 2), "25");
        // Late messages: n = 3, D = 2, s = 4^2 = 16 per node per round; EOT = 3, EFF = 2,
        // c = 0: (16^2)^3 = 16777216.
        let late = Bounds {
            eot: 3,
            eff: 2,
            crashes: 0,
            max_delay: 2,
        };
        assert_eq!(fault_space(3, &late).to_string(), "16777216");
    }

    #[test]
    fn fault_space_is_exact_beyond_u128() {
        // n = 6, s = 32, EFF = 10, c = 0: 32^(10·6) = 2^300.
        let expected = BigCount::from_u64(2).pow(300);
        assert_eq!(
            fault_space(
                6,
                &Bounds {
                    eot: 12,
                    eff: 10,
                    crashes: 0,
                    max_delay: 0,
                }
            ),
            expected
        );
        assert_eq!(
            expected.to_string(),
            "2037035976334486086268445688409378161051468393665936250636140449354381299763336706183397376"
        );
        assert_eq!(BigCount::from_u64(u64::MAX).to_u64(), Some(u64::MAX));
        assert_eq!(expected.to_u64(), None);
    }

    #[test]
    fn normalise_drops_omissions_covered_by_crashes() {
        let mut faults = FaultSet::default();
        faults.drops.insert(Drop {
            from: "a".into(),
            to: "b".into(),
            tick: 1,
        });
        faults.drops.insert(Drop {
            from: "a".into(),
            to: "b".into(),
            tick: 3,
        });
        faults.drops.insert(Drop {
            from: "b".into(),
            to: "b".into(),
            tick: 1,
        });
        faults.crashes.insert("a".into(), 2);
        faults.normalise();
        assert_eq!(faults.to_string(), "drop a->b@1, crash a@2");
    }
}
