//! Sources: where payloads come from (EcoFlow cloud, open API, replay files). Filled in by its issue.
