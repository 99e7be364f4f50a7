-- The members a message to a group mentions (their JIDs); null when it mentions nobody.
ALTER TABLE outgoing_messages ADD COLUMN mentions text[];
