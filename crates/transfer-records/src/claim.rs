//! Claims as data: what a study states about its results, to be tested and Holm-corrected by
//! the report like the published claims, which are written the same way.

use serde::{Deserialize, Serialize};

use crate::error::RecordError;

/// Every protocol of the study (in `better`), or every one but the other side's (in `than`).
pub const ALL: &str = "*";

/// What a claim tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimTest {
    /// Each protocol of `better` ends above each of `than` at every proportion listed.
    Better,
    /// Each protocol of `better` ends within `margin` of each of `than` (two one-sided tests).
    Equivalent,
    /// Each protocol of `better` ends higher at each proportion than at the next smaller one.
    MoreData,
}

/// One claim: `better` against `than` at `proportions`, by `test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// The claim in words, as the report states it.
    pub statement: String,
    /// What is tested.
    pub test: ClaimTest,
    /// The protocols claimed higher (or equal, or rising with data); `"*"` for all.
    pub better: Vec<String>,
    /// The protocols they are compared with; `"*"` for every other one (unused by
    /// `more-data`).
    #[serde(default)]
    pub than: Vec<String>,
    /// The proportions at which the claim is made (empty: all of the study's).
    #[serde(default)]
    pub proportions: Vec<f64>,
    /// Also require the gain of the first `better` protocol over the first `than` protocol
    /// to be largest at the smallest proportion (tested against each larger proportion's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub largest_at_smallest: bool,
    /// The equivalence margin of an `equivalent` claim (default: the study's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

impl ClaimSpec {
    fn new(statement: &str, test: ClaimTest, better: &[&str], than: &[&str]) -> ClaimSpec {
        ClaimSpec {
            statement: statement.to_owned(),
            test,
            better: better.iter().map(|s| s.to_string()).collect(),
            than: than.iter().map(|s| s.to_string()).collect(),
            proportions: Vec::new(),
            largest_at_smallest: false,
            margin: None,
        }
    }

    /// The published study's four claims, the default set.
    pub fn published() -> Vec<ClaimSpec> {
        vec![
            ClaimSpec::new(
                "More data gives higher accuracy (every protocol, each proportion against the next smaller one).",
                ClaimTest::MoreData,
                &[ALL],
                &[],
            ),
            ClaimSpec {
                largest_at_smallest: true,
                ..ClaimSpec::new(
                    "Pretrained features help, most at the smallest proportion (frozen and finetune against raw; the frozen gain must be largest at the smallest p).",
                    ClaimTest::Better,
                    &["frozen", "finetune"],
                    &["raw"],
                )
            },
            ClaimSpec::new(
                "Dropout beats raw training (at every proportion).",
                ClaimTest::Better,
                &["dropout"],
                &["raw"],
            ),
            ClaimSpec {
                proportions: vec![1.0],
                ..ClaimSpec::new(
                    "Pretraining plus fine-tuning is best at p = 1.",
                    ClaimTest::Better,
                    &["finetune"],
                    &[ALL],
                )
            },
        ]
    }

    /// Checks the claim against a study's protocols and proportions: every name and
    /// proportion it mentions must be the study's, and the sides must be set.
    pub fn validate(&self, protocols: &[&str], proportions: &[f64]) -> Result<(), RecordError> {
        let bad = |what: String| {
            Err(RecordError::Invalid(format!(
                "claim '{}': {what}",
                self.statement
            )))
        };
        if self.statement.trim().is_empty() {
            return Err(RecordError::Invalid("a claim needs a statement".into()));
        }
        if self.better.is_empty() {
            return bad("`better` names no protocol".into());
        }
        if self.test != ClaimTest::MoreData && self.than.is_empty() {
            return bad("`than` names no protocol".into());
        }
        for name in self.better.iter().chain(&self.than) {
            if name != ALL && !protocols.contains(&name.as_str()) {
                return bad(format!(
                    "protocol '{name}' is not in the study ({})",
                    protocols.join(", ")
                ));
            }
        }
        if self.test != ClaimTest::MoreData {
            let expand = |names: &[String]| -> Vec<String> {
                names
                    .iter()
                    .flat_map(|n| match n.as_str() {
                        ALL => protocols.iter().map(|p| p.to_string()).collect(),
                        _ => vec![n.clone()],
                    })
                    .collect()
            };
            let (better, than) = (expand(&self.better), expand(&self.than));
            if !better.iter().any(|a| than.iter().any(|b| a != b)) {
                return bad(format!(
                    "it compares {} with itself: `better` and `than` must name different protocols",
                    better.join(", ")
                ));
            }
        }
        for p in &self.proportions {
            if !proportions.contains(p) {
                return bad(format!(
                    "proportion {p} is not in the study ({proportions:?})"
                ));
            }
        }
        if let Some(m) = self.margin
            && !(m > 0.0 && m < 1.0)
        {
            return bad(format!("margin {m} is outside (0, 1)"));
        }
        if self.margin.is_some() && self.test != ClaimTest::Equivalent {
            return bad("a margin is only for an `equivalent` claim".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_claims_name_the_published_protocols() {
        let claims = ClaimSpec::published();
        assert_eq!(claims.len(), 4);
        let protocols = ["raw", "frozen", "finetune", "dropout"];
        for claim in &claims {
            claim
                .validate(&protocols, &[0.005, 0.01, 0.1, 1.0])
                .unwrap();
        }
    }

    #[test]
    fn a_claim_outside_the_study_is_refused_naming_what_is_wrong() {
        let mut claim = ClaimSpec::published()[2].clone();
        let err = claim
            .validate(&["raw", "frozen"], &[0.1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("protocol 'dropout' is not in the study (raw, frozen)"),
            "{err}"
        );
        claim.better = vec!["frozen".into()];
        claim.proportions = vec![0.5];
        let err = claim
            .validate(&["raw", "frozen"], &[0.1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("proportion 0.5 is not in the study"), "{err}");
        claim.proportions.clear();
        claim.margin = Some(0.01);
        let err = claim
            .validate(&["raw", "frozen"], &[0.1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("only for an `equivalent` claim"), "{err}");
    }
}
