//! What one run may use. Every limit has a default and a ceiling; an admin may raise a
//! plugin's limits up to the ceilings at install time, never beyond.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Limits {
    /// CPU budget: wasm fuel (about one unit per instruction).
    pub fuel: u64,
    /// Wall-clock deadline for the whole run, host calls included.
    pub wall_ms: u64,
    /// The most linear memory one instance may grow to.
    pub memory_bytes: u64,
    /// The most host calls one run may make.
    pub host_calls: u32,
    /// The most text one run may hand the host across all its calls; also the most
    /// stdout/stderr kept in the run record (beyond it output is cut, not failed).
    pub output_bytes: u64,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        fuel: 50_000_000,
        wall_ms: 1_000,
        memory_bytes: 32 << 20,
        host_calls: 64,
        output_bytes: 64 << 10,
    };

    pub const CEILING: Limits = Limits {
        fuel: 2_000_000_000,
        wall_ms: 10_000,
        memory_bytes: 256 << 20,
        host_calls: 1_000,
        output_bytes: 1 << 20,
    };

    /// Checks every limit is above zero and at most its ceiling.
    pub fn check(&self) -> Result<(), String> {
        let c = &Self::CEILING;
        let checks = [
            ("fuel", self.fuel, c.fuel),
            ("wallMs", self.wall_ms, c.wall_ms),
            ("memoryBytes", self.memory_bytes, c.memory_bytes),
            (
                "hostCalls",
                u64::from(self.host_calls),
                u64::from(c.host_calls),
            ),
            ("outputBytes", self.output_bytes, c.output_bytes),
        ];
        for (name, value, ceiling) in checks {
            if value == 0 || value > ceiling {
                return Err(format!(
                    "{name} must be between 1 and {ceiling} (got {value})"
                ));
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_the_ceilings() {
        assert_eq!(Limits::default().check(), Ok(()));
        assert_eq!(Limits::CEILING.check(), Ok(()));
    }

    #[test]
    fn a_limit_above_its_ceiling_or_zero_is_refused() {
        let high = Limits {
            wall_ms: 60_000,
            ..Limits::default()
        };
        assert!(high.check().unwrap_err().contains("wallMs"));
        let zero = Limits {
            host_calls: 0,
            ..Limits::default()
        };
        assert!(zero.check().unwrap_err().contains("hostCalls"));
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        let parsed: Limits = serde_json::from_str(r#"{"fuel": 7}"#).unwrap();
        assert_eq!(parsed.fuel, 7);
        assert_eq!(parsed.wall_ms, Limits::DEFAULT.wall_ms);
    }
}
