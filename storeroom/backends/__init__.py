"""Backends: memory, SQL (SQLite, PostgreSQL, MySQL/MariaDB), DynamoDB, MongoDB, Redis."""
