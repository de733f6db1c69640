"""The node process: HTTP data plane, partition logs, metadata reconciliation."""
