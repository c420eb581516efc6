//! One check's result, and how it is printed.

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, but probably not as meant, or risky.
    Warn,
    /// Stops tahoe-jobs (or a job) from working.
    Fail,
    /// Not looked at, because something it needs failed.
    Skipped,
}

/// One finding: the check's name, what was found, and for a problem how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: String,
    pub level: Level,
    pub message: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &str, message: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn fail(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn warn(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skipped(check: &str, message: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level: Level::Skipped,
            message: message.into(),
            fix: None,
        }
    }

    /// `  FAIL  check: message` and an indented `fix:` line (multi-line messages indented).
    pub fn render(&self) -> String {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
            Level::Skipped => "skip",
        };
        let indent = "\n        ";
        let mut out = format!(
            "  {tag}  {}: {}\n",
            self.check,
            self.message.replace('\n', indent)
        );
        if let Some(fix) = &self.fix {
            out.push_str(&format!("        fix: {}\n", fix.replace('\n', indent)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_printed_with_its_fix_below_it() {
        let f = Finding::fail("node running", "nothing answers", "start it:\ntahoe run");
        assert_eq!(
            f.render(),
            "  FAIL  node running: nothing answers\n        fix: start it:\n        tahoe run\n"
        );
        assert_eq!(Finding::ok("x", "fine").render(), "  ok    x: fine\n");
    }
}
