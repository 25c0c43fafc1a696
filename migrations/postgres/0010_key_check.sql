-- What the deployment's secret key makes of a fixed text (`Vault::key_check`, an HMAC under a
-- subkey derived for this alone). A server started with another key finds a different value and
-- refuses to start, instead of sealing emails and keying hashes that no other replica, and no
-- later start with the right key, can match. One row.
CREATE TABLE key_check (
    id      smallint PRIMARY KEY CHECK (id = 1),
    digest  bytea NOT NULL
);
