//! CPU share values: `25%` means a quarter of one core, `200%` two cores (systemd's CPUQuota
//! convention), `off` means no limit.

use std::fmt;
use std::str::FromStr;

/// What a CPU share may look like, for error messages.
pub const CPU_ACCEPTED: &str =
    "a share of one core such as 25% (100% = one core, 200% = two), or off";

/// A CPU limit as a fraction of one core; `None` inside means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShare(pub Option<f64>);

impl CpuShare {
    /// No CPU limit (`off`).
    pub const UNLIMITED: CpuShare = CpuShare(None);

    /// The limit as a fraction of one core (0.25 for `25%`), or `None` when unlimited.
    pub fn fraction(self) -> Option<f64> {
        self.0
    }
}

impl FromStr for CpuShare {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("unlimited") {
            return Ok(CpuShare(None));
        }
        let Some(number) = t.strip_suffix('%') else {
            return Err("a CPU share needs a % sign".into());
        };
        let pct: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{number:?} is not a number"))?;
        if !pct.is_finite() || pct <= 0.0 {
            return Err("the share must be more than 0%".into());
        }
        if pct > 100_000.0 {
            return Err("the share is implausibly large".into());
        }
        Ok(CpuShare(Some(pct / 100.0)))
    }
}

impl fmt::Display for CpuShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(x) => write!(f, "{}%", x * 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_percent_of_one_core() {
        assert_eq!("25%".parse::<CpuShare>().unwrap().fraction(), Some(0.25));
        assert_eq!(" 150 % ".parse::<CpuShare>().unwrap().fraction(), Some(1.5));
        assert_eq!("off".parse::<CpuShare>().unwrap().fraction(), None);
    }

    #[test]
    fn rejects_bad_shares() {
        for bad in ["25", "0%", "-5%", "x%", "", "NaN%", "inf%"] {
            assert!(bad.parse::<CpuShare>().is_err(), "{bad:?}");
        }
    }
}
