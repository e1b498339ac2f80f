#!/bin/bash
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d). Creates the login role the exporter uses; pg_monitor lets it
# see every session's state in pg_stat_activity. The password is the demo one from
# deploy/secrets/postgres_password (never written into this file).
set -euo pipefail
password="$(tr -d '\n' < /etc/apphealth/secrets/postgres_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v pw="$password" <<'SQL'
CREATE ROLE apphealth LOGIN PASSWORD :'pw';
GRANT pg_monitor TO apphealth;
-- A small table so that the demo backups (pg_dump by loadgen) hold something.
CREATE TABLE IF NOT EXISTS tutors (id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());
INSERT INTO tutors (name) SELECT 'tutor ' || g FROM generate_series(1, 1000) AS g;
SQL
