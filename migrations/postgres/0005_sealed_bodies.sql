-- A reply whose text holds contact details (an email address or a phone
-- number the reader typed) keeps only its public, masked text in `body`; the
-- raw text is sealed in `body_sealed` under the secret key, for moderators.
ALTER TABLE comments ADD COLUMN body_sealed bytea;

-- The replies with contact details in the clear: those stored before this
-- migration, or by a server of an earlier release still running beside a
-- newer one. SQL cannot seal them (it has no key); every server seals them
-- when it starts. The index holds only those rows, so it is empty once they
-- are sealed and finding them costs nothing.
CREATE INDEX comments_unsealed ON comments (id)
    WHERE body_sealed IS NULL AND body <> body_public;
