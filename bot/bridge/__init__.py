"""The service side of the UKey bridge: pairing, presence, the job table and the WebSocket hub."""
