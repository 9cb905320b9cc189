"""`pikkugen monitor`: a small web dashboard over any backend (`pikkugen.monitor.app`)."""
