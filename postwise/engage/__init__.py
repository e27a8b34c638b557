"""Personalization: contacts, consent and events; features; propensity and uplift models;
experiments with holdouts; decisions with their provenance."""
