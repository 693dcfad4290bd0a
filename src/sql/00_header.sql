-- vector_vault install script, assembled by the Makefile from src/sql/*.sql in name order.
\echo Use "CREATE EXTENSION vector_vault" to load this file. \quit
