-- The deployment's shared lessons (`--shared-learning`): what every site's moderators
-- taught, as counts of hashed words and signs only (never an author, an address or a
-- text), which each site reads as a prior beside the built-in one.
CREATE TABLE shared_spam_features (
    feature bigint PRIMARY KEY,
    spam    real NOT NULL,
    ham     real NOT NULL
);

-- One row: the shared lessons' totals.
CREATE TABLE shared_spam_totals (
    id   integer PRIMARY KEY CHECK (id = 1),
    spam real NOT NULL,
    ham  real NOT NULL
);

-- The part of a site's own counts it also gave to the shared ones: taken out of what the
-- site reads from them, so that its own lessons do not count twice.
ALTER TABLE spam_features
    ADD COLUMN shared_spam real NOT NULL DEFAULT 0,
    ADD COLUMN shared_ham real NOT NULL DEFAULT 0;
ALTER TABLE spam_totals
    ADD COLUMN shared_spam real NOT NULL DEFAULT 0,
    ADD COLUMN shared_ham real NOT NULL DEFAULT 0;

-- Whether a reply's last lesson also taught the shared counts, so that a decision that
-- reverses it takes it back from them exactly, whatever the setting is by then.
ALTER TABLE comments ADD COLUMN lesson_shared boolean NOT NULL DEFAULT false;
