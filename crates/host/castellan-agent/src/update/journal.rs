//! The update journal: which campaign and offer the device works on, kept in a file across
//! power cycles so that the reports after a reboot name it (the download state itself lives in
//! the secure services' trusted storage).

use super::*;

/// What the agent remembers across reboots about the update it works on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Journal {
    pub(super) offer: Offer,
    /// `downloading`, `rebooting`, or `confirmed` (accepted; the report may still be owed).
    pub(super) phase: String,
}

impl Updater {
    pub(super) fn load_journal(&self) -> Option<Journal> {
        let text = read_text(&self.journal).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub(super) fn save_journal(&self, phase: &str) {
        if let Some(d) = &self.active {
            self.write_journal(&d.offer, phase);
        }
    }

    pub(super) fn write_journal(&self, offer: &Offer, phase: &str) {
        let j = Journal {
            offer: offer.clone(),
            phase: phase.to_string(),
        };
        if let Ok(text) = serde_json::to_vec_pretty(&j)
            && let Err(e) = write(&self.journal, &text)
        {
            (self.log)(&format!("update: cannot keep the journal: {e}"));
        }
    }

    pub(super) fn clear_journal(&self) {
        let _ = std::fs::remove_file(&self.journal);
    }
}
