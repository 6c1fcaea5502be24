"""The `xrd-agent` command line: one module per subcommand, registered in `cli.main`."""
