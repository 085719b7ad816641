"""The package's own plumbing, not public API: lazy attributes of package ``__init__``s
(``lazy``), the library logger (``log``), muting native TensorFlow/LiteRT log lines
(``quiet``), removal of temporary files a kill left (``stale``), docstring sections as flag
help (``docstrings``) and the exit guard of Python callbacks in ``tf.data`` threads
(``exit_guard``). Each imports nothing else of the package, so every layer may use them;
this ``__init__`` imports nothing."""
