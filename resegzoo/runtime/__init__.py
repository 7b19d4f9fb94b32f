"""How work runs in this process: precision and threads, prefetching, checks before any model loads."""
