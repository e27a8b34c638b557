"""Outbound delivery: queue, shaping, delivery over MX, pools, bounces, complaints, suppression
and reputation."""
