"""Feedback Lens dashboard: the router. Start it with ``feedback-lens serve``.

Builds the page list and the frame every page shares (the run, the global filters in the sidebar,
ignored-link notices), then runs the chosen page. Pages live in ``app_pages/``: a folder named
``pages/`` next to this file would switch on Streamlit's older automatic navigation.
"""

import streamlit as st

from dashboard import components, filters

st.set_page_config(page_title="Feedback Lens", page_icon=":material/insights:", layout="wide")

PAGES = {
    "app_pages/overview.py": ("Overview", ":material/dashboard:"),
    "app_pages/trends.py": ("Trends", ":material/trending_up:"),
    "app_pages/sentiment.py": ("Sentiment", ":material/sentiment_satisfied:"),
    "app_pages/topics.py": ("Topics", ":material/bubble_chart:"),
    "app_pages/expectations.py": ("Expectations", ":material/rule:"),
    filters.MESSAGES_PAGE: ("Messages", ":material/forum:"),
    "app_pages/runs.py": ("Data", ":material/database:"),
}

pages = {path: st.Page(path, title=title, icon=icon, url_path=title.lower(), default=i == 0)
         for i, (path, (title, icon)) in enumerate(PAGES.items())}
page = st.navigation(list(pages.values()))
filters.follow()
filters.remember_page(next(p for p, pg in pages.items() if pg.url_path == page.url_path), page.title)
components.frame()
page.run()
