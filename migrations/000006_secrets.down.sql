-- Dropping the table destroys every stored secret (sealed, but the only copy).
DROP TABLE secrets;
