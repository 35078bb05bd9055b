//! The `--result FILE` a pull leaves for its caller (`supervisor run`,
//! `supervisor image pull`): JSON, written atomically (temp + rename), the
//! image and its IDs on success, a kubelet reason and a one-line message
//! on failure. Deciding the outcome is main's.

use std::path::Path;

/// Why a pull failed, as kubelet names it in `waiting.reason`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub enum FailureReason {
    /// The registry, the network or the store failed.
    ErrImagePull,
    /// The reference does not parse.
    InvalidImageName,
}

/// What the result file says.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum PullResult {
    /// The image is stored under its name.
    Success {
        /// The normalised reference.
        image: String,
        /// `sha256:<config digest>`.
        id: String,
        /// The repo digest, else the ID (`ImageRecord::image_ref`).
        image_ref: String,
    },
    /// Nothing was stored.
    Failure {
        /// The reason and message.
        error: Failure,
    },
}

/// A failure's reason and message.
#[derive(Debug, serde::Serialize)]
pub struct Failure {
    /// kubelet's reason.
    pub reason: FailureReason,
    /// One line naming the image and the cause.
    pub message: String,
}

impl PullResult {
    /// A failure; `message` is folded onto one line.
    pub fn failure(reason: FailureReason, message: &str) -> PullResult {
        PullResult::Failure {
            error: Failure {
                reason,
                message: message.split_whitespace().collect::<Vec<_>>().join(" "),
            },
        }
    }

    /// Writes the result to `path`, atomically.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec(self)?;
        json.push(b'\n');
        supervisor::atomic_file::write_atomic(path, &json)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_as_the_contract_says() {
        let success = PullResult::Success {
            image: "docker.io/library/busybox:1".into(),
            id: "sha256:1".into(),
            image_ref: "docker.io/library/busybox@sha256:2".into(),
        };
        assert_eq!(
            serde_json::to_string(&success).unwrap(),
            r#"{"image":"docker.io/library/busybox:1","id":"sha256:1","image_ref":"docker.io/library/busybox@sha256:2"}"#
        );
        let failure = PullResult::failure(FailureReason::ErrImagePull, "pulling x:\n  refused");
        assert_eq!(
            serde_json::to_string(&failure).unwrap(),
            r#"{"error":{"reason":"ErrImagePull","message":"pulling x: refused"}}"#
        );
    }
}
