"""The ingest: plan what changed, read and embed it (the front), write it to the store."""
