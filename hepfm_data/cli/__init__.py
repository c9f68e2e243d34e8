"""The ``hepfm-data`` command line: :func:`~.main.main` dispatches to one module per subcommand in
:mod:`.commands` (plus the ``hepfm_data.commands`` entry-point group). Library code never imports it."""
