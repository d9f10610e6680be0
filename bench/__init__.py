"""`make bench`: what each operation and route costs and how long it takes (measured, not timed tests)."""
