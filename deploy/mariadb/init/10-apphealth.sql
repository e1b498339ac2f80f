-- Runs once, when the mariadb container initialises an empty data volume
-- (/docker-entrypoint-initdb.d), as root, after MARIADB_USER (apphealth, password from
-- deploy/secrets/mysql_password) and MARIADB_DATABASE (app) exist.
-- PROCESS lets the exporter see every connection's state and INNODB_TRX (oldest transaction).
GRANT PROCESS ON *.* TO 'apphealth'@'%';

-- Laravel's database queue tables exactly as its migrations create them on MariaDB
-- (`php artisan queue:table` / `queue:failed-table`, Laravel 8), with a few demo jobs for
-- the exporter's `laravel` preset: 3 waiting, 1 delayed by an hour, 1 failed.
USE app;
CREATE TABLE jobs (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  queue varchar(255) NOT NULL,
  payload longtext NOT NULL,
  attempts tinyint(3) unsigned NOT NULL,
  reserved_at int(10) unsigned DEFAULT NULL,
  available_at int(10) unsigned NOT NULL,
  created_at int(10) unsigned NOT NULL,
  PRIMARY KEY (id),
  KEY jobs_queue_index (queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE failed_jobs (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  uuid varchar(255) NOT NULL,
  connection text NOT NULL,
  queue text NOT NULL,
  payload longtext NOT NULL,
  exception longtext NOT NULL,
  failed_at timestamp NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (id),
  UNIQUE KEY failed_jobs_uuid_unique (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) VALUES
  ('default', '{"displayName":"App\\\\Jobs\\\\SendWelcomeMail"}', 0, NULL, UNIX_TIMESTAMP() - 30, UNIX_TIMESTAMP() - 30),
  ('default', '{"displayName":"App\\\\Jobs\\\\SendWelcomeMail"}', 0, NULL, UNIX_TIMESTAMP() - 10, UNIX_TIMESTAMP() - 10),
  ('emails', '{"displayName":"App\\\\Jobs\\\\SendInvoice"}', 0, NULL, UNIX_TIMESTAMP(), UNIX_TIMESTAMP()),
  ('default', '{"displayName":"App\\\\Jobs\\\\SendReminder"}', 0, NULL, UNIX_TIMESTAMP() + 3600, UNIX_TIMESTAMP());
INSERT INTO failed_jobs (uuid, connection, queue, payload, exception) VALUES
  (UUID(), 'database', 'default', '{"displayName":"App\\\\Jobs\\\\ChargeCard"}', 'RuntimeException: card declined');
