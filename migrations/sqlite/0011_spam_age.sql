-- The retention sweep deletes spam that has sat in the spam queue for
-- `--delete-spam-days`, counted from its last change of status (`updated_at`):
-- this index lets it find that spam, oldest first, without reading the table.
CREATE INDEX comments_spam_age ON comments (updated_at) WHERE status = 'spam';
