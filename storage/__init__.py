"""LevelDB (plyvel) and in-memory backends behind one small interface; the block store,
the indexes (tx by hash, history by account) and the authenticated state tree."""
