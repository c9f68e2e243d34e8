"""Foundation: errors, configuration (``HEPFM_*``), the catalog (YAML -> frozen dataclasses), the event
record schema, array helpers and the version. Imports nothing else of hepfm_data."""
