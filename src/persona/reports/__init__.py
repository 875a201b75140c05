"""Reports for privacy reviewers, generated from the store's registry and the model."""
