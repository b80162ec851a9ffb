-- Index rows of messages that were deleted or purged before deletion and
-- purging removed a message's index rows with it: they match no readable
-- message and only take space.
DELETE g FROM message_grams g
  LEFT JOIN messages m ON m.pk = g.msg_pk
  WHERE m.pk IS NULL OR m.deleted_at IS NOT NULL;
