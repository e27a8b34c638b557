"""Campaigns: templates, generated copy behind guardrails, audiences, tracking and reports."""
