"""Provider adapters, one per wire format, the catalog and the registry."""
