-- Placeholder so that migration 0012 (issue 16) applies on this branch before the
-- migration assigned this number lands from another branch. Delete on rebase.
SELECT 1;
