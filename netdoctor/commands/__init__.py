"""One module per `netdoctor` sub-command; each exposes ``run(args) -> exit status``."""
