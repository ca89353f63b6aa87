"""Feedback Lens dashboard: the router. Start it with ``feedback-lens serve``.

Builds the page list and the frame every page shares (the run, the global filters in the sidebar,
ignored-link notices), then runs the chosen page. Pages live in ``app_pages/``: a folder named
``pages/`` next to this file would switch on Streamlit's older automatic navigation.

Sign-in comes first (``dashboard/auth.py``): a signed-out visitor gets the sign-in screen and no page
runs; a signed-in user's navigation lists only the pages their role may use (:data:`NEEDS`), so another
page's link opens the default page instead.
"""

from pathlib import Path

import streamlit as st

from dashboard import auth, components, filters

st.set_page_config(page_title="Feedback Lens", page_icon=":material/insights:", layout="wide")

PAGES = {
    "app_pages/overview.py": ("Overview", ":material/dashboard:"),
    "app_pages/trends.py": ("Trends", ":material/trending_up:"),
    "app_pages/sentiment.py": ("Sentiment", ":material/sentiment_satisfied:"),
    "app_pages/topics.py": ("Topics", ":material/bubble_chart:"),
    "app_pages/expectations.py": ("Expectations", ":material/rule:"),
    filters.MESSAGES_PAGE: ("Messages", ":material/forum:"),
    "app_pages/snapshots.py": ("Snapshots", ":material/photo_library:"),
    "app_pages/curate.py": ("Curate topics", ":material/edit_note:"),
    "app_pages/audit.py": ("Audit", ":material/history:"),
    "app_pages/runs.py": ("Data", ":material/database:"),
    "app_pages/users.py": ("Users", ":material/group:"),
}
# The action (pipelines.auth.ACTIONS) a page needs; any page not listed needs "view".
NEEDS = {"app_pages/curate.py": "curate", "app_pages/audit.py": "view", "app_pages/snapshots.py": "export",
         "app_pages/users.py": "admin"}
HERE = Path(__file__).parent


def url_name(title: str) -> str:
    """A page's address: its title in lower case, dashes for spaces ("Curate topics" → curate-topics)."""
    return title.lower().replace(" ", "-")


def go_home() -> None:
    """Open the first page, keeping the link's filters (its query parameters)."""
    st.switch_page(home, query_params={key: st.query_params.get_all(key) for key in st.query_params})


user = auth.signed_in_user()
shown = {path: PAGES[path] for path in PAGES
         if (HERE / path).exists() and (user is None or user.can(NEEDS.get(path, "view")))}

# The first page is served at "/", so its own name ("/overview", from a bookmark or a typed address)
# would show Streamlit's "page not found": it gets an inner name instead, and a hidden page under its
# own name takes such links home.
pages = {path: st.Page(path, title=title, icon=icon, url_path=f"{url_name(title)}-home" if i == 0 else url_name(title),
                       default=i == 0)
         for i, (path, (title, icon)) in enumerate(shown.items())}
home = next(iter(pages.values()))
home_alias = st.Page(go_home, title=home.title, url_path=url_name(home.title),
                     visibility="hidden")
# Signed out: the pages are known (a link keeps its page through sign-in) but hidden, and none runs.
page = st.navigation([*pages.values(), home_alias], position="sidebar" if user else "hidden")
if user is None:
    auth.sign_in_screen()  # stops the run
if page is home_alias:
    page.run()  # switches to the home page; nothing below runs for the alias
filters.keep_page_choices()  # first: a drill-down's page switch (follow) ends the run, which would forget them
filters.follow()
filters.remember_page(next(p for p, pg in pages.items() if pg.url_path == page.url_path), page.title)
auth.sidebar(user)
components.frame()
page.run()
