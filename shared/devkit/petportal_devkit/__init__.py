"""Pet Portal's development kit: never installed in a production image.

- `devinfra`: embedded Kafka (Tansu), PostgreSQL and MongoDB (nx-27017) on loopback.
- `supervisor`: the one process supervisor of `make run`, the end-to-end stack and the benchmarks.
- `prepare`: migrations and outbox replays of every service, in one process.
- `testing`: pytest fixtures and helpers.
"""
