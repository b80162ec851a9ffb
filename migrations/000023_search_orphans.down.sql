-- The index rows removed going up belonged to no readable message; there is
-- nothing to restore.
DO 0;
