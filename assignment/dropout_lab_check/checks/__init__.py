"""The grader's checks: pytest tests that run in the parent against a sandboxed submission."""
