"""Thin platform adapters: decode an event, call one core service, render the result."""
