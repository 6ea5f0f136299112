//! Sinks: Home Assistant discovery, Prometheus, web dashboard, CSV. Filled in by its issue.
