-- tensionbot on PostgreSQL with the audit log out of the service's reach (deploy/README.md).
--
-- Two roles: `tensionbot` runs the service and owns every table but one; `tensionbot_owner`
-- owns the database, its `public` schema, the `audit_log` table and its append-only trigger
-- function. The service may only SELECT and INSERT audit rows: it cannot UPDATE, DELETE or
-- TRUNCATE them, disable or drop the triggers, replace the trigger function, or drop the table
-- or the database. Because the service owns the other tables it can still migrate them and
-- VACUUM them after an erasure (on PostgreSQL before 17 only an owner can VACUUM a table).
--
-- Part 1, as a superuser (or your provider's admin role), before the first start:
--
--   CREATE ROLE tensionbot_owner LOGIN PASSWORD '...';   -- for `tensionbot db upgrade` only
--   CREATE ROLE tensionbot LOGIN PASSWORD '...';         -- the service
--   CREATE DATABASE tensionbot OWNER tensionbot_owner;
--   \c tensionbot
--   GRANT CREATE, USAGE ON SCHEMA public TO tensionbot;
--
-- Then create the schema as the service role (`tensionbot db upgrade` with database.url
-- naming `tensionbot`, or simply start the service once).
--
-- Part 2 (this file), as a superuser, connected to the tensionbot database:
--   psql -v ON_ERROR_STOP=1 -d tensionbot -f deploy/postgres-roles.sql
-- It is idempotent: run it again after any upgrade whose notes say so.

BEGIN;
ALTER TABLE audit_log OWNER TO tensionbot_owner;  -- its id sequence follows the table
ALTER FUNCTION audit_log_append_only() OWNER TO tensionbot_owner;
REVOKE ALL ON audit_log FROM tensionbot;
GRANT SELECT, INSERT ON audit_log TO tensionbot;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO tensionbot;  -- nextval for new ids, not setval
-- The purge after an erasure waits for older transactions of every session to end before it
-- rewrites the tables (storage/database.py); it can see other roles' sessions only with this.
GRANT pg_read_all_stats TO tensionbot;
COMMIT;
