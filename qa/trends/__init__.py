"""QA trends: the console's Trends page (qa.trends.views) and its figures (qa.trends.selectors)."""
