"""`make bench`: what each operation and route costs, measured on in-process moto (not timed tests)."""
