"""What the database itself enforces and provides: the triggers that keep published rows immutable
(``triggers``), and PostgreSQL advisory locks (``locks``: one worker per row, one build per
engine, one audit start, one signer per repository)."""
