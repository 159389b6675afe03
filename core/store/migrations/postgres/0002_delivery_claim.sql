-- A delivery is claimed (delivery_claimed_at) before the notifier runs and marked done
-- (delivered_at) after it; a claim left by a worker that died can then be taken again.
ALTER TABLE bl_jobs ADD COLUMN delivery_claimed_at timestamptz;
