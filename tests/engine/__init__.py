"""Tests of the detection engine."""
