"""`make bench`: benchmark workloads on a seeded million-candidate organisation (see docs/performance.md)."""
