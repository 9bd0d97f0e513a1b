"""Helpers of tests/test_nextflow.py: the modules as data, and Groovy without Nextflow."""
