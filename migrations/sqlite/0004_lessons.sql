-- What each reply last taught the site's classifier, so that a decision that
-- reverses an earlier one takes the earlier lesson back instead of adding a
-- contradicting one.
ALTER TABLE comments ADD COLUMN lesson_label TEXT CHECK (lesson_label IN ('spam', 'ham'));
ALTER TABLE comments ADD COLUMN lesson_weight REAL;
