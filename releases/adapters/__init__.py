"""The plain-Python clients, configured from settings, as the Django side uses them: the OCI
registry client (``registry_client``), the signing key and trusted keys (``signing_keys``), and
the outbound notifications of audit findings (``notifications``: signed webhook, e-mail)."""
