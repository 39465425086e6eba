-- Reserved: migration numbers are handed out per issue ahead of time and 0010 belongs to
-- another issue's branch. This placeholder keeps the numbers gap-free so that 0011 (issue
-- 11) applies; the branch that owns 0010 replaces this file with its migration.
SELECT 1;
