//! What a benchmark reports, as one JSON document (`--json`) or a small
//! aligned table.
//!
//! JSON schema (version [`SCHEMA`]; field names are stable, new fields may
//! be added):
//!
//! ```text
//! { "schema": 1, "bench": "cache" | "alloc" | "tree",
//!   "params": { <flag>: <value>, ... },
//!   "phases": [ { "name", "description",
//!                 "ours": Run, "baseline": Run | null,
//!                 "ratio": ours.ops_per_sec / baseline.ops_per_sec | null,
//!                 "cpu_ratio": the same per CPU second | null,
//!                 "peers": [ { "run": Run, "ratio": ours/peer | null,
//!                              "cpu_ratio": ... | null } ] } ],
//!   "goals": [ { "name", "description", "threshold", "ratio", "applicable", "met" } ],
//!   "notes": [ "..." ] }
//! Run = { "implementation", "ops", "seconds", "ops_per_sec",
//!         "latency_ns": Latency, "latency_by_kind_ns": { <kind>: Latency },
//!         "counters": { <name>: number } }
//!   (counters include cpu_seconds, runqueue_wait_seconds and ops_per_cpu_sec
//!    where the CPU time of the run's threads is known)
//! Latency = { "count", "mean", "min", "p50", "p90", "p99", "p999", "max" }  (nanoseconds)
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::hist::{Histogram, Latency};

/// Version of the JSON layout.
pub const SCHEMA: u32 = 1;

/// One implementation's figures in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Which implementation ran ("gefs", "mutex-lru", "btreeset", "redb").
    pub implementation: String,
    /// Operations completed.
    pub ops: u64,
    /// Wall-clock seconds the operations took (all threads together).
    pub seconds: f64,
    /// `ops / seconds`.
    pub ops_per_sec: f64,
    /// Latency of the timed operations (every one, or a fixed sample; see
    /// the phase description).
    pub latency_ns: Latency,
    /// Latency split by kind of operation (for example "hit" and "miss",
    /// or "commit").
    pub latency_by_kind_ns: BTreeMap<String, Latency>,
    /// Other figures (hits, misses, bytes written per operation, ...).
    pub counters: BTreeMap<String, f64>,
}

impl Run {
    /// A run of `ops` operations over `seconds`, with its latency histogram.
    pub fn new(implementation: &str, ops: u64, seconds: f64, lat: &Histogram) -> Run {
        Run {
            implementation: implementation.to_string(),
            ops,
            seconds,
            ops_per_sec: if seconds > 0.0 {
                ops as f64 / seconds
            } else {
                0.0
            },
            latency_ns: lat.summary(),
            latency_by_kind_ns: BTreeMap::new(),
            counters: BTreeMap::new(),
        }
    }

    /// Add the latency of one kind of operation.
    pub fn kind(mut self, name: &str, h: &Histogram) -> Run {
        self.latency_by_kind_ns
            .insert(name.to_string(), h.summary());
        self
    }

    /// Add the CPU time the run's threads used, if it is known:
    /// `cpu_seconds`, `runqueue_wait_seconds` and `ops_per_cpu_sec`.
    pub fn cpu(self, c: &crate::cpu::Cpu) -> Run {
        if !c.known || c.run_ns == 0 {
            return self;
        }
        let secs = c.run_ns as f64 / 1e9;
        let per = self.ops as f64 / secs;
        self.counter("cpu_seconds", secs)
            .counter("runqueue_wait_seconds", c.wait_ns as f64 / 1e9)
            .counter("ops_per_cpu_sec", per)
    }

    /// Add a counter.
    pub fn counter(mut self, name: &str, v: f64) -> Run {
        self.counters.insert(name.to_string(), v);
        self
    }
}

/// One workload, run by ours and (usually) by the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Short name ("hit", "random-insert", ...).
    pub name: String,
    /// What the phase does and what is timed.
    pub description: String,
    /// Our implementation.
    pub ours: Run,
    /// The baseline, if the phase has one.
    pub baseline: Option<Run>,
    /// `ours.ops_per_sec / baseline.ops_per_sec`.
    pub ratio: Option<f64>,
    /// The same ratio per CPU second (`counters.ops_per_cpu_sec`), when
    /// both runs know their CPU time: the cost per operation, which other
    /// load on the machine disturbs less than wall-clock rates.
    pub cpu_ratio: Option<f64>,
    /// Further implementations measured beside the baseline (fjall beside
    /// redb), each with ours/it.
    pub peers: Vec<Peer>,
}

/// Another implementation run in a phase, with our ratio to it.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    /// Its figures.
    pub run: Run,
    /// `ours.ops_per_sec / run.ops_per_sec`.
    pub ratio: Option<f64>,
    /// The same per CPU second.
    pub cpu_ratio: Option<f64>,
}

/// `ours / base` by ops/s and by ops per CPU second.
fn ratios(ours: &Run, base: &Run) -> (Option<f64>, Option<f64>) {
    let ratio = (base.ops_per_sec > 0.0).then(|| ours.ops_per_sec / base.ops_per_sec);
    let per_cpu = |r: &Run| r.counters.get("ops_per_cpu_sec").copied();
    let cpu = match (per_cpu(ours), per_cpu(base)) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    (ratio, cpu)
}

impl Phase {
    /// A phase; the ratio is computed from the two runs.
    pub fn new(name: &str, description: &str, ours: Run, baseline: Option<Run>) -> Phase {
        let (ratio, cpu_ratio) = baseline.as_ref().map_or((None, None), |b| ratios(&ours, b));
        Phase {
            name: name.to_string(),
            description: description.to_string(),
            ours,
            baseline,
            ratio,
            cpu_ratio,
            peers: Vec::new(),
        }
    }

    /// Add another implementation's run of the same workload.
    pub fn peer(mut self, run: Run) -> Phase {
        let (ratio, cpu_ratio) = ratios(&self.ours, &run);
        self.peers.push(Peer {
            run,
            ratio,
            cpu_ratio,
        });
        self
    }

    /// Our ratio to the implementation named `name` (baseline or peer).
    pub fn ratio_to(&self, name: &str) -> Option<f64> {
        if let Some(b) = self.baseline.as_ref().filter(|b| b.implementation == name) {
            return ratios(&self.ours, b).0;
        }
        self.peers
            .iter()
            .find(|p| p.run.implementation == name)
            .and_then(|p| p.ratio)
    }
}

/// A performance goal the project set, and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// Short name.
    pub name: String,
    /// The goal in words.
    pub description: String,
    /// The ratio ours/baseline the goal asks for.
    pub threshold: f64,
    /// The ratio measured.
    pub ratio: f64,
    /// Whether this run's parameters are the ones the goal is stated for.
    pub applicable: bool,
    /// `ratio >= threshold`.
    pub met: bool,
}

impl Goal {
    /// A goal, judged.
    pub fn new(
        name: &str,
        description: &str,
        threshold: f64,
        ratio: f64,
        applicable: bool,
    ) -> Goal {
        Goal {
            name: name.to_string(),
            description: description.to_string(),
            threshold,
            ratio,
            applicable,
            met: ratio >= threshold,
        }
    }
}

/// Everything one benchmark run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The subcommand.
    pub bench: String,
    /// The parameters it ran with.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Its phases, in the order they ran.
    pub phases: Vec<Phase>,
    /// The goals it checks.
    pub goals: Vec<Goal>,
    /// Remarks on how to read the figures.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `bench`.
    pub fn new(bench: &str) -> Report {
        Report {
            schema: SCHEMA,
            bench: bench.to_string(),
            params: BTreeMap::new(),
            phases: Vec::new(),
            goals: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Record a parameter.
    pub fn param(&mut self, name: &str, v: impl Serialize) {
        let v = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
        self.params.insert(name.to_string(), v);
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "gefs-bench {}: {}", self.bench, params.join(" "));
        let mut rows = vec![[
            "phase",
            "impl",
            "ops",
            "ops/s",
            "ops/cpu-s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "ours/base",
            "(cpu)",
        ]
        .map(String::from)];
        for p in &self.phases {
            let x = |r: Option<f64>| r.map_or(String::new(), |r| format!("{r:.2}x"));
            rows.push(row(&p.name, &p.ours, &x(p.ratio), &x(p.cpu_ratio)));
            push_kinds(&mut rows, &p.ours);
            if let Some(b) = &p.baseline {
                rows.push(row("", b, "", ""));
                push_kinds(&mut rows, b);
            }
            for q in &p.peers {
                rows.push(row("", &q.run, &x(q.ratio), &x(q.cpu_ratio)));
                push_kinds(&mut rows, &q.run);
            }
        }
        out.push_str(&align(&rows));
        self.footer(&mut out);
        out
    }

    /// Counters, goals and notes, one line each.
    fn footer(&self, out: &mut String) {
        for p in &self.phases {
            let mut c: Vec<String> = Vec::new();
            let peers = p.peers.iter().map(|q| &q.run);
            for r in std::iter::once(&p.ours)
                .chain(p.baseline.as_ref())
                .chain(peers)
            {
                for (k, v) in &r.counters {
                    c.push(format!("{}.{k}={}", r.implementation, fmt_num(*v)));
                }
            }
            if !c.is_empty() {
                let _ = writeln!(out, "{}: {}", p.name, c.join(" "));
            }
        }
        for g in &self.goals {
            let verdict = match (g.applicable, g.met) {
                (true, true) => "MET",
                (true, false) => "NOT MET",
                (false, true) => "met (not the stated parameters)",
                (false, false) => "not met (not the stated parameters)",
            };
            let _ = writeln!(
                out,
                "goal {}: {}: ratio {:.2} vs {:.2} -> {verdict}",
                g.name, g.description, g.ratio, g.threshold
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
}

const COLS: usize = 12;

fn row(phase: &str, r: &Run, ratio: &str, cpu_ratio: &str) -> [String; COLS] {
    let l = &r.latency_ns;
    [
        phase.to_string(),
        r.implementation.clone(),
        fmt_count(r.ops),
        fmt_num(r.ops_per_sec),
        r.counters
            .get("ops_per_cpu_sec")
            .map_or(String::new(), |v| fmt_num(*v)),
        fmt_ns(l.p50),
        fmt_ns(l.p90),
        fmt_ns(l.p99),
        fmt_ns(l.p999),
        fmt_ns(l.max),
        ratio.to_string(),
        cpu_ratio.to_string(),
    ]
}

fn push_kinds(rows: &mut Vec<[String; COLS]>, r: &Run) {
    for (k, l) in r.latency_by_kind_ns.iter().filter(|(_, l)| l.count > 0) {
        rows.push([
            String::new(),
            format!("  {k}"),
            fmt_count(l.count),
            String::new(),
            String::new(),
            fmt_ns(l.p50),
            fmt_ns(l.p90),
            fmt_ns(l.p99),
            fmt_ns(l.p999),
            fmt_ns(l.max),
            String::new(),
            String::new(),
        ]);
    }
}

/// Left-align the first two columns, right-align the rest.
fn align(rows: &[[String; COLS]]) -> String {
    let mut w = [0usize; COLS];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i < 2 {
                let _ = write!(line, "{c:<width$}  ", width = w[i]);
            } else {
                let _ = write!(line, "{c:>width$}  ", width = w[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A duration in nanoseconds, in a readable unit.
pub fn fmt_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}us", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", f / 1e6)
    } else {
        format!("{:.2}s", f / 1e9)
    }
}

/// A count with a k/M/G suffix.
fn fmt_count(n: u64) -> String {
    fmt_num(n as f64)
}

/// A number with a k/M/G suffix (three significant figures).
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let (x, s) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if x.fract() == 0.0 && s.is_empty() {
        format!("{x}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}{s}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}{s}")
    } else {
        format!("{x:.2}{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_carry_every_figure() {
        let mut h = Histogram::new();
        h.record(1500);
        let ours = Run::new("gefs", 10, 2.0, &h)
            .kind("hit", &h)
            .counter("hits", 10.0);
        let base = Run::new("base", 5, 2.0, &h);
        let other = Run::new("other", 20, 2.0, &h);
        let mut r = Report::new("cache");
        r.param("threads", 2);
        r.phases
            .push(Phase::new("hit", "d", ours, Some(base)).peer(other));
        assert_eq!(r.phases[0].ratio_to("other"), Some(0.5));
        assert_eq!(r.phases[0].ratio_to("base"), Some(2.0));
        r.goals.push(Goal::new("g", "d", 1.0, 2.0, true));
        assert_eq!(r.phases[0].ratio, Some(2.0));
        let t = r.to_table();
        assert!(
            t.contains("2.00x") && t.contains("0.50x") && t.contains("1.5us") && t.contains("MET")
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(v["phases"][0]["ours"]["latency_ns"]["p50"], 1500);
        assert_eq!(v["goals"][0]["met"], true);
        assert_eq!(v["phases"][0]["peers"][0]["run"]["implementation"], "other");
        assert_eq!(v["phases"][0]["peers"][0]["ratio"], 0.5);
        assert_eq!(fmt_ns(2_500_000), "2.50ms");
        assert_eq!(fmt_num(1234.0), "1.23k");
    }
}
