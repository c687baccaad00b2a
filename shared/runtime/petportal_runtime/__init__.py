"""The small runtime every Pet Portal service shares: settings, logging, telemetry, database,
outbox/inbox, broker wiring, health endpoints and token verification."""
