"""The dashboard under /dashboard/: its pages (`views`), URLs (`urls`, namespace dashboard) and
template tags (`templatetags`, loaded as `{% load dashboard %}`, registered in TEMPLATES)."""
