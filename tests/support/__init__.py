"""Test harness shared by the test modules: bakes, git repositories, the workflow runner."""
