//! A training protocol as data: where the backbone starts, what is frozen, dropout, rate.

use serde::{Deserialize, Serialize};

use crate::error::RecordError;

/// Where the convolutional backbone of a target-task run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneStart {
    /// Fresh Xavier-uniform weights.
    Fresh,
    /// The weights of the model pretrained on the source task for the same repetition.
    Pretrained,
}

/// One way of training the target task (docs/protocol.md section 5). A new combination, such as a
/// pretrained, fine-tuned backbone with dropout, is a new value of this struct, not new code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Short name used in file names, tables and on the command line.
    pub name: String,
    /// Where the backbone starts.
    pub backbone: BackboneStart,
    /// Whether conv1 and conv2 are frozen (no gradient, no optimizer state, unchanged).
    pub freeze_backbone: bool,
    /// Dropout probability on the flattened features and on fc1's output (0 = none).
    pub dropout: f64,
    /// Adam's learning rate.
    pub learning_rate: f64,
}

impl Protocol {
    /// The four protocols of the study, in the report's order.
    pub const PRESET_NAMES: [&'static str; 4] = ["raw", "frozen", "finetune", "dropout"];

    /// A named preset: `raw`, `frozen`, `finetune` or `dropout`.
    pub fn preset(name: &str) -> Option<Protocol> {
        let (backbone, freeze_backbone, dropout, learning_rate) = match name {
            "raw" => (BackboneStart::Fresh, false, 0.0, 1e-3),
            "frozen" => (BackboneStart::Pretrained, true, 0.0, 1e-3),
            "finetune" => (BackboneStart::Pretrained, false, 0.0, 3e-4),
            "dropout" => (BackboneStart::Fresh, false, 0.5, 1e-3),
            _ => return None,
        };
        Some(Protocol {
            name: name.to_owned(),
            backbone,
            freeze_backbone,
            dropout,
            learning_rate,
        })
    }

    /// The four presets, in the report's order.
    pub fn presets() -> Vec<Protocol> {
        Self::PRESET_NAMES
            .iter()
            .filter_map(|n| Self::preset(n))
            .collect()
    }

    /// The protocol called `name` among `extra` (user-defined) or the presets.
    pub fn resolve(name: &str, extra: &[Protocol]) -> Result<Protocol, RecordError> {
        extra
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .or_else(|| Self::preset(name))
            .ok_or_else(|| {
                let mut accepted: Vec<&str> = Self::PRESET_NAMES.to_vec();
                accepted.extend(extra.iter().map(|p| p.name.as_str()));
                RecordError::UnknownProtocol {
                    name: name.to_owned(),
                    accepted: accepted.join(", "),
                }
            })
    }

    /// Whether the protocol needs a model pretrained on the source task.
    pub fn needs_pretraining(&self) -> bool {
        self.backbone == BackboneStart::Pretrained
    }

    /// Checks the values: a usable name, dropout in [0, 1), a positive finite rate, and no
    /// frozen fresh backbone (it would never learn features).
    pub fn validate(&self) -> Result<(), RecordError> {
        let bad = |what: String| {
            Err(RecordError::Invalid(format!(
                "protocol '{}': {what}",
                self.name
            )))
        };
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return bad("the name must be letters, digits, '-' or '_'".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is outside [0, 1)", self.dropout));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate {} is not a finite number above 0",
                self.learning_rate
            ));
        }
        if self.freeze_backbone && self.backbone == BackboneStart::Fresh {
            return bad("a frozen backbone must start pretrained".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_spec_table() {
        let p = Protocol::presets();
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|p| p.validate().is_ok()));
        let finetune = Protocol::preset("finetune").unwrap();
        assert_eq!(finetune.learning_rate, 3e-4);
        assert!(!finetune.freeze_backbone && finetune.needs_pretraining());
        assert_eq!(Protocol::preset("dropout").unwrap().dropout, 0.5);
    }

    #[test]
    fn unknown_names_list_what_is_accepted() {
        let err = Protocol::resolve("nope", &[]).unwrap_err().to_string();
        assert!(err.contains("raw, frozen, finetune, dropout"), "{err}");
    }

    #[test]
    fn invalid_protocols_are_refused() {
        let mut p = Protocol::preset("raw").unwrap();
        p.dropout = 1.0;
        assert!(p.validate().is_err());
        p.dropout = 0.0;
        p.freeze_backbone = true;
        assert!(p.validate().is_err());
        p.freeze_backbone = false;
        for bad in [f64::INFINITY, f64::NAN, 0.0, -1e-3] {
            p.learning_rate = bad;
            let err = p.validate().unwrap_err().to_string();
            assert!(err.contains("not a finite number above 0"), "{err}");
        }
    }
}
