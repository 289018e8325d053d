"""HTTP concerns every entry point shares: request body limits (``limits``, middleware and the ASGI
handler) and strong ETags with ``If-None-Match`` (``caching``)."""
