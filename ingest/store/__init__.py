"""The store: the database URL and migrations, the embedded server, named SQL, the
schema's vocabulary and validation, configuration (docs/design.md)."""
