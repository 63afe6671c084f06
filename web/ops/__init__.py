"""Operations: backup and restore, request ids and structured logs, metrics (docs/operations.md)."""
