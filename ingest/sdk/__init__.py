"""SDK tracking: tracked SDK clients, SDK stream shapes, stream_task, provider usage,
the background writer and its spool, the LiteLLM logger (docs/tracking.md)."""
