"""What users consume stores through besides the loader: ``load_dataset`` (Hugging Face ``datasets``),
``export`` (a Hub dataset folder) and ``plotting`` (distributions per process, PNG)."""
