-- The deployment's shared lessons (`--shared-learning`): what every site's moderators
-- taught, as counts of hashed words and signs only (never an author, an address or a
-- text), which each site reads as a prior beside the built-in one.
CREATE TABLE shared_spam_features (
    feature INTEGER PRIMARY KEY NOT NULL,
    spam    REAL NOT NULL,
    ham     REAL NOT NULL
) WITHOUT ROWID;

-- One row: the shared lessons' totals.
CREATE TABLE shared_spam_totals (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    spam REAL NOT NULL,
    ham  REAL NOT NULL
);

-- The part of a site's own counts it also gave to the shared ones: taken out of what the
-- site reads from them, so that its own lessons do not count twice.
ALTER TABLE spam_features ADD COLUMN shared_spam REAL NOT NULL DEFAULT 0;
ALTER TABLE spam_features ADD COLUMN shared_ham REAL NOT NULL DEFAULT 0;
ALTER TABLE spam_totals ADD COLUMN shared_spam REAL NOT NULL DEFAULT 0;
ALTER TABLE spam_totals ADD COLUMN shared_ham REAL NOT NULL DEFAULT 0;

-- Whether a reply's last lesson also taught the shared counts, so that a decision that
-- reverses it takes it back from them exactly, whatever the setting is by then.
ALTER TABLE comments ADD COLUMN lesson_shared INTEGER NOT NULL DEFAULT 0
    CHECK (lesson_shared IN (0, 1));
