"""Synthetic WebRTC peers for tests and load tests (a client of the server, not part of it)."""
