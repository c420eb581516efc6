//! `[budget]`: limits shared by all jobs, in total and per storage server.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::cpu::{CpuShare, CPU_ACCEPTED};
use crate::model::{BudgetSettings, ServerLimits};
use crate::origins::Leaf;
use crate::rate::{RateSchedule, RATE_ACCEPTED};
use crate::validate::Validator;
use crate::values::parse_absolute_schedule;

const BUDGET_KEYS: &[&str] = &[
    "upload",
    "download",
    "cpu",
    "server.NAME.upload",
    "server.NAME.download",
];

impl Validator<'_> {
    pub(crate) fn budget(&mut self, leaves: &[Leaf]) -> BudgetSettings {
        let mut budget = BudgetSettings::default();
        let mut servers: BTreeMap<String, (Option<RateSchedule>, Option<RateSchedule>)> =
            BTreeMap::new();
        for leaf in leaves {
            let full = format!("budget.{}", leaf.key);
            match leaf.key.as_str() {
                "upload" | "download" => {
                    let parsed = self.field(
                        Some(leaf),
                        &full,
                        None,
                        parse_absolute_schedule,
                        RATE_ACCEPTED,
                    );
                    if let Some(s) = parsed {
                        if leaf.key == "upload" {
                            budget.upload = s;
                        } else {
                            budget.download = s;
                        }
                    }
                }
                "cpu" => {
                    if let Some(c) =
                        self.field(Some(leaf), &full, None, CpuShare::from_str, CPU_ACCEPTED)
                    {
                        budget.cpu = c;
                    }
                }
                other => {
                    let parts: Vec<&str> = other.split('.').collect();
                    match parts.as_slice() {
                        ["server", name, dir @ ("upload" | "download")] => {
                            let parsed = self.field(
                                Some(leaf),
                                &full,
                                None,
                                parse_absolute_schedule,
                                RATE_ACCEPTED,
                            );
                            let entry = servers.entry(name.to_string()).or_default();
                            if *dir == "upload" {
                                entry.0 = parsed;
                            } else {
                                entry.1 = parsed;
                            }
                        }
                        _ => self.unknown_key("budget", leaf, other, BUDGET_KEYS),
                    }
                }
            }
        }
        budget.servers = servers
            .into_iter()
            .map(|(name, (up, down))| {
                (
                    name,
                    ServerLimits {
                        upload: up.unwrap_or_else(RateSchedule::unlimited),
                        download: down.unwrap_or_else(RateSchedule::unlimited),
                    },
                )
            })
            .collect();
        budget
    }
}
