-- One database per service that owns data (ARCHITECTURE.md: each service its own database).
-- Runs once, when the postgres volume is first created; each service applies its own migrations.
CREATE DATABASE identity;
CREATE DATABASE catalog;
CREATE DATABASE orders;
CREATE DATABASE payments;
CREATE DATABASE notifications;
