//! Automatic snapshot retention (`retain`): the schedule, label names and
//! the stateless planner the daemon's clock calls.
//!
//! # Schedule syntax
//!
//! A schedule is a white-space-separated list of items `[count]@[interval]unit`:
//!
//! * `unit` is `m` (minute), `h` (hour) or `d` (day);
//! * `interval` (default 1) is how many units apart snapshots are, at least 1;
//! * `count` (default 0) is how many snapshots of that unit to keep; 0 (or
//!   omitted) keeps them forever.
//!
//! A schedule has at most one slot per unit; a later item for a unit
//! replaces an earlier one. The empty string means no automatic snapshots.
//! The default, [`DEFAULT`], is `60@1m 24@1h @1d` (the reference writes
//! `60@m 24@h @d`, which parses to the same schedule). Any malformed item
//! (no `@`, no or an unknown unit, a zero or negative interval, a negative
//! count, a number that does not fit 32 bits, stray characters) is an error
//! naming the item; the reference aborted on an item without a unit
//! (defect #17).
//!
//! # Labels
//!
//! An automatic snapshot of the tree labelled `base` is labelled
//! `<base>@<minute|hour|day>.<YYYY.MM.DD_hh:mm:ss>`, the time of the snapshot
//! in UTC ([`label_name`], [`parse_label`]).
//!
//! # Planning
//!
//! [`plan`] is a pure function of the schedule, the base label, the labels
//! that exist now and the current Unix time; it keeps no state, so the
//! daemon, a restart and offline tools all agree. For each slot (`period`
//! = interval × 60, 3600 or 86400 seconds), looking only at the existing
//! labels `<base>@<unit>.…` of that slot's unit:
//!
//! * `last` is the time of the newest such label;
//! * if `now < last` the clock went backwards: the slot takes and deletes
//!   nothing until `now` reaches a later period than `last`;
//! * the slot is due when it has no label, or when a multiple of `period`
//!   seconds since the Unix epoch lies in `(last, now]`, that is
//!   `now / period > last / period` (period boundaries are therefore
//!   aligned to UTC midnight for days); a due slot takes one label named for
//!   `now`, so a slot never takes two snapshots in one period and calling
//!   `plan` again after applying its result takes nothing;
//! * with `count > 0`, the oldest labels of the slot beyond `count`
//!   (counting the one being taken) are deleted; `count == 0` never deletes.
//!
//! Labels of other bases, of units that are not in the schedule, and
//! anything that does not parse as an automatic label are never touched.
//! The caller applies the takes first, then the deletes.

mod label;
mod plan;

pub use label::{label_name, parse_label};
pub use plan::{label_prefixes, plan, Plan};

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The schedule used when no `retain` key is set.
pub const DEFAULT: &str = "60@1m 24@1h @1d";

/// The unit of a retention slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// 60 seconds.
    Minute,
    /// 3600 seconds.
    Hour,
    /// 86400 seconds.
    Day,
}

impl Unit {
    /// All units, shortest first (the order of a schedule's slots).
    pub const ALL: [Unit; 3] = [Unit::Minute, Unit::Hour, Unit::Day];

    /// The unit's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86400,
        }
    }

    /// The word used in label names: `minute`, `hour` or `day`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        }
    }

    /// The letter used in schedules: `m`, `h` or `d`.
    pub fn letter(self) -> char {
        match self {
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
        }
    }

    /// The unit whose label word is `name`.
    pub fn from_name(name: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Unit::Minute => 0,
            Unit::Hour => 1,
            Unit::Day => 2,
        }
    }
}

/// One slot of a schedule: snapshots every `every` units, keeping `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The unit.
    pub unit: Unit,
    /// Units between snapshots; at least 1.
    pub every: u32,
    /// Snapshots to keep; 0 keeps them all.
    pub keep: u32,
}

impl Slot {
    /// The slot's period in seconds (`every` × the unit's length; never 0
    /// for a parsed slot, and never overflows).
    pub fn period(&self) -> u64 {
        u64::from(self.every).max(1) * self.unit.seconds()
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keep > 0 {
            write!(f, "{}", self.keep)?;
        }
        write!(f, "@{}{}", self.every, self.unit.letter())
    }
}

/// A retention schedule: at most one [`Slot`] per [`Unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Indexed by [`Unit::index`].
    slots: [Option<Slot>; 3],
}

impl Schedule {
    /// The schedule that takes no snapshots.
    pub const NONE: Schedule = Schedule { slots: [None; 3] };

    /// Parse a schedule (see the module documentation for the syntax).
    pub fn parse(s: &str) -> Result<Schedule> {
        let mut sched = Schedule::NONE;
        for item in s.split_whitespace() {
            sched.set(parse_item(item)?);
        }
        Ok(sched)
    }

    /// Set (or replace) the slot of `slot.unit`.
    fn set(&mut self, slot: Slot) {
        if let Some(s) = self.slots.get_mut(slot.unit.index()) {
            *s = Some(slot);
        }
    }

    /// The slot for `unit`, if the schedule has one.
    pub fn slot(&self, unit: Unit) -> Option<&Slot> {
        self.slots.get(unit.index()).and_then(Option::as_ref)
    }

    /// The slots, shortest unit first.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    /// Whether the schedule takes no snapshots.
    pub fn is_empty(&self) -> bool {
        self.slots().next().is_none()
    }

    /// In words: "a snapshot every minute (the last 60 kept), every 2 hours
    /// (the last 24 kept), every day (all kept)", or "no automatic
    /// snapshots".
    pub fn describe(&self) -> String {
        let items: Vec<String> = self
            .slots()
            .map(|s| {
                let every = match s.every {
                    1 => format!("every {}", s.unit.name()),
                    n => format!("every {n} {}s", s.unit.name()),
                };
                match s.keep {
                    0 => format!("{every} (all kept)"),
                    n => format!("{every} (the last {n} kept)"),
                }
            })
            .collect();
        if items.is_empty() {
            "no automatic snapshots".into()
        } else {
            format!("a snapshot {}", items.join(", "))
        }
    }
}

impl Default for Schedule {
    /// The schedule [`DEFAULT`] describes.
    fn default() -> Schedule {
        let slot = |unit, keep| {
            Some(Slot {
                unit,
                every: 1,
                keep,
            })
        };
        Schedule {
            slots: [
                slot(Unit::Minute, 60),
                slot(Unit::Hour, 24),
                slot(Unit::Day, 0),
            ],
        }
    }
}

impl fmt::Display for Schedule {
    /// The canonical form: one item per slot, shortest unit first, interval
    /// always written, count written when non-zero; "" for no slots.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, slot) in self.slots().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{slot}")?;
        }
        Ok(())
    }
}

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(s: &str) -> Result<Schedule> {
        Schedule::parse(s)
    }
}

/// Parse one item `[count]@[interval]unit`.
fn parse_item(item: &str) -> Result<Slot> {
    let err = |why: &str| Error::Invalid(format!("retain item {item:?}: {why}"));
    let (count, rest) = item.split_once('@').ok_or_else(|| err("missing '@'"))?;
    let keep = if count.is_empty() {
        0
    } else {
        number(count).map_err(|why| err(&format!("count {why}")))?
    };
    let (at, last) = rest
        .char_indices()
        .last()
        .ok_or_else(|| err("missing unit (m, h or d)"))?;
    let unit = match last {
        'm' => Unit::Minute,
        'h' => Unit::Hour,
        'd' => Unit::Day,
        c if c.is_ascii_digit() => return Err(err("missing unit (m, h or d)")),
        c => return Err(err(&format!("unknown unit {c:?} (m, h or d)"))),
    };
    let interval = rest.get(..at).unwrap_or_default();
    let every = if interval.is_empty() {
        1
    } else {
        number(interval).map_err(|why| err(&format!("interval {why}")))?
    };
    if every == 0 {
        return Err(err("interval must be at least 1"));
    }
    Ok(Slot { unit, every, keep })
}

/// A decimal number of ASCII digits that fits a `u32`.
fn number(s: &str) -> std::result::Result<u32, String> {
    if s.starts_with('-') {
        return Err(format!("{s:?} is negative"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a decimal number"));
    }
    s.parse()
        .map_err(|_| format!("{s:?} does not fit in 32 bits"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn slot(unit: Unit, every: u32, keep: u32) -> Slot {
        Slot { unit, every, keep }
    }

    #[test]
    fn default_schedule() {
        let d = Schedule::parse(DEFAULT).unwrap();
        assert_eq!(d, Schedule::default());
        assert_eq!(Schedule::parse("60@m 24@h @d").unwrap(), d);
        assert_eq!(d.to_string(), DEFAULT);
        assert_eq!(d.slot(Unit::Minute), Some(&slot(Unit::Minute, 1, 60)));
        assert_eq!(d.slot(Unit::Hour), Some(&slot(Unit::Hour, 1, 24)));
        assert_eq!(d.slot(Unit::Day), Some(&slot(Unit::Day, 1, 0)));
    }

    #[test]
    fn parse_valid() {
        use Unit::{Day, Hour, Minute};
        let cases: &[(&str, &[Slot])] = &[
            ("", &[]),
            ("  \t\n", &[]),
            ("@m", &[slot(Minute, 1, 0)]),
            ("0@m", &[slot(Minute, 1, 0)]),
            ("5@15m", &[slot(Minute, 15, 5)]),
            ("007@02h", &[slot(Hour, 2, 7)]),
            ("3@d 1@2d", &[slot(Day, 2, 1)]),
            (
                "1@d 2@h 3@m",
                &[slot(Minute, 1, 3), slot(Hour, 1, 2), slot(Day, 1, 1)],
            ),
            (" 10@m\t2@h\n", &[slot(Minute, 1, 10), slot(Hour, 1, 2)]),
            ("4294967295@4294967295d", &[slot(Day, u32::MAX, u32::MAX)]),
        ];
        for (text, want) in cases {
            let s = Schedule::parse(text).unwrap();
            let got: Vec<Slot> = s.slots().copied().collect();
            assert_eq!(&got, want, "{text:?}");
            assert_eq!(s.is_empty(), want.is_empty());
            assert_eq!(text.parse::<Schedule>().unwrap(), s);
        }
    }

    #[test]
    fn parse_invalid() {
        // (text, fragment of the message)
        let cases = [
            ("60m", "\"60m\": missing '@'"),
            ("60", "missing '@'"),
            ("60@", "\"60@\": missing unit"),
            ("@", "missing unit"),
            ("60@1", "\"60@1\": missing unit"),
            ("60@1x", "unknown unit 'x'"),
            ("60@1M", "unknown unit 'M'"),
            ("60@1mm", "interval \"1m\" is not a decimal number"),
            ("60@0m", "interval must be at least 1"),
            ("60@00m", "interval must be at least 1"),
            ("60@-1m", "interval \"-1\" is negative"),
            ("-1@m", "count \"-1\" is negative"),
            ("a@m", "count \"a\" is not a decimal number"),
            ("+1@m", "is not a decimal number"),
            ("60@+1m", "is not a decimal number"),
            ("1@@m", "is not a decimal number"),
            ("4294967296@m", "does not fit in 32 bits"),
            ("@99999999999d", "does not fit in 32 bits"),
            ("60@1m 24@h garbage", "\"garbage\": missing '@'"),
            ("60@ 1m", "\"60@\": missing unit"),
            ("1@é", "unknown unit 'é'"),
        ];
        for (text, want) in cases {
            match Schedule::parse(text) {
                Err(Error::Invalid(msg)) => {
                    assert!(msg.contains(want), "{text:?}: {msg:?} lacks {want:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    /// Defect #17 postmortem: the reference's retain parser assumed every
    /// item ends in a unit letter; `60@` or `60@1` reached an abort at mount
    /// time and took the server down. An item without a unit is an error.
    #[test]
    fn regression_defect_17_item_without_unit_is_an_error() {
        for text in ["60@", "60@1", "@", "24@h 60@5", "60@1 24@h"] {
            let err = Schedule::parse(text).unwrap_err();
            assert!(err.to_string().contains("missing unit"), "{text:?}: {err}");
        }
    }

    #[test]
    fn display_is_canonical() {
        let s = Schedule::parse("@2d 0@h 5@m").unwrap();
        assert_eq!(s.to_string(), "5@1m @1h @2d");
        assert_eq!(Schedule::NONE.to_string(), "");
        assert_eq!(Schedule::parse("").unwrap(), Schedule::NONE);
    }

    #[test]
    fn period_never_overflows() {
        let s = slot(Unit::Day, u32::MAX, 0);
        assert_eq!(s.period(), u64::from(u32::MAX) * 86400);
        assert_eq!(slot(Unit::Minute, 0, 0).period(), 60);
    }

    fn arb_slot(unit: Unit) -> impl Strategy<Value = Option<Slot>> {
        prop::option::of(
            (1..=u32::MAX, any::<u32>()).prop_map(move |(every, keep)| Slot { unit, every, keep }),
        )
    }

    proptest! {
        #[test]
        fn prop_display_round_trips(
            m in arb_slot(Unit::Minute),
            h in arb_slot(Unit::Hour),
            d in arb_slot(Unit::Day),
        ) {
            let s = Schedule { slots: [m, h, d] };
            prop_assert_eq!(Schedule::parse(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn prop_parse_never_panics(text in "[0-9@mhdx +-]{0,40}|.{0,40}") {
            if let Ok(s) = Schedule::parse(&text) {
                prop_assert_eq!(Schedule::parse(&s.to_string()).unwrap(), s);
            }
        }
    }
}
