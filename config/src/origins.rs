//! Where each value of the merged tree came from (file and line, environment variable,
//! command line), and the tree flattened into leaves that carry it.

use figment::value::{Dict, Tag, Value};
use figment::{Figment, Source};

use crate::ini::IniProvider;
use crate::load::{ENV_PREFIX, OVERRIDE_SOURCE};

/// Turns a value's tag into a human description of where it came from.
pub(crate) struct Origins<'a> {
    pub(crate) figment: &'a Figment,
    pub(crate) ini: Option<&'a IniProvider>,
}

impl Origins<'_> {
    pub(crate) fn describe(&self, tag: Tag, path: &str) -> String {
        let Some(md) = self.figment.get_metadata(tag) else {
            return "unknown source".into();
        };
        if md.name == "job file" {
            if let Some(ini) = self.ini {
                return match ini.line_of(path) {
                    Some(line) => format!("{} line {line}", ini.path().display()),
                    None => ini.path().display().to_string(),
                };
            }
        }
        if md.name.contains("environment") {
            let var = path
                .split('.')
                .map(str::to_uppercase)
                .collect::<Vec<_>>()
                .join("__");
            return format!("environment variable {ENV_PREFIX}{var}");
        }
        if md.name == OVERRIDE_SOURCE {
            return format!("command line --set {path}");
        }
        match &md.source {
            Some(Source::File(p)) => format!("{} ({})", p.display(), md.name),
            _ => md.name.to_string(),
        }
    }
}

/// One leaf of the merged tree.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Path below the section: `b1.source`.
    pub(crate) key: String,
    pub(crate) text: Result<String, String>,
    pub(crate) origin: String,
}

fn value_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(_, s) => Ok(s.clone()),
        Value::Char(_, c) => Ok(c.to_string()),
        Value::Bool(_, b) => Ok(b.to_string()),
        Value::Num(_, n) => Ok(n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_u128().map(|u| u.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default()),
        Value::Array(_, items) => items
            .iter()
            .map(value_text)
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        Value::Empty(_, _) => Ok(String::new()),
        Value::Dict(_, _) => Err("expected a value, found a table".into()),
    }
}

pub(crate) fn flatten(
    section: &str,
    prefix: &str,
    dict: &Dict,
    origins: &Origins,
    out: &mut Vec<Leaf>,
) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Dict(_, inner) if !inner.is_empty() => {
                flatten(section, &key, inner, origins, out)
            }
            _ => out.push(Leaf {
                origin: origins.describe(v.tag(), &format!("{section}.{key}")),
                key,
                text: value_text(v),
            }),
        }
    }
}
