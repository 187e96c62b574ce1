"""demon's command line: the one composition root wiring pipelines, controls and web."""
