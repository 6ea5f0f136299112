//! Simulator: an offline stand-in for the EcoFlow cloud and a living PowerOcean Fit. Filled in by its issue.
