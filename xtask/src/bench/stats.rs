//! Minimum and median of repeated measurements, and how a figure compares with its target.

use serde_json::{Value, json};

/// Several measurements of one thing.
#[derive(Debug, Clone, Default)]
pub(super) struct Samples {
    pub values: Vec<f64>,
}

impl Samples {
    pub(super) fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub(super) fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }

    pub(super) fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }

    /// The middle value; the mean of the two middle ones for an even count.
    pub(super) fn median(&self) -> Option<f64> {
        let v = self.sorted();
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "n": self.values.len(),
            "min": self.min().map(round2),
            "median": self.median().map(round2),
            "max": self.max().map(round2),
            "samples": self.values.iter().copied().map(round2).collect::<Vec<_>>(),
        })
    }
}

pub(super) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Which side of the limit a target wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    AtMost,
    AtLeast,
}

/// One target of docs/DESIGN.md's "Performance targets", judged on this run's figures.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub key: &'static str,
    pub what: String,
    pub value: Option<f64>,
    pub bound: Bound,
    pub limit: f64,
    pub unit: &'static str,
    /// How the figure was obtained, or why it is missing.
    pub note: String,
}

impl Target {
    pub(super) fn met(&self) -> Option<bool> {
        let v = self.value?;
        Some(match self.bound {
            Bound::AtMost => v <= self.limit,
            Bound::AtLeast => v >= self.limit,
        })
    }

    /// By how much the figure misses the limit, in percent of the limit (None when met or not
    /// measured).
    pub(super) fn missed_by_percent(&self) -> Option<f64> {
        let v = self.value?;
        match self.bound {
            Bound::AtMost if v > self.limit => Some((v / self.limit - 1.0) * 100.0),
            Bound::AtLeast if v < self.limit => Some((1.0 - v / self.limit) * 100.0),
            _ => None,
        }
    }

    pub(super) fn verdict(&self) -> String {
        match (self.met(), self.missed_by_percent()) {
            (None, _) => "not measured".to_owned(),
            (Some(true), _) => "met".to_owned(),
            (Some(false), Some(p)) => format!("MISSED by {p:.1} %"),
            (Some(false), None) => "MISSED".to_owned(),
        }
    }

    pub(super) fn limit_text(&self) -> String {
        let op = match self.bound {
            Bound::AtMost => "<=",
            Bound::AtLeast => ">=",
        };
        format!("{op} {}{}", fmt_num(self.limit), self.unit)
    }

    pub(super) fn value_text(&self) -> String {
        match self.value {
            Some(v) => format!("{}{}", fmt_num(v), self.unit),
            None => "-".to_owned(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "what": self.what,
            "value": self.value.map(round2),
            "comparison": match self.bound { Bound::AtMost => "<=", Bound::AtLeast => ">=" },
            "limit": self.limit,
            "unit": self.unit.trim(),
            "met": self.met(),
            "missed_by_percent": self.missed_by_percent().map(round2),
            "note": self.note,
        })
    }
}

/// A number as a table shows it: no decimals from 100 up, thousands separated.
pub(super) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 100.0 {
        let s = format!("{:.0}", a);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Samples {
            values: vec![5.0, 1.0, 3.0],
        };
        assert_eq!(s.median(), Some(3.0));
        assert_eq!(s.min(), Some(1.0));
        let s = Samples {
            values: vec![4.0, 1.0, 3.0, 2.0],
        };
        assert_eq!(s.median(), Some(2.5));
        assert_eq!(Samples::default().median(), None);
    }

    #[test]
    fn missed_by_is_relative_to_the_limit() {
        let t = Target {
            key: "k",
            what: String::new(),
            value: Some(1.5),
            bound: Bound::AtMost,
            limit: 1.25,
            unit: "",
            note: String::new(),
        };
        assert_eq!(t.met(), Some(false));
        assert!((t.missed_by_percent().unwrap_or_default() - 20.0).abs() < 1e-9);
        let t = Target {
            value: Some(2.0),
            bound: Bound::AtLeast,
            limit: 3.0,
            ..t
        };
        assert!((t.missed_by_percent().unwrap_or_default() - 100.0 / 3.0).abs() < 1e-9);
        let t = Target {
            value: Some(3.0),
            ..t
        };
        assert_eq!(t.met(), Some(true));
        assert_eq!(t.missed_by_percent(), None);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt_num(13_642.4), "13,642");
        assert_eq!(fmt_num(152.6), "153");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(-1234.0), "-1,234");
    }
}
