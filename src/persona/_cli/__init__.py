"""The ``persona`` command's task commands, one module per job (:mod:`persona.cli` wires
them into its parser): ``audit``, ``budget``, ``catalogue``, ``consent import``,
``curate``, ``evaluate``, ``ingest`` and ``retention``; :mod:`persona._cli.common` holds
what every command shares."""
