"""One module per DVC stage; each `run()` is what `pipeline/<stage>.py` calls."""
