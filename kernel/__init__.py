"""The kernel: money, the API v2 protocol, database and cache helpers, the outbound-URL
guard, the number and text rules, error-report scrubbing. It imports no app of the panel,
so every app may import it."""
