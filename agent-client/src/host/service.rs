//! The fix service: runs a fix request through approval, idempotency, precondition,
//! snapshot, change and verification, writing each step to the journal; rolls actions back
//! on request; and reverts expired downgrades by itself, including ones applied before the
//! agent restarted (the journal says what is in effect and until when).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use super::approval;
use super::fix::{
    valid_idempotency_key, ActionRecord, ActionState, FixRequest, FixResponse, FixTier,
    HistoryEntry, JournalRequest, JournalResponse, Requester, RollbackRequest,
};
use super::fixes::{steps, Ctx, FixError};
use super::journal::Journal;
use super::platform::HostPlatform;
use crate::signing::{random_bytes, unix_now};

/// Why a request was not taken on at all (nothing is journaled for these).
#[derive(Debug, thiserror::Error)]
pub enum FixServiceError {
    /// The request is malformed (e.g. a bad idempotency key) or reuses a key for another fix.
    #[error("{0}")]
    Invalid(String),
    #[error("no action {0} in the journal")]
    NotFound(String),
    /// The action cannot be rolled back as asked (nothing was changed, or the state
    /// changed since the fix and `force` was not given).
    #[error("{0}")]
    Conflict(String),
    /// The journal could not be read or written.
    #[error("the journal: {0}")]
    Journal(#[from] std::io::Error),
}

/// Who runs fixes on this host, with what, and against which server key.
pub struct FixService {
    platform: Arc<dyn HostPlatform>,
    journal: Journal,
    agent_id: String,
    /// Verifies approvals; `None` (no identity yet) refuses every downgrade.
    server_key: Option<VerifyingKey>,
    lock: Mutex<()>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for FixService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixService")
            .field("journal", &self.journal.dir())
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

/// A new action id: the time in nanoseconds (so ids sort in the order actions were made),
/// then random bytes.
fn action_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random: String = random_bytes::<6>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{nanos:020x}-{random}")
}

impl FixService {
    pub fn new(
        platform: Arc<dyn HostPlatform>,
        journal: Journal,
        agent_id: impl Into<String>,
        server_key: Option<VerifyingKey>,
    ) -> Self {
        FixService {
            platform,
            journal,
            agent_id: agent_id.into(),
            server_key,
            lock: Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn serialise(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ctx<'a>(&'a self, action_id: &'a str) -> Ctx<'a> {
        Ctx {
            platform: self.platform.as_ref(),
            journal: &self.journal,
            action_id,
        }
    }

    fn note(&self, record: &mut ActionRecord, what: impl Into<String>) {
        let at = unix_now();
        record.updated_at = at;
        record.history.push(HistoryEntry {
            at,
            what: what.into(),
        });
    }

    /// Runs (or previews) a fix. Blocking: call it from `spawn_blocking`.
    pub fn run(&self, request: FixRequest, by: Requester) -> Result<FixResponse, FixServiceError> {
        if !valid_idempotency_key(&request.idempotency_key) {
            return Err(FixServiceError::Invalid(
                "idempotency_key must be 8 to 128 characters of A-Z a-z 0-9 . _ : -".to_owned(),
            ));
        }
        let _guard = self.serialise();
        if let Some(earlier) = self.journal.find_by_key(&request.idempotency_key)? {
            if earlier.fix != request.fix
                || earlier.dry_run != request.dry_run
                || earlier.case_id != request.case_id
            {
                return Err(FixServiceError::Invalid(format!(
                    "idempotency key {} was used for another request (action {})",
                    request.idempotency_key, earlier.action_id
                )));
            }
            return Ok(FixResponse {
                repeated: true,
                action: earlier,
            });
        }
        let now = unix_now();
        let tier = request.fix.tier();
        let mut record = ActionRecord {
            action_id: action_id(),
            idempotency_key: request.idempotency_key.clone(),
            fix: request.fix.clone(),
            tier,
            case_id: request.case_id.clone(),
            requested_by: by,
            requested_at: now,
            updated_at: now,
            dry_run: request.dry_run,
            approval: None,
            revert_at: None,
            state: ActionState::Applying,
            plan: Vec::new(),
            snapshot: None,
            applied: Vec::new(),
            verification: None,
            history: Vec::new(),
        };
        self.note(&mut record, format!("requested by {by:?}"));
        let outcome = self.execute(&request, &mut record);
        if let Err(reason) = outcome {
            self.note(&mut record, format!("refused: {reason}"));
            record.state = ActionState::Refused { reason };
        }
        self.journal.save(&record)?;
        if record.revert_at.is_some() {
            self.wake.notify_one();
        }
        tracing::info!(
            action.id = %record.action_id,
            fix = record.fix.id(),
            state = ?record.state,
            "fix action recorded"
        );
        Ok(FixResponse {
            repeated: false,
            action: record,
        })
    }

    /// The steps of a run; `Err` is a refusal (nothing changed).
    fn execute(&self, request: &FixRequest, record: &mut ActionRecord) -> Result<(), String> {
        let fix = steps(&request.fix);
        if record.tier == FixTier::Downgrade && !request.dry_run {
            let token = request
                .approval
                .as_ref()
                .ok_or("a downgrade runs only with an approval from the server")?;
            let key = self
                .server_key
                .as_ref()
                .ok_or("this agent has no server key to check approvals with (enroll it first)")?;
            let claims = approval::verify(
                token,
                key,
                &self.agent_id,
                request.fix.id(),
                request.case_id.as_deref(),
                unix_now(),
            )
            .map_err(|e| e.to_string())?;
            if let Some(used) = self
                .journal
                .all()
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|r| {
                    r.approval
                        .as_ref()
                        .is_some_and(|a| a.approval_id == claims.approval_id)
                })
            {
                return Err(format!(
                    "approval {} was already used by action {}",
                    claims.approval_id, used.action_id
                ));
            }
            self.note(
                record,
                format!(
                    "approval {} by {} for case {} verified, until {}",
                    claims.approval_id, claims.approved_by, claims.case_id, claims.expires_at
                ),
            );
            record.revert_at = Some(claims.expires_at);
            record.approval = Some(claims);
        }
        // Two actions on the same state would snapshot each other's change.
        let targets = fix.targets();
        if !request.dry_run && !targets.is_empty() {
            for other in self.journal.all().map_err(|e| e.to_string())? {
                if other.state.in_effect()
                    && steps(&other.fix)
                        .targets()
                        .iter()
                        .any(|t| targets.contains(t))
                {
                    return Err(format!(
                        "action {} ({}) on the same settings is still in effect; roll it back first",
                        other.action_id,
                        other.fix.id()
                    ));
                }
            }
        }
        let action_id = record.action_id.clone();
        let ctx = self.ctx(&action_id);
        fix.precondition(&ctx).map_err(|e| e.to_string())?;
        self.note(record, "precondition holds");
        let snapshot = fix
            .snapshot(&ctx)
            .map_err(|e| format!("the prior state could not be recorded: {e}"))?;
        record.snapshot = Some(snapshot.clone());
        self.note(record, "snapshot recorded");
        record.plan = fix.plan(&ctx, &snapshot).map_err(|e| e.to_string())?;
        if record.plan.is_empty() {
            record.state = ActionState::AlreadyInPlace;
            record.revert_at = None;
            self.note(record, "nothing to change");
            return Ok(());
        }
        if request.dry_run {
            record.state = ActionState::DryRun;
            record.revert_at = None;
            self.note(record, "dry run: nothing changed");
            return Ok(());
        }
        // The record with its snapshot is on disk before anything changes, so a crash
        // mid-change leaves an `applying` action that can be rolled back after a restart.
        record.state = ActionState::Applying;
        self.journal.save(record).map_err(|e| e.to_string())?;
        let result = fix.apply(&ctx, &snapshot).and_then(|applied| {
            record.applied = applied;
            fix.verify(&ctx, &record.applied)
        });
        match result {
            Ok(verification) => {
                self.note(record, "changed and verified");
                record.verification = Some(verification);
                record.state = ActionState::Applied;
            }
            Err(error) => {
                self.note(record, format!("failed: {error}"));
                let rolled_back = match fix.rollback(&ctx, &snapshot, &record.applied, true) {
                    Ok(said) => {
                        self.note(record, format!("rolled back: {said}"));
                        true
                    }
                    Err(e) => {
                        self.note(record, format!("rollback failed: {e}"));
                        false
                    }
                };
                record.state = ActionState::Failed {
                    error: error.to_string(),
                    rolled_back,
                };
                record.revert_at = record.revert_at.filter(|_| !rolled_back);
            }
        }
        Ok(())
    }

    /// Rolls an action back from its snapshot.
    pub fn rollback(
        &self,
        request: RollbackRequest,
        by: Requester,
    ) -> Result<ActionRecord, FixServiceError> {
        let _guard = self.serialise();
        let mut record = self
            .journal
            .load(&request.action_id)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidInput => {
                    FixServiceError::NotFound(request.action_id.clone())
                }
                _ => FixServiceError::Journal(e),
            })?
            .ok_or_else(|| FixServiceError::NotFound(request.action_id.clone()))?;
        match &record.state {
            ActionState::RolledBack { .. } | ActionState::AutoReverted { .. } => return Ok(record),
            state if !state.in_effect() => {
                return Err(FixServiceError::Conflict(format!(
                    "action {} changed nothing ({state:?}): there is nothing to roll back",
                    record.action_id
                )))
            }
            _ => {}
        }
        self.undo(&mut record, request.force, by)?;
        Ok(record)
    }

    fn undo(
        &self,
        record: &mut ActionRecord,
        force: bool,
        by: Requester,
    ) -> Result<(), FixServiceError> {
        let snapshot = record.snapshot.clone().unwrap_or_default();
        let fix = steps(&record.fix);
        let action_id = record.action_id.clone();
        let ctx = self.ctx(&action_id);
        let at = unix_now();
        match fix.rollback(&ctx, &snapshot, &record.applied, force) {
            Ok(said) => {
                self.note(record, format!("rolled back by {by:?}: {said}"));
                record.state = match by {
                    Requester::Agent => ActionState::AutoReverted { at },
                    _ => ActionState::RolledBack { at, by },
                };
            }
            Err(FixError::Refused(reason)) => {
                return Err(FixServiceError::Conflict(reason));
            }
            Err(FixError::Failed(error)) => {
                self.note(record, format!("rollback by {by:?} failed: {error}"));
                record.state = ActionState::RollbackFailed { at, error };
            }
        }
        self.journal.save(record)?;
        tracing::info!(action.id = %record.action_id, state = ?record.state, "fix action rolled back");
        Ok(())
    }

    /// The journal, oldest first.
    pub fn list(&self, request: &JournalRequest) -> Result<JournalResponse, FixServiceError> {
        let actions = self
            .journal
            .all()?
            .into_iter()
            .filter(|r| {
                request
                    .updated_since
                    .is_none_or(|since| r.updated_at >= since)
            })
            .collect();
        Ok(JournalResponse {
            agent_id: self.agent_id.clone(),
            actions,
        })
    }

    /// When the journal last changed (the newest `updated_at`), for the heartbeat.
    pub fn last_change(&self) -> Result<Option<i64>, FixServiceError> {
        Ok(self.journal.all()?.iter().map(|r| r.updated_at).max())
    }

    /// Reverts every downgrade whose approval has expired by `now`; returns what it did.
    pub fn revert_expired(&self, now: i64) -> Result<Vec<ActionRecord>, FixServiceError> {
        let _guard = self.serialise();
        let mut done = Vec::new();
        for mut record in self.journal.all()? {
            let due = record.revert_at.is_some_and(|at| at <= now);
            if due && record.state.in_effect() {
                tracing::info!(action.id = %record.action_id, fix = record.fix.id(), "approval expired: reverting");
                self.undo(&mut record, false, Requester::Agent)?;
                done.push(record);
            }
        }
        Ok(done)
    }

    /// When the next downgrade is due for reverting.
    pub fn next_revert_at(&self) -> Result<Option<i64>, FixServiceError> {
        Ok(self
            .journal
            .all()?
            .into_iter()
            .filter(|r| r.state.in_effect())
            .filter_map(|r| r.revert_at)
            .min())
    }

    /// Reverts expired downgrades for as long as the agent runs: at start (catching up on
    /// any that expired while it was stopped), at each one's expiry, and every minute.
    pub async fn auto_revert_forever(self: Arc<Self>) {
        loop {
            let service = self.clone();
            let now = unix_now();
            let next = tokio::task::spawn_blocking(move || {
                if let Err(e) = service.revert_expired(now) {
                    tracing::warn!(error = %e, "reverting expired downgrades failed");
                }
                service.next_revert_at()
            })
            .await;
            let wait = match next {
                Ok(Ok(Some(at))) => {
                    Duration::from_secs(u64::try_from(at - unix_now()).unwrap_or(0).clamp(1, 60))
                }
                _ => Duration::from_secs(60),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}
