-- Placeholder so that migration 0008 (issue 12) applies on this branch before the
-- migration assigned this number lands from another branch. Delete on rebase.
SELECT 1;
