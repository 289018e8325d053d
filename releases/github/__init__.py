"""GitHub: ``events`` reads Release Please's ``release`` events and checks their signatures (plain
Python); ``webhook`` is the ``POST /hooks/github/`` entry point that turns them into releases."""
