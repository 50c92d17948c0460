-- Client keys (issue 13): a second kind of SDK key, safe to embed in a page.
-- kind is 'server' (reads the SERVER document) or 'client' (reads only the
-- CLIENT document and posts assignment events); origins is a JSON array of
-- the web origins a client key may be used from ('[]': any).
ALTER TABLE sdk_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'server';
ALTER TABLE sdk_keys ADD COLUMN origins TEXT NOT NULL DEFAULT '[]';
