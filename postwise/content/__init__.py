"""Content: sandboxed templates with modular blocks, rendering (HTML, inlined CSS, text part),
and generated subject lines and preheaders behind guardrails."""
