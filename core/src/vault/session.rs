//! The unlocked session: the data key in zeroizing memory, idle
//! auto-lock, and the cache of card secrets wiped on lock.

use std::collections::HashMap;

use super::envelope::SecretKey;
use super::lock::storable_boot;
use super::lockout::Moment;
use super::{CardId, CardSecret, Vault};
use crate::CoreError;

/// Cached material of one card while unlocked (dropped on lock).
pub(super) struct CachedCard {
    pub(super) secret: CardSecret,
}

/// The unlocked state: the data key in zeroizing memory.
pub(super) struct Session {
    pub(super) key: SecretKey,
    pub(super) last_activity: u64,
    pub(super) cards: HashMap<CardId, CachedCard>,
}

impl Vault {
    pub(super) fn now(&self) -> u64 {
        self.hooks.clock.now_unix()
    }

    /// Now on both of the host's clocks.
    pub(super) fn moment(&self) -> Moment {
        Moment {
            unix: self.now(),
            boot: storable_boot(self.hooks.clock.boot_time()),
        }
    }

    /// Whether the session is still alive at `now` (not idle too long; a
    /// clock that went backwards ends it).
    pub(super) fn session_alive(&self, now: u64) -> bool {
        self.session.as_ref().is_some_and(|s| {
            now >= s.last_activity && now - s.last_activity < self.config.idle_timeout_secs()
        })
    }

    /// Checks the session and records activity.
    pub(super) fn touch(&mut self) -> Result<(), CoreError> {
        let now = self.now();
        if !self.session_alive(now) {
            self.session = None;
            return Err(CoreError::Locked);
        }
        if let Some(s) = self.session.as_mut() {
            s.last_activity = now;
        }
        Ok(())
    }

    /// Checks the session, records activity and returns the data key.
    pub(super) fn key(&mut self) -> Result<&SecretKey, CoreError> {
        self.touch()?;
        self.session
            .as_ref()
            .map(|s| &s.key)
            .ok_or(CoreError::Locked)
    }

    /// Whether the vault is unlocked now (idle time counted). Does not
    /// count as activity.
    pub fn is_unlocked(&self) -> bool {
        self.session_alive(self.now())
    }

    /// Locks the vault: the data key and every cached card key are wiped
    /// from memory.
    pub fn lock(&mut self) {
        self.session = None;
    }

    /// Locks the vault if it has been idle for the timeout, wiping the key
    /// from memory now rather than at the next call. Hosts call this from
    /// a timer and when the app goes to the background. Returns whether
    /// the vault is (now) locked.
    pub fn lock_if_idle(&mut self) -> bool {
        if !self.session_alive(self.now()) {
            self.session = None;
        }
        self.session.is_none()
    }

    pub(super) fn start_session(&mut self, key: SecretKey) {
        let now = self.now();
        self.session = Some(Session {
            key,
            last_activity: now,
            cards: HashMap::new(),
        });
    }

    pub(super) fn forget_cached(&mut self, id: CardId) {
        if let Some(s) = self.session.as_mut() {
            s.cards.remove(&id);
        }
    }
}
