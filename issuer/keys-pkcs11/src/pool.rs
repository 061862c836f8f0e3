//! A small pool of logged-in read/write sessions.
//!
//! A cryptoki [`Session`] is `Send` but not `Sync` (a PKCS#11 session runs
//! one operation at a time, PKCS#11 v2.40 §5.6), while the verification
//! path calls the provider from several tokio worker threads at once. The
//! pool hands each caller a session of its own for the length of one
//! operation and takes it back when the guard drops.
//!
//! Login state belongs to the application, not to a session (PKCS#11
//! v2.40 §5.6): the first session logs in and every other session of the
//! process is logged in with it, until the last session closes.

use std::sync::{Condvar, Mutex};

use cryptoki::session::Session;
use pooya_issuer_service::{HsmError, IssuerError};

/// Sessions checked in and out by threads.
pub(crate) struct SessionPool {
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
}

impl SessionPool {
    pub(crate) fn new(sessions: Vec<Session>) -> Self {
        Self {
            idle: Mutex::new(sessions),
            returned: Condvar::new(),
        }
    }

    /// A session for one operation; waits while every session is busy.
    ///
    /// # Errors
    /// [`HsmError::Failed`] when the pool's lock is poisoned (a thread
    /// panicked holding it).
    pub(crate) fn get(&self) -> Result<PooledSession<'_>, IssuerError> {
        let poisoned = || HsmError::Failed {
            operation: "taking a session from the pool",
            ckr: "poisoned lock".into(),
        };
        let mut idle = self.idle.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(session) = idle.pop() {
                return Ok(PooledSession {
                    pool: self,
                    session: Some(session),
                });
            }
            idle = self.returned.wait(idle).map_err(|_| poisoned())?;
        }
    }
}

/// A session taken from the pool; goes back to it on drop.
pub(crate) struct PooledSession<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
}

impl std::ops::Deref for PooledSession<'_> {
    type Target = Session;

    #[allow(clippy::expect_used)]
    fn deref(&self) -> &Session {
        // `session` is `Some` from construction until `drop`.
        self.session
            .as_ref()
            .expect("a pooled session is present until dropped")
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // A poisoned lock drops the session (closing it) rather than
            // panicking in a destructor.
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(session);
                self.pool.returned.notify_one();
            }
        }
    }
}
