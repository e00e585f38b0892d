//! Change notices for cases: the dispatcher announces that a case changed, and every open
//! event stream for that case reloads it and pushes it to the browser.

use tokio::sync::broadcast;
use uuid::Uuid;

/// A cheap, cloneable hub of "case X changed" notices.
#[derive(Debug, Clone)]
pub struct CaseEvents {
    sender: broadcast::Sender<Uuid>,
}

impl CaseEvents {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        CaseEvents { sender }
    }

    /// Tells whoever listens that `case_id` changed.
    pub fn case_changed(&self, case_id: Uuid) {
        // No listener is fine: nobody has the case open.
        let _ = self.sender.send(case_id);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.sender.subscribe()
    }
}

impl Default for CaseEvents {
    fn default() -> Self {
        Self::new()
    }
}
