"""What the database itself enforces and provides: the triggers that keep published rows immutable
(``triggers``) and withdrawal records append-only (``withdrawals``), and PostgreSQL advisory locks
(``locks``: one worker per row, one build per engine, one audit start, one signer per repository,
one mover of a repository's ``latest``)."""
