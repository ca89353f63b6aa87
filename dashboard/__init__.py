"""The Feedback Lens dashboard (Streamlit): ``app.py`` routes to the pages in ``app_pages/``."""
