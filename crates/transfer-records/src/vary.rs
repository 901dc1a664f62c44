//! The sources of a run's randomness, and which of them change between repetitions.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::protocol::Protocol;

/// One source of randomness in a target-task run. Each draws from its own use of the run's
/// seed, so each can be held at repetition 0's draw while the others change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The fresh weights: the classifier's, and the backbone's where it starts fresh.
    Init,
    /// The order of the batches.
    Order,
    /// The dropout masks.
    Dropout,
    /// Which training images the run sees (a subset rule that draws them).
    Subset,
    /// Which pretrained backbone a run that starts from one uses.
    Pretraining,
}

impl Source {
    /// Every source, in the order reports list them.
    pub const ALL: [Source; 5] = [
        Source::Init,
        Source::Order,
        Source::Dropout,
        Source::Subset,
        Source::Pretraining,
    ];

    /// The source's name, as written in `vary`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Init => "init",
            Source::Order => "order",
            Source::Dropout => "dropout",
            Source::Subset => "subset",
            Source::Pretraining => "pretraining",
        }
    }

    /// Whether a run of `protocol` draws from this source at all (no dropout masks without
    /// dropout, no backbone choice for a protocol that starts fresh).
    pub fn read_by(self, protocol: &Protocol) -> bool {
        match self {
            Source::Dropout => protocol.dropout > 0.0,
            Source::Pretraining => protocol.needs_pretraining(),
            Source::Init | Source::Order | Source::Subset => true,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Source {
    type Err = RecordError;

    fn from_str(text: &str) -> Result<Source, RecordError> {
        Source::ALL
            .into_iter()
            .find(|s| s.name() == text.trim())
            .ok_or_else(|| {
                RecordError::Invalid(format!(
                    "vary: unknown source '{}' (accepted: {})",
                    text.trim(),
                    Source::ALL.map(Source::name).join(", ")
                ))
            })
    }
}

/// A set of sources: at least one, none twice, kept in [`Source::ALL`]'s order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Source>", into = "Vec<Source>")]
pub struct Sources(BTreeSet<Source>);

impl Sources {
    /// `sources`, refused when empty or when one is listed twice.
    pub fn new(sources: impl IntoIterator<Item = Source>) -> Result<Sources, RecordError> {
        let mut set = BTreeSet::new();
        for source in sources {
            if !set.insert(source) {
                return Err(RecordError::Invalid(format!(
                    "vary: {source} is listed twice"
                )));
            }
        }
        if set.is_empty() {
            return Err(RecordError::Invalid(
                "vary lists no source: every repetition would be the same run".into(),
            ));
        }
        Ok(Sources(set))
    }

    /// Every source, or every source but [`Source::Subset`] when the images are not drawn.
    pub(crate) fn variable(subset_drawn: bool) -> Sources {
        Sources(
            Source::ALL
                .into_iter()
                .filter(|&s| s != Source::Subset || subset_drawn)
                .collect(),
        )
    }

    /// Whether `source` is in the set.
    pub fn contains(&self, source: Source) -> bool {
        self.0.contains(&source)
    }

    /// The repetition whose draw of `source` repetition `repetition` uses when these sources
    /// vary: its own where `source` is in the set, repetition 0's where it is held.
    pub fn draw_of(&self, source: Source, repetition: u32) -> u32 {
        if self.contains(source) { repetition } else { 0 }
    }

    /// The sources, in [`Source::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = Source> + '_ {
        self.0.iter().copied()
    }
}

impl TryFrom<Vec<Source>> for Sources {
    type Error = RecordError;

    fn try_from(sources: Vec<Source>) -> Result<Sources, RecordError> {
        Sources::new(sources)
    }
}

impl From<Sources> for Vec<Source> {
    fn from(sources: Sources) -> Vec<Source> {
        sources.0.into_iter().collect()
    }
}

impl FromStr for Sources {
    type Err = RecordError;

    /// Names separated by commas or `+` (`init,order`, `init+order`).
    fn from_str(text: &str) -> Result<Sources, RecordError> {
        let names = text.split([',', '+']).filter(|n| !n.trim().is_empty());
        Sources::new(names.map(Source::from_str).collect::<Result<Vec<_>, _>>()?)
    }
}

impl fmt::Display for Sources {
    /// The names joined by `+`, as a sweep's point names them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Source::name).collect();
        f.write_str(&names.join("+"))
    }
}

/// The seeds a target-task run draws from, one for each of its sources. With every source
/// varied each is the run's own seed, as before sources could be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSeeds {
    /// Fresh weights.
    pub init: u64,
    /// The batches.
    pub order: u64,
    /// The dropout masks.
    pub dropout: u64,
    /// The draw of the training images (unused where the rule draws none).
    pub subset: u64,
    /// The repetition whose pretrained backbone the run starts from (where it starts from
    /// one).
    pub pretraining: u32,
}

impl RunSeeds {
    /// `seed` for every draw and `repetition`'s own backbone.
    pub fn all(seed: u64, repetition: u32) -> RunSeeds {
        RunSeeds {
            init: seed,
            order: seed,
            dropout: seed,
            subset: seed,
            pretraining: repetition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SubsetRule, TrainingSettings, run_seed, subset_seed};

    #[test]
    fn sources_parse_in_order_and_refuse_what_is_wrong() {
        let sources: Sources = "pretraining+init,order".parse().unwrap();
        assert_eq!(sources.to_string(), "init+order+pretraining");
        let json = serde_json::to_string(&sources).unwrap();
        assert_eq!(json, r#"["init","order","pretraining"]"#);
        assert_eq!(serde_json::from_str::<Sources>(&json).unwrap(), sources);
        for (text, error) in [
            ("init,seed", "unknown source 'seed'"),
            ("init,init", "init is listed twice"),
            ("", "lists no source"),
        ] {
            let err = text.parse::<Sources>().unwrap_err().to_string();
            assert!(err.contains(error), "{text}: {err}");
        }
        assert!(serde_json::from_str::<Sources>(r#"["order","order"]"#).is_err());
    }

    #[test]
    fn every_source_varied_is_the_runs_own_seed() {
        let settings = TrainingSettings::paper("flex");
        let seed = run_seed(2016, "frozen", 0.01, 3);
        assert_eq!(
            settings.run_seeds("frozen", 0.01, 3),
            RunSeeds::all(seed, 3)
        );
        assert!(settings.varies_all());
        assert!(!settings.variable_sources().contains(Source::Subset));
    }

    #[test]
    fn a_held_source_draws_as_repetition_0() {
        let settings = TrainingSettings {
            subset: SubsetRule::Drawn,
            vary: Some("order,subset".parse().unwrap()),
            ..TrainingSettings::paper("flex")
        };
        let (own, first) = (
            run_seed(2016, "raw", 0.01, 4),
            run_seed(2016, "raw", 0.01, 0),
        );
        let seeds = settings.run_seeds("raw", 0.01, 4);
        assert_eq!(
            (seeds.init, seeds.order, seeds.dropout),
            (first, own, first)
        );
        assert_eq!(seeds.subset, subset_seed(2016, 0.01, 4));
        assert_eq!(seeds.pretraining, 0);
        // One draw of the images for every protocol at a proportion and repetition.
        assert_eq!(settings.run_seeds("frozen", 0.01, 4).subset, seeds.subset);
        assert_ne!(settings.run_seeds("raw", 0.005, 4).subset, seeds.subset);
        assert!(settings.validate().is_ok());
        assert!(!settings.varies_all());
    }

    #[test]
    fn the_subset_cannot_vary_under_the_prefix_rule() {
        let settings = TrainingSettings {
            vary: Some("init,subset".parse().unwrap()),
            ..TrainingSettings::paper("flex")
        };
        let err = settings.validate().unwrap_err().to_string();
        assert!(
            err.contains("subset cannot vary under the prefix rule"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_list_of_every_variable_source_is_the_default() {
        let paper = TrainingSettings::paper("flex");
        let spelled = TrainingSettings {
            vary: Some("init,order,dropout,pretraining".parse().unwrap()),
            ..paper.clone()
        };
        assert_eq!(spelled.canonical(), paper);
        let drawn = TrainingSettings {
            subset: SubsetRule::Drawn,
            vary: Some("init,order,dropout,pretraining".parse().unwrap()),
            ..paper
        };
        assert!(drawn.clone().canonical().vary.is_some());
        assert_eq!(drawn.varied().to_string(), "init+order+dropout+pretraining");
    }
}
