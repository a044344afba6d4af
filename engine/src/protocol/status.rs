//! How available a member is (`available`, `away`, `busy`): carried in `join`, `status`
//! frames and welcomes, shown next to names.

use serde::{Deserialize, Serialize};

/// How available someone is, shown next to their name: set by hand, or `away` by itself
/// after a while without input. `busy` means "do not disturb".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Available,
    Away,
    Busy,
}

impl Status {
    pub fn is_available(&self) -> bool {
        *self == Status::Available
    }

    /// The word people read ("available", "away", "busy"): the wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Away => "away",
            Status::Busy => "busy",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        match word.trim().to_lowercase().as_str() {
            "available" | "back" | "here" => Ok(Status::Available),
            "away" => Ok(Status::Away),
            "busy" | "dnd" => Ok(Status::Busy),
            other => Err(format!(
                "\"{other}\" is not a status: say available, away or busy"
            )),
        }
    }
}
