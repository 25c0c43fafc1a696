-- A reply whose text holds contact details (an email address or a phone
-- number the reader typed) keeps only its public, masked text in `body`; the
-- raw text is sealed in `body_sealed` under the secret key, for moderators.
ALTER TABLE comments ADD COLUMN body_sealed BLOB;

-- The replies with contact details in the clear: those stored before this
-- migration, or by a server of an earlier release still running beside a
-- newer one. SQL cannot seal them (it has no key); every server seals them
-- when it starts. The index holds only those rows, so it is empty once they
-- are sealed and finding them costs nothing.
CREATE INDEX comments_unsealed ON comments (id)
    WHERE body_sealed IS NULL AND body <> body_public;

-- The replies stored before this migration with an `@` in their text, whose
-- address the earlier masking may have missed (`_jane@example.com_`): the
-- server masks their public text again when it starts, and empties the list.
CREATE TABLE texts_to_check (
    comment_id  BLOB PRIMARY KEY NOT NULL REFERENCES comments (id) ON DELETE CASCADE
);
INSERT INTO texts_to_check (comment_id) SELECT id FROM comments WHERE body LIKE '%@%';
