-- Last seen and exposure deltas of known subjects (store.FoldTouches adds
-- them into first_exposures, many batches at once). Appended by the writer
-- instead of rewriting a first_exposures row per subject per batch; no
-- index, so an append costs no B-tree search. Readers of last_seen and
-- exposures fold first.
CREATE TABLE first_exposure_touches (
	environment  TEXT NOT NULL,
	feature_flag TEXT NOT NULL,
	allocation   TEXT NOT NULL,
	subject      TEXT NOT NULL,
	last_seen    BIGINT NOT NULL,
	exposures    BIGINT NOT NULL
);
