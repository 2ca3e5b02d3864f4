"""Compiled native extensions: the build-and-cache loader and what it builds.

- ``native``: compiles a C++/OpenMP source with the system compiler on first use, caches the
  library per machine and loads it with ctypes (``ATTNKIT_NO_EXTENSION=1`` turns it off);
- ``additive``: the fused additive score block (the chunked kernel's additive score);
- ``gru``: the GRU recurrence for padded batches (the seq2seq encoder).

Every user of an extension has a torch fallback, so nothing here is required.
"""
