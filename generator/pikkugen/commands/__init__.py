"""CLI command groups, each registering its commands on the one typer app."""
