-- Pooya phone vault, schema version 2: the last wrong password's time on
-- the host's boot clock (core/src/hooks.rs, `Clock::boot_time`), so the
-- lockout delay is measured on a clock the user cannot set
-- (docs/security.md, "Lockout clock"). Both NULL when the host had no
-- boot clock or no failure is counted; `state_check` then keeps its
-- version-1 form.
ALTER TABLE vault_state ADD COLUMN last_failure_boot_id TEXT
    CHECK (last_failure_boot_id IS NULL OR length(last_failure_boot_id) BETWEEN 1 AND 128);
ALTER TABLE vault_state ADD COLUMN last_failure_boot_ms INTEGER
    CHECK (last_failure_boot_ms IS NULL OR last_failure_boot_ms >= 0);
