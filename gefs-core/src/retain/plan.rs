//! The stateless retention planner (semantics in the [module
//! documentation](super)).

use super::{label_name, parse_label, Schedule, Slot, Unit};

/// What one clock tick should do: labels to create, then labels to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Labels to create, at most one per slot, shortest unit first; each is
    /// a snapshot of the base tree as of now.
    pub take: Vec<String>,
    /// Existing labels to delete, oldest first within each slot; never the
    /// base itself, a label of another base, or one of an unscheduled unit.
    pub delete: Vec<String>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.take.is_empty() && self.delete.is_empty()
    }
}

/// Plan automatic snapshots of `base` at `now_unix` (seconds since the
/// Unix epoch) given the labels that exist now (`existing`: every label of
/// the file system, or at least every label of `base`; unrelated ones are
/// ignored, duplicates are harmless).
pub fn plan<I, S>(schedule: &Schedule, base: &str, existing: I, now_unix: u64) -> Plan
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut by_unit: [Vec<(u64, String)>; 3] = Default::default();
    for label in existing {
        let label = label.as_ref();
        if let Some((unit, t)) = parse_label(base, label) {
            if let Some(v) = by_unit.get_mut(unit.index()) {
                v.push((t, label.to_owned()));
            }
        }
    }
    let mut out = Plan::default();
    for slot in schedule.slots() {
        let labels = by_unit
            .get_mut(slot.unit.index())
            .map(std::mem::take)
            .unwrap_or_default();
        plan_slot(slot, base, labels, now_unix, &mut out);
    }
    out
}

/// One slot: `labels` are the existing labels of its unit with their times.
fn plan_slot(slot: &Slot, base: &str, mut labels: Vec<(u64, String)>, now: u64, out: &mut Plan) {
    labels.sort_unstable();
    labels.dedup();
    let period = slot.period();
    let due = match labels.last() {
        None => true,
        // The clock went backwards: leave the slot alone until it passes
        // the newest label's period.
        Some(&(last, _)) if now < last => return,
        Some(&(last, _)) => now / period > last / period,
    };
    if due {
        out.take.push(label_name(base, slot.unit, now));
    }
    if slot.keep > 0 {
        let keep = usize::try_from(slot.keep).unwrap_or(usize::MAX);
        let excess = (labels.len() + usize::from(due)).saturating_sub(keep);
        out.delete
            .extend(labels.into_iter().take(excess).map(|(_, name)| name));
    }
}

/// Every unit's label prefix for `base`, for callers that list labels by
/// prefix: `<base>@minute.`, `<base>@hour.`, `<base>@day.`.
pub fn label_prefixes(base: &str) -> [String; 3] {
    Unit::ALL.map(|u| format!("{base}@{}.", u.name()))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;
    use crate::retain::DEFAULT;

    fn apply(labels: &mut BTreeSet<String>, p: &Plan, taken: &mut HashSet<String>) {
        for t in &p.take {
            assert!(labels.insert(t.clone()), "{t} taken while it exists");
            assert!(taken.insert(t.clone()), "{t} taken twice");
        }
        for d in &p.delete {
            assert!(labels.remove(d), "{d} deleted but absent");
            assert!(!p.take.contains(d), "{d} taken and deleted at once");
        }
    }

    fn of_unit(labels: &BTreeSet<String>, unit: Unit) -> Vec<u64> {
        let mut v: Vec<u64> = labels
            .iter()
            .filter_map(|l| parse_label("main", l))
            .filter(|&(u, _)| u == unit)
            .map(|(_, t)| t)
            .collect();
        v.sort_unstable();
        v
    }

    /// 2023-11-14 22:13:23 UTC: not on any boundary.
    const START: u64 = 1_700_000_003;

    #[test]
    fn steady_state_over_three_days() {
        let sched = Schedule::parse(DEFAULT).unwrap();
        let mut labels: BTreeSet<String> = ["main", "adm", "other@minute.2023.11.14_22:00:00"]
            .map(String::from)
            .into();
        let mut taken = HashSet::new();
        let end = START + 3 * 86400;
        let mut now = START;
        while now <= end {
            let p = plan(&sched, "main", &labels, now);
            apply(&mut labels, &p, &mut taken);
            // (An empty plan left the labels as they were: trivially idempotent.)
            if !p.is_empty() {
                let again = plan(&sched, "main", &labels, now);
                assert!(again.is_empty(), "not idempotent at {now}: {again:?}");
            }
            assert!(of_unit(&labels, Unit::Minute).len() <= 60);
            assert!(of_unit(&labels, Unit::Hour).len() <= 24);
            now += 5;
        }
        let now = now - 5;
        let minutes = of_unit(&labels, Unit::Minute);
        let hours = of_unit(&labels, Unit::Hour);
        let days = of_unit(&labels, Unit::Day);
        assert_eq!(minutes.len(), 60);
        assert_eq!(hours.len(), 24);
        assert!((3..=4).contains(&days.len()), "{days:?}");
        assert!(now - minutes[59] < 60);
        assert!(now - hours[23] < 3600);
        assert!(now - days[days.len() - 1] < 86400);
        // One label per period, each taken within one poll of the boundary.
        for w in minutes.windows(2) {
            assert_eq!(w[1] / 60, w[0] / 60 + 1);
            assert!(w[1] % 60 < 5);
        }
        for w in hours.windows(2) {
            assert_eq!(w[1] / 3600, w[0] / 3600 + 1);
        }
        // The first day label is the very first poll; the rest are midnights.
        assert_eq!(days[0], START);
        assert!(days[1..].iter().all(|t| t % 86400 < 5));
        // Untouched: the base, other trees, other bases.
        assert!(labels.contains("main") && labels.contains("adm"));
        assert!(labels.contains("other@minute.2023.11.14_22:00:00"));
        // Every minute of the three days was snapshotted once.
        let minute_takes = taken.iter().filter(|l| l.contains("@minute.")).count();
        assert_eq!(minute_takes, 3 * 24 * 60 + 1);
    }

    #[test]
    fn first_call_takes_every_slot() {
        let sched = Schedule::default();
        let p = plan(&sched, "main", Vec::<String>::new(), 60);
        assert_eq!(
            p.take,
            [
                "main@minute.1970.01.01_00:01:00",
                "main@hour.1970.01.01_00:01:00",
                "main@day.1970.01.01_00:01:00"
            ]
        );
        assert!(p.delete.is_empty());
        assert!(plan(&Schedule::NONE, "main", Vec::<String>::new(), 60).is_empty());
    }

    #[test]
    fn clock_jump_backwards() {
        let sched = Schedule::parse("5@m 3@h").unwrap();
        let mut labels = BTreeSet::new();
        let mut taken = HashSet::new();
        let mut now = START;
        while now < START + 4 * 3600 {
            let p = plan(&sched, "main", &labels, now);
            apply(&mut labels, &p, &mut taken);
            now += 5;
        }
        let before = labels.clone();
        let newest_minute = *of_unit(&labels, Unit::Minute).last().unwrap();
        // Two hours back: both slots are in the future, nothing happens,
        // however long the clock takes to catch up.
        let mut now = now - 2 * 3600;
        while now < newest_minute {
            let p = plan(&sched, "main", &labels, now);
            assert!(p.is_empty(), "at {now}: {p:?}");
            now += 5;
        }
        assert_eq!(labels, before);
        // Once past the newest minute label's period, minutes resume.
        let resume = (newest_minute / 60 + 1) * 60;
        let p = plan(&sched, "main", &labels, resume);
        assert_eq!(p.take, [label_name("main", Unit::Minute, resume)]);
        assert_eq!(p.delete.len(), 1);
        apply(&mut labels, &p, &mut taken);
        assert_eq!(of_unit(&labels, Unit::Minute).len(), 5);
        // The same with only the hour slot in the future: minutes carry on.
        let past_hour = of_unit(&labels, Unit::Hour)[2] - 1;
        let mut mixed: Vec<String> = labels
            .iter()
            .filter(|l| !l.contains("@minute."))
            .cloned()
            .collect();
        mixed.push("main@minute.1970.01.01_00:00:00".into());
        let p = plan(&sched, "main", &mixed, past_hour);
        assert_eq!(p.take, [label_name("main", Unit::Minute, past_hour)]);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn keep_zero_never_deletes_and_shrinking_trims() {
        let mut labels = BTreeSet::new();
        let mut taken = HashSet::new();
        let forever = Schedule::parse("@m").unwrap();
        for i in 0..90u64 {
            let p = plan(&forever, "main", &labels, START + i * 60);
            assert!(p.delete.is_empty());
            apply(&mut labels, &p, &mut taken);
        }
        assert_eq!(labels.len(), 90);
        // Shrinking to 5 trims the oldest at once, counting the new one...
        let small = Schedule::parse("5@m").unwrap();
        let due = plan(&small, "main", &labels, START + 90 * 60);
        assert_eq!(due.take.len(), 1);
        assert_eq!(due.delete.len(), 86);
        let oldest: Vec<&String> = labels.iter().take(86).collect();
        assert_eq!(due.delete.iter().collect::<Vec<_>>(), oldest);
        // ...and, when not due, keeps the newest 5.
        let idle = plan(&small, "main", &labels, START + 89 * 60 + 30);
        assert!(idle.take.is_empty());
        assert_eq!(idle.delete.len(), 85);
    }

    #[test]
    fn other_bases_and_slots_are_never_touched() {
        let labels = [
            "main",
            "main@week.2023.11.14_22:00:00",
            "main@hour.2023.11.14_22:00:00",
            "main@day.2023.11.14_00:00:00",
            "mainx@minute.2023.11.14_22:00:00",
            "other@minute.2023.11.14_22:00:00",
            "main@minute.2023.11.14_22:10:00",
            "main@minute.2023.11.14_22:11:00",
        ];
        let p = plan(&Schedule::parse("1@m").unwrap(), "main", labels, START);
        assert_eq!(p.take, [label_name("main", Unit::Minute, START)]);
        assert_eq!(
            p.delete,
            [
                "main@minute.2023.11.14_22:10:00",
                "main@minute.2023.11.14_22:11:00"
            ]
        );
    }

    #[test]
    fn intervals_align_to_epoch_multiples() {
        let sched = Schedule::parse("4@15m @2d").unwrap();
        let mut labels = BTreeSet::new();
        let mut taken = HashSet::new();
        let mut now = START;
        while now < START + 5 * 86400 {
            let p = plan(&sched, "main", &labels, now);
            apply(&mut labels, &p, &mut taken);
            now += 5;
        }
        assert_eq!(of_unit(&labels, Unit::Minute).len(), 4);
        let mut quarters: Vec<u64> = taken
            .iter()
            .filter_map(|l| parse_label("main", l))
            .filter(|&(u, _)| u == Unit::Minute)
            .map(|(_, t)| t)
            .collect();
        quarters.sort_unstable();
        assert!(quarters[1..].iter().all(|t| t % 900 < 5));
        assert_eq!(quarters.len(), 5 * 96 + 1);
        let days = of_unit(&labels, Unit::Day);
        assert!(days[1..].iter().all(|t| t % (2 * 86400) < 5));
        assert!((3..=4).contains(&days.len()), "{days:?}");
    }

    #[test]
    fn duplicates_in_input_are_harmless() {
        let l = "main@minute.2023.11.14_22:10:00";
        let p = plan(&Schedule::parse("1@m").unwrap(), "main", [l, l, l], START);
        assert_eq!(p.delete, [l]);
    }

    #[test]
    fn prefixes_match_label_names() {
        let names = label_prefixes("main");
        for (u, p) in Unit::ALL.iter().zip(&names) {
            assert!(label_name("main", *u, START).starts_with(p.as_str()));
        }
    }
}
