"""One module per ``hepfm-data`` subcommand (see ``hepfm_data.cli.main.COMMANDS``)."""
