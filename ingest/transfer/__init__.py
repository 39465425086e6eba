"""Transfer: the bulk COPY path, import and export of our file format, and imports from
other tools (docs/import-format.md, docs/imports.md)."""
