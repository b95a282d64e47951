"""Channels other than the web widget that leadchat talks to itself (Facebook Messenger).

Each channel is bound to a `Site` and answers with the site's agent backend, budget and
bulkhead, which is why it lives in widget (dependencies point widget -> sessions_app).
"""
