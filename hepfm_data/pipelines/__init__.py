"""Everything that writes a store: ``build`` (inputs -> kernels -> store, on Dask), ``derive`` (a
representation's columns from the stored record), ``production`` (catalog-scale generation),
``resimulate`` (RS3L views) and ``workers`` (local Dask workers that die with their driver)."""
