-- TOTP replay protection (RFC 6238 §5.2): a code that was accepted once is never accepted again.
-- The time step (Unix time / 30 s) of the last accepted code; a sign-in must present a code of a later
-- step. gateway/identity/repository.py claim_totp_step advances it with a conditional UPDATE in the
-- sign-in's transaction, so two requests racing with one code cannot both succeed. NULL: no code
-- accepted yet (or the authenticator was re-enrolled).
ALTER TABLE gateway.users ADD COLUMN totp_last_step bigint CHECK (totp_last_step >= 0);
