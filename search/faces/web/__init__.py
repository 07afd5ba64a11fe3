"""`papers serve`: a local, read-only web page over the library (search, papers, the map)."""
